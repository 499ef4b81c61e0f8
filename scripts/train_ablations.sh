#!/usr/bin/env bash
# Ablation and alpha-sweep codecs of the paper (Table 4, Figure 7), all trained under the SAME budget:
# a small ric-paper codec (width 16, depth 2, 1 SE block) on SVHN train (images 0-7999) with svhn-cnn7,
# BUDGET seconds each (default 300) on whatever machine runs this. Bundles go to models/ablation/<name>.
#   NAE with SRL (alpha 0.8) | RNI instead of NAE (attack none) | NAE without SRL (alpha 0)
#   alpha sweep: 0.6 0.7 0.8 0.9 (0.8 is shared with the first row)
# Usage: scripts/train_ablations.sh [BUDGET_SECONDS] [DEVICE]
set -euo pipefail
BUDGET=${1:-300}
DEV=${2:-cpu}
OUT=models/ablation
RUNS=runs/ablation
CODEC='{"name": "ric-paper", "width": 16, "depth": 2, "se_blocks": 1}'
train() {  # name, extra --set arguments
  local name=$1; shift
  ric train codec svhn-ric --output "$OUT/$name" --run "$RUNS/$name" --time-budget "$BUDGET" --device "$DEV" \
    --set "codec=$CODEC" --set pool_per_class=16 --set batch_size=32 --set eval_images=128 --set lr=0.001 \
    --set "description=\"ablation codec ($name), ${BUDGET}s budget\"" "$@"
}
train nae-srl-a0.8 --set alpha=0.8
train rni-srl-a0.8 --set alpha=0.8 --set 'attack={"name": "none"}'
train nae-nosrl --set alpha=0.0
for a in 0.6 0.7 0.9; do train "nae-srl-a$a" --set alpha=$a; done
