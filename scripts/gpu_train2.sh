#!/usr/bin/env bash
# Second GPU pass (device tool, about 6 minutes on one H100), two SVHN codecs trained concurrently:
#  A: the paper codec, fine-tuned from the first pass's weights (.devinit/svhn-ric-v1);
#  B: the identity-initialised residual codec (ric-residual, width 48) from scratch.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
OUT=${OUT:-runs/gpu-out}
B=${BUDGET:-300}
mkdir -p "$OUT" runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > runs/gpu.txt
python3 scripts/train_codec.py svhn-ric --out runs/svhn-ric-paper --run runs/a-run --data-root .devdata \
    --init .devinit/svhn-ric-v1 --set lr=0.0002 --time-budget "$B" > runs/a.log 2>&1 &
python3 scripts/train_codec.py svhn-ric --out runs/svhn-ric-residual --run runs/b-run --data-root .devdata \
    --set 'codec={"name":"ric-residual","width":48,"depth":3,"se_blocks":2}' --time-budget "$B" > runs/b.log 2>&1 &
wait
tail -n 2 runs/a.log runs/b.log
for v in a:svhn-ric-paper b:svhn-ric-residual; do
  r=${v%%:*}; d=${v#*:}
  cp runs/gpu.txt runs/$r.log runs/$r-run/log.jsonl runs/$r-run/preview.png runs/$d/ 2>/dev/null
  tar -C runs -cf "$OUT/$d.tar" "$d"
done
ls -la "$OUT"
