# Config, cards and lookups shared by every rule. Parsing the cards here means a bad card stops
# the run before any job starts, with one line naming the file and the key. No family is named
# here or in any rule: each card's family (entrobench/family.py) says what its cells read.
import os
import shlex
import sys
from functools import cache
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)
REPO = Path(workflow.basedir)
try:
    validate(config, str(REPO / "workflows" / "schemas" / "config.schema.yaml"))
except Exception as err:  # one line naming the key, not Snakemake's report of the schema
    sys.stderr.write(f"error: --config: {str(err).splitlines()[0]} (see workflows/schemas/config.schema.yaml)\n")
    sys.stderr.flush()
    os._exit(2)

from entrobench.family import PLUGINS_ENV  # noqa: E402

if config.get("plugins"):  # jobs inherit the environment, so they find the same families
    os.environ[PLUGINS_ENV] = os.pathsep.join(str(Path(p).resolve()) for p in str(config["plugins"]).split(os.pathsep))

from entrobench.card import SCALES, CardError, load_cards  # noqa: E402
from entrobench.cells import all_builds, data_state, expand  # noqa: E402
from entrobench.data.sources import default_data_root  # noqa: E402
from entrobench.family import activate_plugins  # noqa: E402

activate_plugins()
PY = shlex.quote(sys.executable)
CONFIGS = Path(config.get("configs", REPO / "configs")).resolve()
CONFIGS_ARG = f"--configs {shlex.quote(str(CONFIGS))}"
_root = config.get("data_root") or default_data_root()
DATA_ROOT = Path(_root).resolve() if _root else None
DATA_ROOT_ARG = f"--data-root {shlex.quote(str(DATA_ROOT))}" if DATA_ROOT else ""

try:
    CARDS = load_cards(CONFIGS)
except CardError as err:
    sys.stderr.write(f"error: {err}\n")
    sys.stderr.flush()
    os._exit(2)  # one line, no traceback: Snakemake would wrap a raised error in its own report


wildcard_constraints:
    card="[A-Za-z0-9][A-Za-z0-9_.-]*",
    scale="|".join(SCALES),
    dataset="[A-Za-z0-9][A-Za-z0-9_.-]*",
    setting="[A-Za-z0-9][A-Za-z0-9_.-]*",
    seed=r"\d+",
    run=r"[a-z0-9_]+\.[a-z0-9_]+-[0-9a-f]{12}",
    owner="[a-z0-9_]+",
    kind="[a-z0-9_]+",
    build=r"[A-Za-z0-9_.-]+-[0-9a-f]{12}",


@cache
def scaled(card_id, scale):
    if card_id not in CARDS:
        raise ValueError(f"no card {card_id!r} in {CONFIGS} (cards: {', '.join(CARDS)})")
    return CARDS[card_id].scale(scale)


def card_path(wildcards):
    return str(CARDS[wildcards.card].path)


@cache
def cells_of(card_id, scale):
    return expand(scaled(card_id, scale))


def records_of(wildcards):
    return sorted({str(c.record_path()) for c in cells_of(wildcards.card, wildcards.scale)})


def targets_for_scale(scale):
    """Every card's table at this scale, and the leaderboards of its benchmarks."""
    cards = [c for c in CARDS.values() if scale in c.spec.scales]
    out = [f"results/{c.id}/{scale}/table.md" for c in cards]
    out += [f"results/leaderboards/{b}/{scale}.md" for b in sorted({c.spec.benchmark for c in cards if c.spec.benchmark})]
    return out


def the_data_state(files):
    """A rule parameter: presence and size of the data-root files a job reads (see cells.data_state)."""
    return data_state(tuple(files), DATA_ROOT)


# What a job asks a cluster for: the card's scale (`resources: {mem_mb, runtime, gpu, cpus_per_task,
# ...}`, names and values checked by card.py), with partition and account from `--config
# slurm_partition=... slurm_account=...` overriding the card, so a user on another cluster edits no
# card. entrobench/plan.py's job_request makes the same request for `python -m entrobench plan`.
# Local runs read only threads and mem_mb.
from entrobench.plan import job_request  # noqa: E402

JOB_RESOURCES = ("mem_mb", "runtime", "gpu", "gpu_model", "gres", "constraint", "cpus_per_task", "slurm_partition", "slurm_account", "slurm_extra")
CLUSTER_OVERRIDES = {k: config[k] for k in ("slurm_partition", "slurm_account") if config.get(k)}


def job_resources(owner, heavy=lambda wc: True):
    """Rule resources, for a rule whose `owner(wildcards)` gives (card, scale, ...). A job that is
    not `heavy` (data preparation) asks for the defaults and the cluster placement only, never the
    scale's GPUs. A resource left unset (None) would drop the profile's default too, hence the
    defaults in job_request."""

    def get(key):
        def value(wc):
            card, scale = owner(wc)[:2]
            return job_request(scaled(card.id, scale).resources, heavy(wc), CLUSTER_OVERRIDES).get(key)

        return value

    return {key: get(key) for key in JOB_RESOURCES}


def job_threads(owner, heavy=lambda wc: True):
    """The job's threads: its CPUs (`cpus_per_task`), which the cell gives to its DataLoader's
    image-reading workers (one CPU stays with the model). Local runs cap them at --cores."""

    def threads(wc):
        card, scale = owner(wc)[:2]
        return int(job_request(scaled(card.id, scale).resources, heavy(wc)).get("cpus_per_task") or 1)

    return threads
