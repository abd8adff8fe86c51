"""entrobench: paper cards in configs/ -> cells -> result records -> tables, plots, MLflow.

    snakemake --workflow-profile workflows/profiles/local              # every smoke table
    snakemake --workflow-profile workflows/profiles/local results/eata_niu2022/tiny/table.md

Config keys (--config KEY=VALUE, checked against workflows/schemas/config.schema.yaml): configs
(cards folder), data_root (datasets; default $ENTROBENCH_DATA_ROOT, else ../shared/data beside the
checkout), scale (default target's scale), plugins (folders of families outside the project),
slurm_partition, slurm_account.
"""
from snakemake.utils import min_version

from entrobench import warm

min_version("9.0")


include: "workflows/rules/common.smk"
include: "workflows/rules/builds.smk"
include: "workflows/rules/cells.smk"
include: "workflows/rules/report.smk"


rule all:
    default_target: True
    input:
        targets_for_scale(config.get("scale", "smoke")),


if dry_run():  # what the run would cost, before the list of its jobs
    print_plan([a for a in sys.argv[1:] if a.startswith("results/")])


# Local runs fork each job from one warm process that imported torch once (entrobench/warm.py):
# 3 to 7 s less per cell. ENTROBENCH_WARM=off turns it off; on SLURM every job starts cold.
WARM = {}


onstart:
    if workflow.local_exec and not workflow.touch and os.environ.get(warm.ENV) != "off":
        WARM["path"], WARM["server"] = warm.start(".snakemake/entrobench-warm.log")
        os.environ[warm.ENV] = WARM["path"]  # the jobs' environment is copied from ours


onsuccess:
    if WARM:
        warm.stop(WARM["path"], WARM["server"])


onerror:
    if WARM:
        warm.stop(WARM["path"], WARM["server"])
    # A failed cell fails the run (non-zero exit); the tables asked for still show what ran.
    partial_tables(workflow.dag_settings.targets)
