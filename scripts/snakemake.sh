#!/usr/bin/env bash
# snakemake for this checkout, safe to rerun after any kill: the same command finishes the work.
# Snakemake leaves its lock behind when it is killed (kill -9, a closed terminal, a lost node) and
# then refuses to start until `--unlock`. We hold our own lock in the same working directory (flock, released by the kernel when
# the process dies, however it dies) for as long as snakemake runs: if we get it, no snakemake of
# ours is running here, so a Snakemake lock that is present is stale and is removed first.
# Incomplete outputs of the killed run are rerun by the profiles' rerun-incomplete.
# A run that does not use SLURM gets a scontrol that fails at once (see scripts/no-slurm/).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
workdir=.  # snakemake keeps its lock under the working directory: --directory/-d, else here
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --directory|-d) workdir=${args[i+1]:-.} ;;
        --directory=*) workdir=${args[i]#--directory=} ;;
    esac
done
mkdir -p "$workdir/.snakemake"
exec 9>"$workdir/.snakemake/entrobench-run.lock"
if ! flock -n 9; then
    echo "snakemake.sh: another run is working in this checkout; waiting for it to finish" >&2
    flock 9
fi
case " $* " in  # a run that does not submit to SLURM must not wait on SLURM (scripts/no-slurm/scontrol)
    *profiles/slurm*|*"--executor slurm"*|*"-e slurm"*) ;;
    *) export PATH="$PWD/scripts/no-slurm:$PATH" ;;
esac
if [ -n "$(ls -A "$workdir/.snakemake/locks" 2>/dev/null)" ]; then
    echo "snakemake.sh: removing the lock a killed run left behind" >&2
    "$VENV/bin/snakemake" --unlock "$@" >/dev/null
fi
exec "$VENV/bin/snakemake" "$@"
