"""Run molecule scenarios from pytest, streaming their output and keeping a log per scenario."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS", REPO / "artifacts"))


def log_path(scenario: str, action: str, platform: str = "") -> Path:
    """artifacts/molecule-SCENARIO-ACTION[-PLATFORM].log (a PYHOST_TEST_IMAGE name made safe for a file)."""
    suffix = "-" + re.sub(r"[^A-Za-z0-9._-]+", "_", platform) if platform else ""
    return ARTIFACTS / f"molecule-{scenario}-{action}{suffix}.log"


def run(scenario: str, action: str, env: dict[str, str], *args: str, platform: str = "") -> tuple[int, str]:
    """`molecule ACTION -s SCENARIO ARGS`; returns the exit code and the whole output.

    Output goes to the terminal as it comes (the CI log shows the scenario's steps) and to log_path().
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = log_path(scenario, action, platform)
    molecule = Path(sys.executable).with_name("molecule")
    cmd = [str(molecule), action, "-s", scenario, *args]
    # molecule calls ansible-playbook and ansible-config by name: the venv's bin/ need not be on PATH.
    path = os.pathsep.join([str(molecule.parent), os.environ.get("PATH", os.defpath)])
    full_env = {
        **os.environ,
        **env,
        "PATH": path,
        "PY_COLORS": "0",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
    }
    lines: list[str] = []
    with (
        log.open("w") as out,
        subprocess.Popen(
            cmd, cwd=REPO, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            out.write(line)
            sys.__stdout__.write(line)
        code = proc.wait()
    return code, "".join(lines)
