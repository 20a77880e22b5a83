#!/usr/bin/env bash
# Diffusion features beside pixels and the supervised backbones, on the full Fashion-MNIST
# (issue 12; the README's "Diffusion models as representation learners"). Resumable: the
# DDPM continues from its newest checkpoint, and each later step is skipped when its
# output (runs/ddpm-unet-fmnist/results/<name>.json) exists.
# Usage: bash scripts/ddpm-study.sh   (from the repository root, after npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN=${RUN:-runs/ddpm-unet-fmnist}
OUT=$RUN/results
D=(node bin/denoiserep.js)
step() { # <name> <denoiserep args...>: stdout to $OUT/<name>.json, atomically
  local name=$1
  shift
  if [ -s "$OUT/$name.json" ]; then
    echo "done: $name"
    return
  fi
  echo "$(date -u +%T) start $name: denoiserep $*"
  local t0=$SECONDS
  "${D[@]}" "$@" --json >"$OUT/$name.json.tmp"
  mv "$OUT/$name.json.tmp" "$OUT/$name.json"
  echo "$(date -u +%T) end $name ($((SECONDS - t0)) s)"
}

# 1. The DDPM: 6 epochs of the 60,000 training images, checkpoints every 100 steps.
if [ ! -f "$RUN/model.onnx" ]; then
  resume=()
  if [ -e "$RUN/checkpoint" ]; then resume=(--resume); fi
  "${D[@]}" pretrain --model ddpm-unet-fmnist --data fashion-mnist --epochs 6 \
    --checkpoint-every 100 --out "$RUN" "${resume[@]}"
fi
mkdir -p "$OUT"

# 2. Samples: an 8x8 grid, and 1,000 DDIM-50 samples for the Fréchet distance (with the
#    real-vs-real floor) in the feature space of the shipped ResNet.
step grid sample "$RUN" --n 64 --steps 50 --seed 0 --out "$RUN/grid.png"
step fid sample "$RUN" --n 1000 --steps 50 --seed 1 --fid-model zoo:resnet-tiny-fmnist \
  --out "$RUN/samples-1000.png"

# 3. The (t, block) sweep: linear probes trained on the first 10,000 training images and
#    scored on the last 10,000, held out, so that the test set plays no part in the choice.
step sweep probe "$RUN" --data fashion-mnist --sweep --train-images 10000 --val-images 10000

# 4. The sweep's best cell on all 60,000 training images, scored on the 10,000 test images;
#    the attention head on the same block; the baselines on the same data.
step linear probe "$RUN" --data fashion-mnist
step attention probe "$RUN" --data fashion-mnist --head attention
step pixels probe pixels --data fashion-mnist
step resnet-probe probe zoo:resnet-tiny-fmnist --data fashion-mnist
step vit-probe probe zoo:vit-tiny-fmnist --data fashion-mnist
step resnet-eval eval zoo:resnet-tiny-fmnist --data fashion-mnist
step vit-eval eval zoo:vit-tiny-fmnist --data fashion-mnist
echo "results in $OUT"
