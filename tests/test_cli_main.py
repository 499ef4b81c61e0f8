"""The CLI's entry points: ``main(argv)`` runs the line it is given (and records that line), and
``python -m ric.cli`` is the ``ric`` command."""

import subprocess
import sys

from ric.cli import main


def test_main_records_the_argv_it_was_given(tmp_path, monkeypatch):
    seen = {}

    def fake_run_security(models, quick, run, docs, data_root, command, log, fresh):
        seen["command"] = command
        return {}

    monkeypatch.setattr("ric.security.report.run_security", fake_run_security)
    monkeypatch.setattr(sys, "argv", ["ric", "something", "else"])
    argv = ["security", "--quick", "--run", str(tmp_path / "run"), "-o", str(tmp_path / "docs"), "-q"]
    assert main(argv) == 0
    assert seen["command"] == "ric " + " ".join(argv)


def test_python_m_ric_cli_is_the_ric_command():
    out = subprocess.run([sys.executable, "-m", "ric.cli", "keygen", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout and "keygen" in out.stdout
