# Cards, paths and lookups shared by every rule. Parsing the cards here means a bad card stops
# the run before any job starts, with one line naming the file and the key.
import os
import shlex
import sys
from functools import cache
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from entrobench.card import CardError, SCALES, load_cards  # noqa: E402
from entrobench.cells import expand  # noqa: E402
from entrobench.data.sources import default_data_root  # noqa: E402

PY = shlex.quote(sys.executable)
REPO = Path(workflow.basedir)
CONFIGS = Path(config.get("configs", REPO / "configs"))
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
    card="[^/]+",
    scale="|".join(SCALES),
    dataset="[a-z0-9_]+",
    setting="[^/]+",
    seed=r"\d+",
    run=r"[a-z0-9_]+\.[a-z0-9_]+-[0-9a-f]{12}",
    hash="[0-9a-f]{12}",


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


# What a job asks a cluster for: the card's scale (`resources: {mem_mb, runtime, gpu, ...}`),
# with partition and account from `--config slurm_partition=... slurm_account=...` overriding the
# card, so a user on another cluster edits no card. Local runs read only threads and mem_mb.
JOB_RESOURCES = ("mem_mb", "runtime", "gpu", "gpu_model", "gres", "constraint", "slurm_partition", "slurm_account", "slurm_extra")
CLUSTER_OVERRIDES = {k: config[k] for k in ("slurm_partition", "slurm_account") if config.get(k)}
# A resource a rule leaves unset (None) drops the profile's default too, hence these. The signal:
# SIGTERM two minutes before the walltime, so long jobs save a checkpoint (entrobench/checkpoint.py).
JOB_DEFAULTS = {"mem_mb": 2000, "runtime": 30, "slurm_extra": "--signal=TERM@120"}


def job_resources(owner):
    """Rule resources, for a rule whose `owner(wildcards)` gives (card, scale, ...)."""

    def get(key):
        def value(wc):
            card, scale = owner(wc)[:2]
            return {**JOB_DEFAULTS, **scaled(card.id, scale).resources, **CLUSTER_OVERRIDES}.get(key)

        return value

    return {key: get(key) for key in JOB_RESOURCES}


# Rules that need nothing from the card (data preparation) still go to the chosen partition and account.
CLUSTER_PLACEMENT = {key: (lambda wc, key=key: CLUSTER_OVERRIDES.get(key)) for key in ("slurm_partition", "slurm_account")}
