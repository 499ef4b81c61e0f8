"""Decryption regenerates the NAE from the key: same result in another process, thread count and batch."""

import json
import subprocess
import sys

import numpy as np

ENCRYPT = """
import sys, torch
torch.set_num_threads(2)
from ric.api import sample_images, encrypt_files
from ric.keys import SecretKey
files, _ = sample_images()
rows = encrypt_files(files[:5], sys.argv[1], SecretKey(bytes(range(32))))
assert all(r["status"] == "encrypted" for r in rows), rows
"""

DECRYPT = """
import sys, json, torch
torch.set_num_threads(int(sys.argv[3]))
from ric.api import decrypt_files, sample_images
from ric.imageio import read_image
from ric.keys import SecretKey
from ric.eval.metrics import psnr
rows = decrypt_files(sorted(__import__('glob').glob(sys.argv[1] + '/*.png')), sys.argv[2], SecretKey(bytes(range(32))),
                     batch_size=int(sys.argv[4]))
files, _ = sample_images()
x = torch.stack([torch.from_numpy(read_image(f)).permute(2, 0, 1) for f in files[:5]]).float() / 255
xh = torch.stack([torch.from_numpy(read_image(r["output"])).permute(2, 0, 1) for r in rows]).float() / 255
print(json.dumps(psnr(xh, x).tolist()))
"""


def _run(code, *args):
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_decrypt_in_other_processes_thread_counts_and_batches(tmp_path):
    _run(ENCRYPT, tmp_path / "ct")
    a = json.loads(_run(DECRYPT, tmp_path / "ct", tmp_path / "r1", 1, 1))
    b = json.loads(_run(DECRYPT, tmp_path / "ct", tmp_path / "r2", 2, 64))
    assert abs(np.mean(a) - np.mean(b)) < 0.01
    assert np.mean(a) > 38
    for f in sorted((tmp_path / "r1").iterdir()):
        assert f.read_bytes() == (tmp_path / "r2" / f.name).read_bytes()  # bit-identical recovered PNGs


def test_codec_results_do_not_depend_on_the_batch(shipped_ric, samples, key):
    """The codec runs in fixed chunks (like the NAE), so a ciphertext or a recovery is the same whether its
    image was processed alone or with others."""
    import torch

    _, x, _ = samples
    x = x[:11]
    t = shipped_ric.predict(x)
    from ric.keys import new_nonce

    z = shipped_ric.nae(key, [new_nonce() for _ in x], t, tuple(x.shape[1:]))
    old = shipped_ric.batch_size
    try:
        shipped_ric.batch_size = 64
        c_all, xh_all = shipped_ric.encode_with(x, z), None
        xh_all = shipped_ric.decode_with(c_all, z)
        shipped_ric.batch_size = 1
        assert torch.equal(shipped_ric.encode_with(x, z), c_all)
        assert torch.equal(shipped_ric.decode_with(c_all, z), xh_all)
        assert torch.equal(shipped_ric.decode_with(c_all[3:4], z[3:4]), xh_all[3:4])
    finally:
        shipped_ric.batch_size = old
