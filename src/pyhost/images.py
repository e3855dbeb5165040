"""Container images for the sandbox and the tests: a systemd host and a local ACME server (pebble).

Each image is tagged by a hash of its recipe, so it is built once and rebuilt only when the recipe changes.
PYHOST_TEST_IMAGE selects another systemd host image instead (for example an Ubuntu 24.04 systemd image on a
machine that can pull one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pyhost import docker
from pyhost.content import roles_dir
from pyhost.errors import PyhostError

IMAGE_ENV = "PYHOST_TEST_IMAGE"

DEBIAN_MIRROR = os.environ.get("PYHOST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "ca-certificates",
    "sudo",
    "locales",
    "iproute2",
    "procps",
    "curl",
    "gnupg",
)
APT_SOURCES = f"""\
deb {DEBIAN_MIRROR} {DEBIAN_SUITE} main
deb {DEBIAN_MIRROR} {DEBIAN_SUITE}-updates main
deb http://deb.debian.org/debian-security {DEBIAN_SUITE}-security main
"""
# Units that make no sense in a container and would leave systemd "degraded".
MASKED_UNITS = (
    "systemd-firstboot.service",
    "systemd-udevd.service",
    "systemd-udev-trigger.service",
    "getty.target",
    "console-getty.service",
    "systemd-resolved.service",
    "e2scrub_reap.service",
)
IMPORT_CHANGES = (
    'CMD ["/lib/systemd/systemd"]',
    "ENV container=docker",
)

PEBBLE_DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pebble openssl \\
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /etc/pebble && cd /etc/pebble \\
 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=pyhost test pebble CA' \\
      -keyout ca.key -out ca.pem \\
 && openssl req -newkey rsa:2048 -nodes -subj '/CN=pebble' -keyout key.pem -out req.csr \\
 && printf 'subjectAltName=DNS:pebble,DNS:localhost,IP:127.0.0.1\\n' > san.ext \\
 && openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \\
      -extfile san.ext -out cert.pem \\
 && chmod 0644 key.pem
COPY pebble.json /etc/pebble/pebble.json
ENV PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0
EXPOSE 14000 15000
CMD ["/usr/bin/pebble", "-config", "/etc/pebble/pebble.json", "-dnsserver", "127.0.0.11:53"]
"""
PEBBLE_CONFIG = {
    "pebble": {
        "listenAddress": "0.0.0.0:14000",
        "managementListenAddress": "0.0.0.0:15000",
        "certificate": "/etc/pebble/cert.pem",
        "privateKey": "/etc/pebble/key.pem",
        "httpPort": 80,
        "tlsPort": 443,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": False,
    }
}


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def base_recipe() -> str:
    return json.dumps(
        {
            "suite": DEBIAN_SUITE,
            "mirror": DEBIAN_MIRROR,
            "packages": BASE_PACKAGES,
            "sources": APT_SOURCES,
            "masked": MASKED_UNITS,
            "changes": IMPORT_CHANGES,
            "ca": _host_ca_digest(),
        },
        sort_keys=True,
    )


def base_image_tag() -> str:
    """The systemd host image: the override from PYHOST_TEST_IMAGE, else our Debian 12 build."""
    override = os.environ.get(IMAGE_ENV, "").strip()
    if override:
        return override
    return f"pyhost-debian12-systemd:{_digest(base_recipe())}"


def pebble_image_tag() -> str:
    return f"pyhost-pebble:{_digest(PEBBLE_DOCKERFILE, json.dumps(PEBBLE_CONFIG), base_image_tag())}"


def _host_ca_digest() -> str:
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    return _digest(*(p.read_text(errors="replace") for p in extra))


def ensure_base_image(log: Path | None = None) -> str:
    """Build (once) and return the tag of the systemd host image."""
    tag = base_image_tag()
    docker.require_engine()
    if docker.image_exists(tag):
        return tag
    if os.environ.get(IMAGE_ENV, "").strip():
        docker.run(["pull", tag], capture=False)
        return tag
    _build_debian_base(tag, log)
    return tag


def _build_debian_base(tag: str, log: Path | None) -> None:
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise PyhostError(
            "debootstrap is missing: install it (apt-get install debootstrap) to build the test image"
        )
    if os.geteuid() != 0:
        raise PyhostError(
            f"building the image {tag} with debootstrap needs root: run as root, or set {IMAGE_ENV}"
        )
    with tempfile.TemporaryDirectory(prefix="pyhost-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        logfile = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
        try:
            proc = subprocess.run(
                [
                    debootstrap,
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    DEBIAN_SUITE,
                    str(root),
                    DEBIAN_MIRROR,
                ],
                stdout=logfile,
                stderr=subprocess.STDOUT,
                check=False,
            )
        finally:
            if log:
                logfile.close()
        if proc.returncode != 0:
            raise PyhostError(
                f"debootstrap of {DEBIAN_SUITE} failed (exit {proc.returncode}); see {log or 'its output'}"
            )
        _customise_rootfs(root)
        args = ["docker", "import"]
        for change in IMPORT_CHANGES:
            args += ["--change", change]
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([*args, "-", tag], stdin=tar.stdout, capture_output=True, check=False)
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise PyhostError(
                f"docker import of {tag} failed: {imported.stderr.decode(errors='replace').strip()}"
            )


def _customise_rootfs(root: Path) -> None:
    (root / "etc/apt/sources.list").write_text(APT_SOURCES)
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("pyhost\n")
    for unit in MASKED_UNITS:
        target = root / "etc/systemd/system" / unit
        target.unlink(missing_ok=True)
        target.symlink_to("/dev/null")
    cas = root / "usr/local/share/ca-certificates"
    cas.mkdir(parents=True, exist_ok=True)
    for crt in Path("/usr/local/share/ca-certificates").glob("*.crt"):
        shutil.copy2(crt, cas / crt.name)
    subprocess.run(["chroot", str(root), "update-ca-certificates"], capture_output=True, check=False)
    # Keep the image small: the package lists are fetched again by the roles.
    for lists in (root / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()


def ensure_pebble_image() -> str:
    """Build (once) and return the tag of the local ACME server image."""
    tag = pebble_image_tag()
    docker.require_engine()
    if docker.image_exists(tag):
        return tag
    base = ensure_base_image()
    with tempfile.TemporaryDirectory(prefix="pyhost-pebble-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(PEBBLE_DOCKERFILE.format(base=base))
        (ctx / "pebble.json").write_text(json.dumps(PEBBLE_CONFIG, indent=2))
        docker.run(["build", "-q", "-t", tag, str(ctx)])
    return tag


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def python_image_tag(python_versions: list[str], pyenv_ref: str) -> str:
    """The host image with CPython already built by the pyenv role, keyed by everything that shapes the build.

    The `pyenv` molecule scenario builds CPython for real once and commits its container under this tag; the
    other scenarios and the sandbox start from it, so the role finds the build done and skips it.
    """
    recipe = _digest(
        base_image_tag(), _tree_digest(roles_dir() / "pyenv"), ",".join(python_versions), pyenv_ref
    )
    return f"pyhost-python:{recipe}"


def sandbox_host_image(python_versions: list[str], pyenv_ref: str) -> str:
    """The cached CPython image when one exists for this recipe, else the bare systemd host image."""
    cached = python_image_tag(python_versions, pyenv_ref)
    return cached if docker.image_exists(cached) else ensure_base_image()
