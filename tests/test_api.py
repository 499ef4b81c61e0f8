"""ric.api batch functions: inputs are checked first, then read again batch by batch (bounded memory)."""

import numpy as np

from ric.api import classify_files, encrypt_files, sample_images
from ric.jobs import classify as classify_job
from ric.jobs.encrypt import encrypt_pending, scan_encrypt
from ric.jobs.plan import plan_outputs
from ric.keys import SecretKey
from ric.schemes import load_scheme


def _copy_samples(tmp_path, n):
    files, _ = sample_images()
    d = tmp_path / "photos"
    d.mkdir()
    for f in files[:n]:
        (d / f.name).write_bytes(f.read_bytes())
    return d


def test_scan_keeps_no_pixels_and_a_file_broken_after_the_scan_fails_only_its_row(tmp_path, monkeypatch):
    photos = _copy_samples(tmp_path, 4)
    key = SecretKey.generate()
    sch = load_scheme(batch_size=2)  # exact, svhn-cnn7
    paths, outs = plan_outputs([photos], tmp_path / "ct")
    rows, todo = scan_encrypt(paths, outs, key, sch)
    assert todo == [0, 1, 2, 3] and all(isinstance(i, int) for i in todo)  # indices, not pixel arrays
    paths[1].write_bytes(b"not an image any more")  # changed between the two passes
    encrypt_pending(rows, todo, key, sch, batch_size=2)
    assert [r["status"] for r in rows] == ["encrypted", "failed", "encrypted", "encrypted"]
    assert "image" in rows[1]["error"].lower() and not outs[1].exists()
    assert all(outs[i].is_file() for i in (0, 2, 3))


def test_classify_reads_images_again_past_the_memory_budget(tmp_path, monkeypatch):
    photos = _copy_samples(tmp_path, 6)
    key = SecretKey.generate()
    rows = encrypt_files([photos], tmp_path / "ct", key)
    assert all(r["status"] == "encrypted" for r in rows)
    held = classify_files([tmp_path / "ct"], batch_size=4)
    monkeypatch.setattr(classify_job, "HELD_BYTES", 0)  # nothing held: every batch is read again
    reread = classify_files([tmp_path / "ct"], batch_size=4)
    assert [r["label"] for r in reread] == [r["label"] for r in held]
    sizes = []
    real = classify_job.to_tensor
    monkeypatch.setattr(classify_job, "to_tensor", lambda a: sizes.append(len(a)) or real(a))
    monkeypatch.setattr(classify_job, "BATCH_SUBPIXELS", 2 * 32 * 32 * 3)  # two 32x32 ciphertexts per pass
    capped = classify_files([tmp_path / "ct"], batch_size=4)
    assert [r["label"] for r in capped] == [r["label"] for r in held] and sizes == [2, 2, 2]
    assert np.mean([r["label"] == t for r, t in zip(held, [r["target"] for r in rows], strict=True)]) == 1.0
