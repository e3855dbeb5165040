"""A role's parts run on this machine by ansible-playbook, for the tests of roles that need no server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyhost import content


def run_play(
    tmp_path: Path, role: str, play_text: str, extra: dict[str, Any], links: Iterable[str] = ("templates",)
) -> subprocess.CompletedProcess[str]:
    """Run PLAY_TEXT against localhost with EXTRA as extra variables; the role's LINKS (its templates, files)
    sit beside the play, since lookups in a play's own tasks search there."""
    play = tmp_path / "play"
    play.mkdir(exist_ok=True)
    for name in links:
        (play / name).unlink(missing_ok=True)
        (play / name).symlink_to(content.roles_dir() / role / name)
    (play / "play.yml").write_text(play_text)
    (tmp_path / "extra.json").write_text(json.dumps({"ansible_python_interpreter": sys.executable, **extra}))
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"@{tmp_path / 'extra.json'}",
            str(play / "play.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_ROLES_PATH": str(content.roles_dir()), "ANSIBLE_NOCOLOR": "1"},
    )


def assert_refused(
    done: subprocess.CompletedProcess[str], message: str, secret: str, unwritten: Path
) -> None:
    """A play stopped by a role's settings check: MESSAGE said, SECRET not shown, UNWRITTEN not written."""
    assert done.returncode != 0
    assert message in done.stdout, done.stdout[-2000:]
    assert secret not in done.stdout
    assert not unwritten.exists()
