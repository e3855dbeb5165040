"""Offline sources for the roles: a git mirror of pyenv and a CPython source mirror.

The CPython mirror is laid out the way python-build expects `PYTHON_BUILD_MIRROR_URL`: one file per source
tarball, named by its sha256. Debian source packages carry the upstream tarballs byte for byte, so the
mirror is filled from Debian's archive (which this machine reaches) through a private apt configuration that
leaves the machine's own apt sources alone. Each tarball's sha256 is checked against the one that pyenv's
build definition expects before it is accepted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyhost.errors import PyhostError

DEBIAN_SOURCE_SUITES = ("trixie", "sid", "bookworm")
DEBIAN_ARCHIVE = os.environ.get("PYHOST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


def cache_dir() -> Path:
    """Where downloaded and generated artefacts are kept between runs."""
    base = os.environ.get("PYHOST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pyhost"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class Mirrors:
    """Paths on the controller; the sandbox and the tests mount `root` into the host container."""

    root: Path
    pyenv_git: Path
    pyenv_ref: str
    cpython: Path


def pyenv_root() -> Path:
    """The pyenv checkout on this machine, from PYENV_ROOT or `pyenv root`."""
    env = os.environ.get("PYENV_ROOT")
    candidates = [Path(env)] if env else []
    if shutil.which("pyenv"):
        out = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    candidates.append(Path.home() / ".pyenv")
    for path in candidates:
        if (path / ".git").exists() and (path / "plugins/python-build/bin/python-build").exists():
            return path
    raise PyhostError(
        "no pyenv git checkout found (looked at PYENV_ROOT, `pyenv root` and ~/.pyenv): "
        "install pyenv with git, or point PYENV_ROOT at a checkout"
    )


def ensure_pyenv_mirror(root: Path) -> tuple[Path, str]:
    """A bare git mirror of the local pyenv checkout, refreshed on each call; returns (path, HEAD commit)."""
    source = pyenv_root()
    head = _git(["-C", str(source), "rev-parse", "HEAD"]).strip()
    mirror = root / "pyenv.git"
    if not mirror.exists():
        tmp = root / "pyenv.git.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        _git(["clone", "--quiet", "--bare", f"file://{source}", str(tmp)])
        tmp.rename(mirror)
    else:
        _git(["-C", str(mirror), "fetch", "--quiet", f"file://{source}", "+HEAD:refs/heads/master"])
    _git(["-C", str(mirror), "update-server-info"])
    return mirror, head


def _git(args: list[str]) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise PyhostError(f"git {args[0]} failed: {reason}")
    return proc.stdout


def expected_tarball(version: str) -> tuple[str, str]:
    """(file name, sha256) of the .tar.xz that pyenv's build definition for VERSION downloads."""
    definition = pyenv_root() / "plugins/python-build/share/python-build" / version
    if not definition.is_file():
        raise PyhostError(f"pyenv at {pyenv_root()} has no build definition for Python {version}")
    match = re.search(r'"https?://[^"#]*/(Python-[\w.]+\.tar\.xz)#([0-9a-f]{64})"', definition.read_text())
    if match is None:
        raise PyhostError(f"cannot read the CPython .tar.xz checksum from {definition}")
    return match.group(1), match.group(2)


def ensure_cpython_mirror(root: Path, versions: list[str]) -> Path:
    """Fill ROOT/cpython/<sha256> with the source tarball of each version, fetched from Debian's archive."""
    mirror = root / "cpython"
    mirror.mkdir(parents=True, exist_ok=True)
    for version in versions:
        name, sha = expected_tarball(version)
        if (mirror / sha).is_file() and _sha256(mirror / sha) == sha:
            continue
        tarball = _fetch_debian_orig(version)
        try:
            actual = _sha256(tarball)
            if actual != sha:
                raise PyhostError(
                    f"Debian's source for Python {version} has sha256 {actual}; pyenv expects {sha} ({name})"
                )
            partial = mirror / f".{sha}.partial"
            shutil.copyfile(tarball, partial)
            partial.rename(mirror / sha)
        finally:
            shutil.rmtree(tarball.parent, ignore_errors=True)
    return mirror


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _apt_options(base: Path) -> list[str]:
    for sub in ("lists/partial", "cache/archives/partial", "etc"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    sources = base / "etc/sources.list"
    sources.write_text(
        "".join(
            f"deb-src [signed-by={KEYRING}] {DEBIAN_ARCHIVE} {suite} main\n" for suite in DEBIAN_SOURCE_SUITES
        )
    )
    return [
        "-o",
        f"Dir::Etc::SourceList={sources}",
        "-o",
        "Dir::Etc::SourceParts=/dev/null",
        "-o",
        f"Dir::State::Lists={base / 'lists'}",
        "-o",
        f"Dir::Cache={base / 'cache'}",
        "-o",
        "Dir::State::status=/dev/null",
        "-o",
        "APT::Sandbox::User=root",
    ]


def _fetch_debian_orig(version: str) -> Path:
    if shutil.which("apt-get") is None:
        raise PyhostError(
            f"no Debian source available for Python {version}: apt-get is missing on this machine"
        )
    minor = ".".join(version.split(".")[:2])
    package = f"python{minor}"
    apt_dir = cache_dir() / "apt-sources"
    opts = _apt_options(apt_dir)
    update = subprocess.run(["apt-get", *opts, "update"], capture_output=True, text=True, check=False)
    if update.returncode != 0:
        reason = " ".join(update.stderr.strip().splitlines()[-1:])
        raise PyhostError(
            f"no Debian source available: `apt-get update` of the source lists failed ({reason})"
        )
    shown = subprocess.run(
        ["apt-cache", *opts, "showsrc", package], capture_output=True, text=True, check=False
    )
    debian_versions = [
        v for v in re.findall(r"^Version: (\S+)$", shown.stdout, re.MULTILINE) if v.split("-")[0] == version
    ]
    if not debian_versions:
        raise PyhostError(
            f"no Debian source available for Python {version}: no {package} source package "
            f"of that upstream version in {', '.join(DEBIAN_SOURCE_SUITES)}"
        )
    work = Path(tempfile.mkdtemp(prefix="pyhost-src-", dir=cache_dir()))
    fetched = subprocess.run(
        ["apt-get", *opts, "source", "--download-only", "-q", f"{package}={debian_versions[0]}"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    origs = list(work.glob(f"{package}_{version}.orig.tar.xz"))
    if fetched.returncode != 0 or not origs:
        raise PyhostError(f"no Debian source available for Python {version}: apt-get source failed")
    return origs[0]


def ensure_mirrors(versions: list[str]) -> Mirrors:
    root = cache_dir() / "mirrors"
    root.mkdir(parents=True, exist_ok=True)
    pyenv_git, ref = ensure_pyenv_mirror(root)
    cpython = ensure_cpython_mirror(root, versions)
    return Mirrors(root=root, pyenv_git=pyenv_git, pyenv_ref=ref, cpython=cpython)
