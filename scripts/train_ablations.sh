#!/usr/bin/env bash
# Ablation and alpha-sweep codecs of the paper (Table 4, Figure 7), all trained under the SAME budget:
# a small ric-paper codec (width 16, depth 2, 1 SE block) on SVHN train (images 0-7999) with svhn-cnn7,
# EPOCHS epochs each (default 4; an epoch is about 77 s on 2 x86 cores), so every variant gets the same
# number of optimiser steps whatever else the machine is doing. Bundles go to models/ablation/<name>.
#   NAE with SRL (alpha 0.8) | RNI instead of NAE (attack none) | NAE without SRL (alpha 0)
#   alpha sweep: 0.6 0.7 0.8 0.9 (0.8 is shared with the first row)
# Usage: scripts/train_ablations.sh [EPOCHS] [DEVICE]
set -euo pipefail
EPOCHS=${1:-4}
DEV=${2:-cpu}
OUT=models/ablation
RUNS=runs/ablation
CODEC='{"name": "ric-paper", "width": 16, "depth": 2, "se_blocks": 1}'
train() {  # name, extra --set arguments
  local name=$1; shift
  ric train codec svhn-ric --output "$OUT/$name" --run "$RUNS/$name" --epochs "$EPOCHS" --set "epochs=$EPOCHS" --device "$DEV" \
    --set "codec=$CODEC" --set pool_per_class=16 --set batch_size=32 --set eval_images=128 --set lr=0.001 \
    --set "description=\"ablation codec ($name), ${EPOCHS} epochs\"" "$@"
}
train nae-srl-a0.8 --set alpha=0.8
train rni-srl-a0.8 --set alpha=0.8 --set 'attack={"name": "none"}'
train nae-nosrl --set alpha=0.0
for a in 0.6 0.7 0.9; do train "nae-srl-a$a" --set alpha=$a; done
# Table 2's steganography baselines with the NAE as cover, same budget and flags (ric.codec.hiding; shipped ones
# trained on a GPU by scripts/train_v3.sh, same steps; about the
# ablation codec's parameter count: ric-paper 112k, ddh 104k, hinet 104k):
CODEC='{"name": "ddh", "width": 40, "depth": 3, "prep": 16}' train ddh-srl-a0.8 --set alpha=0.8
CODEC='{"name": "hinet", "width": 16, "depth": 2, "blocks": 6}' train hinet-srl-a0.8 --set alpha=0.8
