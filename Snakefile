"""entrobench: paper cards in configs/ -> cells -> result records -> tables, plots, MLflow.

    snakemake --workflow-profile workflows/profiles/local              # every smoke table
    snakemake --workflow-profile workflows/profiles/local results/eata_niu2022/tiny/table.md

Config keys (--config KEY=VALUE): configs (cards folder), data_root (datasets; default
$ENTROBENCH_DATA_ROOT, else ../shared/data beside the checkout), scale (default target's scale).
"""
from snakemake.utils import min_version

min_version("9.0")


include: "workflows/rules/common.smk"
include: "workflows/rules/tta.smk"
include: "workflows/rules/rlvr.smk"
include: "workflows/rules/models.smk"
include: "workflows/rules/cells.smk"
include: "workflows/rules/report.smk"


rule all:
    default_target: True
    input:
        targets_for_scale(config.get("scale", "smoke")),
