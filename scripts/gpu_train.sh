#!/usr/bin/env bash
# One-shot GPU training (device tool, about 7 minutes on one H100): the shipped SVHN codec and the
# CIFAR-10 ResNet-18, trained concurrently. Needs .devdata/ (see scripts/make_devdata.py) and the
# shipped svhn-cnn7 classifier. Writes one tarball per bundle (+ logs, preview) to $OUT.
#   CODEC_BUDGET=360 CIFAR_BUDGET=300 bash scripts/gpu_train.sh
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=src
OUT=${OUT:-runs/gpu-out}
mkdir -p "$OUT" runs
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee runs/gpu.txt
python3 -c "import torch; print('torch', torch.__version__)" | tee -a runs/gpu.txt
python3 scripts/train_classifier.py cifar10-resnet18 --out runs/cifar10-resnet18 --run runs/cifar-run \
    --data-root .devdata --time-budget "${CIFAR_BUDGET:-300}" > runs/cifar.log 2>&1 &
python3 scripts/train_codec.py svhn-ric --out runs/svhn-ric --run runs/svhn-ric-run \
    --data-root .devdata --time-budget "${CODEC_BUDGET:-360}" > runs/svhn-ric.log 2>&1 &
wait
tail -3 runs/cifar.log runs/svhn-ric.log
cp runs/gpu.txt runs/svhn-ric.log runs/svhn-ric-run/log.jsonl runs/svhn-ric-run/preview.png runs/svhn-ric/ 2>/dev/null
cp runs/cifar.log runs/cifar10-resnet18/ 2>/dev/null
tar -C runs -cf "$OUT/svhn-ric.tar" svhn-ric
tar -C runs -cf "$OUT/cifar10-resnet18.tar" cifar10-resnet18
ls -la "$OUT"
