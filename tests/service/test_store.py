"""The store keeps what it cannot account for, and keeps it private (hostile-peer issue, items 8 and 12): blobs
the index does not list are quarantined on start, never deleted; folders are 0700 and files 0600; a token
written with ``ric serve token add --out`` is 0600 and never replaces a file."""

import os
import shutil
import stat

import numpy as np
import pytest

from ric.cli import main
from ric.container import Ciphertext
from ric.keys import new_nonce
from ric.service.store import Store


def _ct(seed) -> bytes:
    px = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return Ciphertext(px, "", new_nonce(), 1, "0" * 16, tag=b"\x01" * 32, classifier="c@" + "0" * 16,
                      scheme="exact", bits=6).to_png()


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_an_index_restored_from_a_backup_loses_no_image(tmp_path):
    root = tmp_path / "s"
    s = Store(root, serving=True)
    tid = s.tenant_for(s.add_token("a"))[0]
    old, _ = s.put(tid, _ct(0), "old.png", 1, "1", "c@x", "exact")
    s.close()
    shutil.copy(root / "index.sqlite3", tmp_path / "backup.sqlite3")  # the operator's nightly backup
    s = Store(root, serving=True)
    newer = _ct(1)
    new, _ = s.put(tid, newer, "new.png", 2, "2", "c@x", "exact")
    s.close()
    for p in root.glob("index.sqlite3*"):
        p.unlink()
    shutil.copy(tmp_path / "backup.sqlite3", root / "index.sqlite3")  # disk trouble: the backup comes back
    s = Store(root, serving=True)
    assert s.recovered == {"temp_files_removed": 0, "orphan_blobs_quarantined": 1, "rows_without_blob": 0}
    assert (s.quarantine / new.id).read_bytes() == newer  # moved aside, byte for byte: the operator can restore it
    assert s.read(tid, old.id) is not None and s.check()["orphans"] == []
    s.close()
    s = Store(root, serving=True)  # a second start finds nothing new to move
    assert s.recovered["orphan_blobs_quarantined"] == 0 and len(list(s.quarantine.iterdir())) == 1
    s.close()


def test_the_server_reports_quarantined_blobs(tmp_path, capsys):
    pytest.importorskip("fastapi")
    from ric.classifiers import load_classifier
    from ric.service.app import create_app

    s = Store(tmp_path / "s")
    (s.blobs / "ab").mkdir()
    (s.blobs / "ab" / ("ab" + "1" * 62)).write_bytes(b"unlisted")
    s.close()
    app = create_app(tmp_path / "s", classifiers=[load_classifier("svhn-cnn7")])
    app.state.store.close()
    err = capsys.readouterr().err
    assert "1 stored file(s) that the index does not list were moved to" in err and "quarantine" in err


def test_store_folders_are_0700_and_files_0600(tmp_path):
    old = os.umask(0o022)  # the usual umask, which made the index 0644
    try:
        s = Store(tmp_path / "s", serving=True)
        tid = s.tenant_for(s.add_token("a"))[0]
        img, _ = s.put(tid, _ct(0), "a.png", 1, "1", "c@x", "exact")
        files = [*s.root.glob("index.sqlite3*"), s.root / "lock", s.blob_path(img.id)]
        assert {p.name for p in files} >= {"index.sqlite3", "index.sqlite3-wal", "index.sqlite3-shm", "lock"}
        assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
        for d in (s.root, s.blobs, s.tmp, s.blob_path(img.id).parent):
            assert _mode(d) == 0o700, d
        s.close()
        os.chmod(tmp_path / "s", 0o755)  # a store made by an older version
        os.chmod(tmp_path / "s" / "index.sqlite3", 0o644)
        Store(tmp_path / "s").close()
        assert _mode(tmp_path / "s") == 0o700 and _mode(tmp_path / "s" / "index.sqlite3") == 0o600
    finally:
        os.umask(old)


def test_token_add_out_writes_a_0600_file_and_never_replaces_one(tmp_path, capsys):
    out = tmp_path / "alice.token"
    assert main(["serve", "token", "add", "alice", "--store", str(tmp_path / "s"), "--out", str(out)]) == 0
    cap = capsys.readouterr()
    token = out.read_text().strip()
    assert token.startswith("ric_") and _mode(out) == 0o600
    assert token not in cap.out and token not in cap.err and "written to" in cap.err
    s = Store(tmp_path / "s")
    assert s.tenant_for(token)[1] == "alice"
    s.close()
    assert main(["serve", "token", "add", "alice", "--store", str(tmp_path / "s"), "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and out.read_text().strip() == token
    s = Store(tmp_path / "s")
    assert s.tenants() == [{"tenant": "alice", "tokens": 1, "images": 0, "bytes": 0}]  # the refused run made none
    s.close()
