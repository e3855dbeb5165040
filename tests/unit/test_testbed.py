"""A machine that cannot host the testbed gets one clear line each, and a non-zero exit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyhost.sandbox import docker, images, mirrors
from pyhost.sandbox.testbed import Testbed


def _fake_docker(bindir: Path, *, answers: bool) -> None:
    script = bindir / "docker"
    body = "echo 24.0.0; exit 0" if answers else 'echo "Cannot connect to the Docker daemon" >&2; exit 1'
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)


def _run_testbed(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyhost.sandbox.testbed"],
        env={
            "PATH": env.pop("PATH"),
            "HOME": str(tmp_path),
            "PYHOST_CACHE_DIR": str(tmp_path / "cache"),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _path_with(bindir: Path) -> str:
    keep = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    return os.pathsep.join([str(bindir), *keep])


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("pyhost: error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_no_docker_engine(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_docker(bindir, answers=False)
    line = _one_error_line(_run_testbed(tmp_path, {"PATH": _path_with(bindir)}))
    assert "no Docker engine answers" in line


def test_no_pyenv_checkout(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_docker(bindir, answers=True)
    proc = _run_testbed(tmp_path, {"PATH": _path_with(bindir), "PYENV_ROOT": str(tmp_path / "no-pyenv")})
    assert "no pyenv git checkout found" in _one_error_line(proc)


@pytest.mark.skipif(
    not Path("/root/.pyenv/.git").exists() and not os.environ.get("PYENV_ROOT"),
    reason="needs this machine's pyenv checkout",
)
def test_no_debian_source(tmp_path: Path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    _fake_docker(bindir, answers=True)
    pyenv_root = os.environ.get("PYENV_ROOT", "/root/.pyenv")
    proc = _run_testbed(
        tmp_path,
        {
            "PATH": _path_with(bindir),
            "PYENV_ROOT": pyenv_root,
            # A closed port on loopback: the archive cannot be reached.
            "PYHOST_DEBIAN_MIRROR": "http://127.0.0.1:9/debian",
        },
    )
    assert "no Debian source available" in _one_error_line(proc)


# ${NAME} in molecule.yml files, lookup('ansible.builtin.env', 'NAME') in their playbooks and variables.
MOLECULE_READS = re.compile(r"\$\{(PYHOST_[A-Z0-9_]+)\}|'ansible\.builtin\.env', '(PYHOST_[A-Z0-9_]+)'")


@pytest.mark.parametrize("cached", [True, False])
def test_environment_is_what_molecule_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cached: bool
) -> None:
    """Every variable the scenarios read is given, and nothing else: `--env` suffices for molecule by hand."""
    monkeypatch.setattr(docker, "image_exists", lambda tag: cached and tag == "python:tag")
    offline = mirrors.Mirrors(
        root=tmp_path, pyenv_git=tmp_path / "pyenv.git", pyenv_ref="abc", cpython=tmp_path
    )
    bed = Testbed(images.platform(), "host:tag", "pebble:tag", "python:tag", offline, ["3.13.5"], "s3:tag")
    env = bed.environment()
    molecule = Path(__file__).resolve().parents[2] / "molecule"
    read = {
        dollar or lookup
        for path in molecule.rglob("*.yml")
        for dollar, lookup in MOLECULE_READS.findall(path.read_text())
    }
    assert set(env) == read
    assert env["PYHOST_HOST_IMAGE"] == ("python:tag" if cached else "host:tag")
