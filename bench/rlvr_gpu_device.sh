#!/usr/bin/env bash
# The RLVR engine adapter (TRL GRPOTrainer + our loss) on one GPU: wheels TRL needs, then the
# tests' tiny chat model, then a SmolLM2-135M-shaped policy (its config and tokenizer, random
# weights: the real weights are too large to carry), transformers rollouts (no vLLM there).
# How it was run (device tool, bench/results/rlvr_gpu*.json): in the repo root,
#   pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl \
#       trl==1.16.0 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19 transformers==5.23.0
#   .gpuprep/smollm2_shape: config.json, tokenizer*.json, chat_template.jinja of the converted SmolLM2
#   .gpuprep/tiny_lm: tests/conftest.py's _write_tiny_chat_lm
# then `bash bench/rlvr_gpu_device.sh` there with .whl and .gpuprep carried.
set -uo pipefail
PY=${PY:-python3}
if [ -d .whl ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpuout}; mkdir -p $OUT
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null
$PY - <<'PYEOF'
import torch, transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
print("torch", torch.__version__, "transformers", transformers.__version__, "cuda", torch.cuda.is_available())
cfg = AutoConfig.from_pretrained(".gpuprep/smollm2_shape")
torch.manual_seed(0)
model = AutoModelForCausalLM.from_config(cfg)
model.save_pretrained("/tmp/smol_shape")
AutoTokenizer.from_pretrained(".gpuprep/smollm2_shape").save_pretrained("/tmp/smol_shape")
print("params", sum(p.numel() for p in model.parameters()))
PYEOF
STEPS=${STEPS:-4} PROMPTS=${PROMPTS:-16} TOKENS=${TOKENS:-128}
timeout 150 $PY bench/rlvr_gpu.py --model .gpuprep/tiny_lm --rollout hf --steps 3 --prompts 4 --group 4 --max-new-tokens 16 --out $OUT/rlvr_gpu_tiny.json
timeout 330 $PY bench/rlvr_gpu.py --model /tmp/smol_shape --rollout hf --steps $STEPS --prompts $PROMPTS --group 8 --max-new-tokens $TOKENS --out $OUT/rlvr_gpu_smollm2_shape.json
ls -la $OUT
