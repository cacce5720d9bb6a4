"""Issue 17: where a magic promises one line, a traceback came instead; and -m text that broke revision files."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from playlist_tools.migrations import REPO_ROOT
from playlist_tools.workspace import Workspace

NASTY_MESSAGES = ['say """hi"""', 'ends in a quote"', "a \\ backslash and \\N{x}", '"""']


@pytest.fixture(scope="module")
def shell() -> InteractiveShell:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "playlist_tools")
    return ip


def test_alembic_unclosed_quote_is_one_line(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError) as caught:
        shell.run_line_magic("alembic", "upgrade 'he\"ad")
    message = str(caught.value)
    assert "No closing quotation" in message and "\n" not in message


def test_alembic_config_that_is_no_ini_never_prints_the_file(shell: InteractiveShell, tmp_path: Path) -> None:
    secret = tmp_path / "not-an-ini"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with capture_output() as captured, pytest.raises(UsageError) as caught:
        shell.run_line_magic("alembic", f"-c {secret} current")
    message = str(caught.value)
    assert "is not an alembic.ini" in message and "\n" not in message
    assert "root:x" not in message + captured.stdout + captured.stderr


@pytest.mark.parametrize("message", NASTY_MESSAGES)
def test_alembic_revision_message_gives_valid_python(shell: InteractiveShell, message: str) -> None:
    quoted = "'" + message.replace("'", "'\\''") + "'"
    with Workspace.open(upto="0001") as ws, capture_output():
        shell.run_line_magic("alembic", f"revision -m {quoted}")
        written = [path for path in ws.versions.glob("0002_*.py")]
        assert len(written) == 1
        tree = ast.parse(written[0].read_text())  # a SyntaxError here broke every later command
        assert ast.get_docstring(tree, clean=False).splitlines()[0] == message
        with capture_output() as history:
            shell.run_line_magic("alembic", "history")
    assert "0001 -> 0002 (head)" in history.stdout


def test_plain_cli_revision_message_gives_valid_python(tmp_path: Path) -> None:
    (tmp_path / "alembic").mkdir()
    for name in ("env.py", "script.py.mako"):
        (tmp_path / "alembic" / name).write_text((REPO_ROOT / "alembic" / name).read_text())
    (tmp_path / "alembic" / "versions").mkdir()
    (tmp_path / "alembic.ini").write_text((REPO_ROOT / "alembic.ini").read_text())
    alembic = Path(sys.executable).with_name("alembic")
    done = subprocess.run([str(alembic), "revision", "-m", '"""', "--rev-id", "0001"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "alembic" / "versions").glob("0001_*.py")
    assert ast.get_docstring(ast.parse(written.read_text()), clean=False).splitlines()[0] == '"""'
