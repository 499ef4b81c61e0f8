"""The README's commands stay true: every ``ric ...`` line of its bash blocks (and every inline ``ric ...`` command
with arguments) parses with the real CLI parser, so a renamed verb or flag fails here instead of in a user's shell."""

import re
import shlex
from pathlib import Path

import pytest

from ric.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text()
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip().rstrip("&").strip()
            if line.startswith("ric "):
                cmds.append(line)
    for inline in re.findall(r"`(ric [^`]+)`", text):  # inline commands with arguments (not mere mentions)
        cmd = inline.split(" | ", 1)[0].strip()
        if len(shlex.split(cmd)) > 2:
            cmds.append(cmd)
    return cmds


def test_the_readme_has_the_six_commands_of_the_three_party_flow():
    verbs = [shlex.split(c)[1] for c in readme_commands()]
    for verb in ("keygen", "encrypt", "serve", "push", "pull", "decrypt", "classify", "demo"):
        assert verb in verbs, verb


@pytest.mark.parametrize("cmd", readme_commands())
def test_readme_command_parses(cmd):
    argv = shlex.split(cmd)[1:]
    if "|" in argv[0] or "..." in argv:
        pytest.skip("a pattern, not a command")
    build_parser().parse_args(argv)  # SystemExit (argparse's error) fails the test
