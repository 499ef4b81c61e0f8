"""Copy the subsets of ../shared/data that the GPU script needs into .devdata/ (git-ignored, < 64 MiB).

SVHN: images 0-8499 (train 0-7999, the first 500 test images for monitoring);
CIFAR-10: the 10k train subset and the first 1,000 test images (monitoring only; the shipped
accuracy is measured afterwards on the full test split by benchmarks/classifiers.py).
"""

import shutil
import sys
from pathlib import Path

import numpy as np

src = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
dst = Path(".devdata")
(dst / "svhn").mkdir(parents=True, exist_ok=True)
(dst / "cifar10").mkdir(parents=True, exist_ok=True)
d = np.load(src / "svhn/svhn_test_first10k.npz")
np.savez_compressed(dst / "svhn/svhn_test_first10k.npz", images=d["images"][:8500], labels=d["labels"][:8500],
                    classes=d["classes"])
shutil.copy(src / "cifar10/cifar10_train.npz", dst / "cifar10/")
d = np.load(src / "cifar10/cifar10_test.npz")
np.savez_compressed(dst / "cifar10/cifar10_test.npz", images=d["images"][:1000], labels=d["labels"][:1000],
                    classes=d["classes"])
