#!/usr/bin/env bash
# Trains the shipped backbones with the README's recipes A (ResNet), B and C (ViT) into
# runs/, resumably: run it again after a kill and each run continues from its newest
# checkpoint (written every 100 steps); finished runs are skipped. Then add each to the
# zoo with scripts/zoo-entry.ts (see the README's "Shipped models").
# Usage: bash scripts/train-zoo.sh   (from the repository root, after npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
run() { # <out folder> <pretrain flags...>
  local out=$1
  shift
  if [ -f "$out/model.onnx" ]; then
    echo "done: $out"
    return
  fi
  local resume=()
  if [ -e "$out/checkpoint" ]; then resume=(--resume); fi
  echo "$(date -u +%T) start $out ${resume[*]}"
  node bin/denoiserep.js pretrain "$@" --out "$out" --checkpoint-every 100 "${resume[@]}"
  echo "$(date -u +%T) end $out"
}
# A
run runs/resnet-full --model resnet-tiny-fmnist --data fashion-mnist --epochs 6 --lr 3e-3 \
  --weight-decay 0.05 --label-smoothing 0.1 --warmup-epochs 0.3
# B: 20 epochs with random crop and flip
run runs/vit-full --model vit-tiny-fmnist --data fashion-mnist --epochs 20 --lr 2e-3 \
  --weight-decay 0.05 --label-smoothing 0.1 --warmup-epochs 1 --augment --eval-every 2
# C: 4 more epochs from B's weights, no augmentation, a new cosine schedule from 3e-4
run runs/vit-full-ft --model vit-tiny-fmnist --data fashion-mnist --init runs/vit-full \
  --epochs 4 --lr 3e-4 --warmup-epochs 0 --weight-decay 0.05 --label-smoothing 0.1 --seed 1
