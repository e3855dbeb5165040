"""What the sandbox and the tests need on this machine: a Docker engine, the images and the offline mirrors.

`python -m pyhost.sandbox.testbed` prepares all of it, for every platform the tests run on, and prints one
line per item, or one clear error line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pyhost.content import example_inventory
from pyhost.errors import PyhostError
from pyhost.sandbox import docker, images, mirrors


@dataclass(frozen=True)
class Testbed:
    __test__ = False  # not a pytest test class, despite its name
    platform: images.HostPlatform
    host_image: str
    pebble_image: str
    python_image: str
    mirrors: mirrors.Mirrors
    python_versions: list[str]
    s3_image: str

    def environment(self) -> dict[str, str]:
        """The variables molecule/ reads: the host image (the cached CPython one once the pyenv scenario has
        built it, else the bare systemd image), pebble's and moto's images and the offline mirrors."""
        host = self.python_image if docker.image_exists(self.python_image) else self.host_image
        return {
            "PYHOST_HOST_IMAGE": host,
            # The bare systemd image, for the scenario's other hosts (the backup server).
            "PYHOST_BASE_IMAGE": self.host_image,
            "PYHOST_PEBBLE_IMAGE": self.pebble_image,
            "PYHOST_S3_IMAGE": self.s3_image,
            "PYHOST_MIRRORS": str(self.mirrors.root),
            "PYHOST_PYENV_REF": self.mirrors.pyenv_ref,
        }


def default_python_versions() -> list[str]:
    """The CPython version the example workspace pins: the one the mirrors must carry."""
    settings = yaml.safe_load((example_inventory() / "group_vars/index_servers/main.yml").read_text())
    return [str(settings["pyhost_python_version"])]


def prepare(
    platform: images.HostPlatform | None = None,
    python_versions: list[str] | None = None,
    log_dir: Path | None = None,
) -> Testbed:
    """Check the engine, build what is missing, and return the names of everything prepared for PLATFORM."""
    host_platform = platform or images.platform()
    versions = python_versions or default_python_versions()
    docker.require_engine()
    offline = mirrors.ensure_mirrors(versions)
    log = (log_dir / f"debootstrap-{host_platform.suite}.log") if log_dir and host_platform.suite else None
    host = images.ensure_base_image(host_platform, log)
    pebble = images.ensure_pebble_image()
    return Testbed(
        platform=host_platform,
        host_image=host,
        pebble_image=pebble,
        python_image=images.python_image_tag(host_platform, versions, offline.pyenv_ref),
        mirrors=offline,
        python_versions=versions,
        s3_image=images.ensure_s3_image(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyhost.sandbox.testbed", description=__doc__)
    parser.add_argument("--log-dir", type=Path, default=None, help="where to keep build logs")
    parser.add_argument(
        "--env", action="store_true", help="print KEY=VALUE lines for molecule (PYHOST_PLATFORM's) instead"
    )
    args = parser.parse_args(argv)
    try:
        if args.env:
            for key, value in prepare(log_dir=args.log_dir).environment().items():
                print(f"{key}={value}")
            return 0
        beds = [prepare(platform, log_dir=args.log_dir) for platform in images.matrix_platforms()]
    except PyhostError as exc:
        print(f"pyhost: error: {exc}", file=sys.stderr)
        return 1
    for bed in beds:
        cached = "cached" if docker.image_exists(bed.python_image) else "built by the pyenv scenario first"
        print(f"{bed.platform.name}:")
        print(f"  host image:    {bed.host_image}")
        print(f"  python image:  {bed.python_image} ({cached})")
    print(f"pebble image:    {beds[0].pebble_image}")
    print(f"S3 (moto) image: {beds[0].s3_image}")
    print(f"pyenv mirror:    {beds[0].mirrors.pyenv_git} @ {beds[0].mirrors.pyenv_ref[:12]}")
    print(f"CPython:         {beds[0].mirrors.cpython} ({', '.join(beds[0].python_versions)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
