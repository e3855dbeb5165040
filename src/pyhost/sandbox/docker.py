"""A thin wrapper over the docker command line, used by the sandbox and the test images."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from pyhost.errors import PyhostError


class DockerUnavailable(PyhostError):
    """No docker client, or no engine answering it."""


def _client() -> str:
    path = shutil.which("docker")
    if path is None:
        raise DockerUnavailable(
            "no docker client found: install Docker (on Debian or Ubuntu: apt-get install docker.io)"
        )
    return path


def require_engine() -> None:
    """Fail with one clear line unless a Docker engine answers."""
    proc = subprocess.run(
        [_client(), "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise DockerUnavailable(
            "no Docker engine answers: start dockerd (or run `make prereqs` as root), then try again"
        )


def run(
    args: Sequence[str], *, check: bool = True, capture: bool = True, input_bytes: bytes | None = None
) -> str:
    """Run `docker ARGS` and return its standard output."""
    proc = subprocess.run(
        [_client(), *args],
        capture_output=capture,
        input=input_bytes,
        check=False,
    )
    if check and proc.returncode != 0:
        detail = (proc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise PyhostError(
            f"docker {args[0]} failed: {detail[-1] if detail else 'exit ' + str(proc.returncode)}"
        )
    return (proc.stdout or b"").decode(errors="replace")


def image_exists(tag: str) -> bool:
    return (
        subprocess.run([_client(), "image", "inspect", tag], capture_output=True, check=False).returncode == 0
    )


def container_exists(name: str) -> bool:
    return (
        subprocess.run([_client(), "container", "inspect", name], capture_output=True, check=False).returncode
        == 0
    )


def container_running(name: str) -> bool:
    out = subprocess.run(
        [_client(), "container", "inspect", "--format", "{{.State.Running}}", name],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.returncode == 0 and out.stdout.strip() == "true"


def network_exists(name: str) -> bool:
    return (
        subprocess.run([_client(), "network", "inspect", name], capture_output=True, check=False).returncode
        == 0
    )
