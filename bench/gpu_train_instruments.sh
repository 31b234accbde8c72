#!/usr/bin/env bash
# Train the instrument encoders from the mel cache on a CUDA machine (the run behind the shipped
# weights; see resources/models/instruments/MODEL_CARD.md). Needs only python3 with torch, numpy,
# scipy and safetensors, and data/instruments_mels built here first with
#   python -m engines.instruments.data --mels --out data/instruments_mels --per-instrument 16
# Writes to ${OUT:-out}/{wide,base}/ (two sizes, trained side by side on one GPU).
set -uo pipefail
OUT=${OUT:-bench/out/gpu_instruments}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"
nvidia-smi -L || true
python3 -c "import torch, scipy, safetensors; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
python3 -m engines.instruments.train --mels --data data/instruments_mels --out /tmp/smoke \
  --single-steps 3 --multi-steps 3 --batch 32 --channels 8,8,8,8 --no-eval >"$OUT/smoke.log" 2>&1 \
  || { cat "$OUT/smoke.log"; exit 1; }
run() {  # name channels
  python3 -m engines.instruments.train --mels --data data/instruments_mels --out "$OUT/$1" \
    --single-steps 60000 --multi-steps 60000 --batch 256 --channels "$2" \
    --single-minutes "${SINGLE_MIN:-2.5}" --multi-minutes "${MULTI_MIN:-3}" --no-eval >"$OUT/$1.log" 2>&1
}
run wide 32,64,128,256 & a=$!
run base 16,32,64,128 & b=$!
wait $a; ra=$?; wait $b; rb=$?
tail -n 4 "$OUT/wide.log" "$OUT/base.log"
exit $(( ra || rb ))
