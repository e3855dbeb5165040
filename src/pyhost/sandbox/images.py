"""Container images for the sandbox and the tests: systemd hosts, a local ACME server (pebble) and an S3 API
server (moto) for the mirror.

A host platform is a Debian release bootstrapped here (debian12, debian13). Each image is tagged by a hash of
its recipe, so it is built once and rebuilt only when the recipe changes. PYHOST_TEST_IMAGE names another
systemd host image to use instead of every one of them (for example an Ubuntu 24.04 systemd image on a machine
that can pull one); pebble and moto always run on the Debian 12 build, whatever the host image.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyhost.content import roles_dir
from pyhost.errors import PyhostError
from pyhost.sandbox import docker

IMAGE_ENV = "PYHOST_TEST_IMAGE"
PLATFORM_ENV = "PYHOST_PLATFORM"

DEBIAN_MIRROR = os.environ.get("PYHOST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# The platforms bootstrapped here, by name: the Debian suite of each.
SUITES = {"debian12": "bookworm", "debian13": "trixie"}
DEFAULT_PLATFORM = "debian12"
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


@dataclass(frozen=True)
class HostPlatform:
    """A systemd host image: a Debian suite bootstrapped here, or an image named by PYHOST_TEST_IMAGE."""

    name: str
    suite: str | None = None

    @property
    def pulled(self) -> bool:
        return self.suite is None


def platform(name: str | None = None) -> HostPlatform:
    """PYHOST_TEST_IMAGE's image when set, else the platform NAME (or PYHOST_PLATFORM's, or debian12)."""
    override = os.environ.get(IMAGE_ENV, "").strip()
    if override:
        return HostPlatform(override)
    chosen = name or os.environ.get(PLATFORM_ENV, "").strip() or DEFAULT_PLATFORM
    if chosen not in SUITES:
        raise PyhostError(f"unknown platform {chosen!r}: choose one of {', '.join(SUITES)}")
    return HostPlatform(chosen, SUITES[chosen])


def matrix_platforms() -> list[HostPlatform]:
    """Where `make test` runs the scenarios: every platform bootstrapped here, or only PYHOST_TEST_IMAGE."""
    override = os.environ.get(IMAGE_ENV, "").strip()
    if override:
        return [HostPlatform(override)]
    return [HostPlatform(name, suite) for name, suite in SUITES.items()]


def apt_sources(suite: str) -> str:
    return (
        f"deb {DEBIAN_MIRROR} {suite} main\n"
        f"deb {DEBIAN_MIRROR} {suite}-updates main\n"
        f"deb http://deb.debian.org/debian-security {suite}-security main\n"
    )


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

# pebble's listener certificate and its CA carry the extensions that strict verification asks for (the default
# of Python 3.13, on Debian 13): key usages, and the leaf's authority key identifier.
PEBBLE_DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pebble openssl \\
 && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /etc/pebble && cd /etc/pebble \\
 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=pyhost test pebble CA' \\
      -addext 'keyUsage=critical,keyCertSign,cRLSign' -keyout ca.key -out ca.pem \\
 && openssl req -newkey rsa:2048 -nodes -subj '/CN=pebble' -keyout key.pem -out req.csr \\
 && printf '%s\\n' 'subjectAltName=DNS:pebble,DNS:localhost,IP:127.0.0.1' \\
      'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \\
      'extendedKeyUsage=serverAuth' \\
      'subjectKeyIdentifier=hash' 'authorityKeyIdentifier=keyid' > san.ext \\
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


def base_recipe(suite: str) -> str:
    return json.dumps(
        {
            "suite": suite,
            "mirror": DEBIAN_MIRROR,
            "packages": BASE_PACKAGES,
            "sources": apt_sources(suite),
            "masked": MASKED_UNITS,
            "changes": IMPORT_CHANGES,
            "ca": _host_ca_digest(),
        },
        sort_keys=True,
    )


def base_image_tag(host: HostPlatform) -> str:
    """The systemd host image of HOST: the image PYHOST_TEST_IMAGE names, or our build of its Debian suite."""
    if host.suite is None:
        return host.name
    return f"pyhost-{host.name}-systemd:{_digest(base_recipe(host.suite))}"


# The S3 API server the molecule scenario's mirror pushes to: moto in server mode (the version
# the test venv runs here), from PyPI at build time as pebble comes from Debian's archive.
S3_REQUIREMENTS = ("moto[s3]==5.2.5", "flask>=3,<4", "flask-cors>=5,<7")
S3_DOCKERFILE = """\
FROM {base}
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv \\
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/moto \\
 && /opt/moto/bin/pip install --no-cache-dir --disable-pip-version-check {requirements}
"""


def s3_image_tag() -> str:
    base = base_image_tag(HostPlatform(DEFAULT_PLATFORM, SUITES[DEFAULT_PLATFORM]))
    return f"pyhost-s3:{_digest(S3_DOCKERFILE, *S3_REQUIREMENTS, base)}"


def pebble_image_tag() -> str:
    base = base_image_tag(HostPlatform(DEFAULT_PLATFORM, SUITES[DEFAULT_PLATFORM]))
    return f"pyhost-pebble:{_digest(PEBBLE_DOCKERFILE, json.dumps(PEBBLE_CONFIG), base)}"


def _host_ca_digest() -> str:
    extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
    return _digest(*(p.read_text(errors="replace") for p in extra))


def ensure_base_image(host: HostPlatform, log: Path | None = None) -> str:
    """Build (once) and return the tag of HOST's systemd image; PYHOST_TEST_IMAGE's image is pulled."""
    tag = base_image_tag(host)
    docker.require_engine()
    if docker.image_exists(tag):
        return tag
    if host.suite is None:
        docker.run(["pull", tag], capture=False)
        return tag
    _build_debian_base(host.suite, tag, log)
    return tag


def _build_debian_base(suite: str, tag: str, log: Path | None) -> None:
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise PyhostError(
            "debootstrap is missing: install it (apt-get install debootstrap) to build the test image"
        )
    if os.geteuid() != 0:
        raise PyhostError(f"building the image {tag} with debootstrap needs root: run as root")
    with tempfile.TemporaryDirectory(prefix="pyhost-rootfs-") as tmp:
        root = Path(tmp) / "rootfs"
        logfile = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
        try:
            proc = subprocess.run(
                [
                    debootstrap,
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    suite,
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
                f"debootstrap of {suite} failed (exit {proc.returncode}); see {log or 'its output'}"
            )
        _customise_rootfs(root, suite)
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


def _customise_rootfs(root: Path, suite: str) -> None:
    (root / "etc/apt/sources.list").write_text(apt_sources(suite))
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
    return _ensure_service_image(
        pebble_image_tag(),
        lambda base: {
            "Dockerfile": PEBBLE_DOCKERFILE.format(base=base),
            "pebble.json": json.dumps(PEBBLE_CONFIG, indent=2),
        },
    )


def ensure_s3_image() -> str:
    """Build (once) and return the tag of the S3 API server image (moto)."""
    requirements = " ".join(shlex.quote(r) for r in S3_REQUIREMENTS)
    return _ensure_service_image(
        s3_image_tag(),
        lambda base: {"Dockerfile": S3_DOCKERFILE.format(base=base, requirements=requirements)},
    )


def _ensure_service_image(tag: str, context: Callable[[str], dict[str, str]]) -> str:
    """TAG, built once on the default platform's base image from the files CONTEXT(base) names."""
    docker.require_engine()
    if docker.image_exists(tag):
        return tag
    base = ensure_base_image(HostPlatform(DEFAULT_PLATFORM, SUITES[DEFAULT_PLATFORM]))
    with tempfile.TemporaryDirectory(prefix="pyhost-image-") as tmp:
        ctx = Path(tmp)
        for name, text in context(base).items():
            (ctx / name).write_text(text)
        docker.run(["build", "-q", "-t", tag, str(ctx)])
    return tag


def _tree_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def python_image_tag(host: HostPlatform, python_versions: list[str], pyenv_ref: str) -> str:
    """HOST's image with CPython already built by the pyenv role, keyed by everything that shapes the build.

    The `pyenv` molecule scenario builds CPython for real once per platform and commits its container
    under this tag; the other scenarios and the sandbox start from it, so the role finds the build done.
    """
    recipe = _digest(
        base_image_tag(host), _tree_digest(roles_dir() / "pyenv"), ",".join(python_versions), pyenv_ref
    )
    return f"pyhost-python:{recipe}"


def sandbox_host_image(host: HostPlatform, python_versions: list[str], pyenv_ref: str) -> str:
    """The cached CPython image of HOST when one exists for this recipe, else HOST's bare systemd image."""
    cached = python_image_tag(host, python_versions, pyenv_ref)
    return cached if docker.image_exists(cached) else ensure_base_image(host)
