#!/usr/bin/env bash
# The third-generation paper-scheme codecs and Table 2's two hiding baselines, as trained on one NVIDIA H200
# (2026-11-28): stage 1 runs six trainings side by side on the one GPU (16 CPU cores), stage 2 continues the two
# shipped codecs from their stage-1 weights. Bundles go to OUT/<name>; each run folder (RUNS/<name>) holds
# log.jsonl, preview.png and ckpt.pt, and a rerun resumes it.
#   svhn-ric-v3        the v2 codec continued from the shipped svhn-ric-v2 weights (stage 1 ran as recipe svhn-ric-v2
#                      with --set overrides equal to today's svhn-ric-v3 recipe), then stage 2 at lr 1e-4
#   faces-ric-v3       width 32, depth 3, from the identity start, then stage 2 at lr 3e-4
#   svhn-ric-v3-wide, faces-ric-v2b   candidates that were measured and not shipped (MODEL_CARD.md of the v3 bundles)
#   ddh-srl-a0.8, hinet-srl-a0.8      the ablation budget of scripts/train_ablations.sh (4 epochs, batch 32, same flags)
# Usage: scripts/train_v3.sh [TIME_BUDGET_S] [DEVICE] [OUT] [RUNS]
set -uo pipefail
TB=${1:-270}
DEV=${2:-cuda}
OUT=${3:-runs/v3/out}
RUNS=${4:-runs/v3/run}
mkdir -p "$OUT" "$RUNS"
tr() {  # name, recipe and flags
  local n=$1; shift
  ric train codec "$@" --output "$OUT/$n" --run "$RUNS/$n" --device "$DEV" > "$RUNS/$n.log" 2>&1
  echo "$n: exit $?"
}
tr svhn-ric-v3 svhn-ric-v3 --init svhn-ric-v2 --time-budget "$TB" &
tr svhn-ric-v3-wide svhn-ric-v3-wide --time-budget "$TB" &
tr faces-ric-v3 faces-ric-v3 --time-budget "$TB" &
tr faces-ric-v2b faces-ric-v2 --init faces-ric-v2 --time-budget "$TB" --set 'name="faces-ric-v2b"' --set crop=64 \
  --set epochs=2000 --set pool_per_class=4 &
ABL=(--epochs 4 --set epochs=4 --set pool_per_class=16 --set batch_size=32 --set eval_images=128 --set lr=0.001
     --set alpha=0.8)
( tr ddh-srl-a0.8 svhn-ric "${ABL[@]}" --set 'codec={"name": "ddh", "width": 40, "depth": 3, "prep": 16}' \
    --set 'description="ablation codec (ddh-srl-a0.8), 4 epochs"'
  tr hinet-srl-a0.8 svhn-ric "${ABL[@]}" --set 'codec={"name": "hinet", "width": 16, "depth": 2, "blocks": 6}' \
    --set 'description="ablation codec (hinet-srl-a0.8), 4 epochs"' ) &
wait
# stage 2 (a fresh run folder each: the learning-rate schedule starts again over the new budget)
tr2() { local n=$1; shift; ric train codec "$n" --init "$OUT/$n" --output "$OUT/$n" --run "$RUNS/$n-stage2" \
  --device "$DEV" "$@" > "$RUNS/$n-stage2.log" 2>&1; echo "$n stage 2: exit $?"; }
tr2 svhn-ric-v3 --time-budget 180 --set lr=0.0001 &
tr2 faces-ric-v3 --time-budget 180 --set lr=0.0003 &
wait
