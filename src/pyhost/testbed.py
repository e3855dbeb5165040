"""What the sandbox and the tests need on this machine: a Docker engine, the images and the offline mirrors.

`python -m pyhost.testbed` prepares all of it and prints one line per item, or one clear error line.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from pyhost import docker, images, mirrors
from pyhost.content import example_inventory
from pyhost.errors import PyhostError


@dataclass(frozen=True)
class Testbed:
    __test__ = False  # not a pytest test class, despite its name
    host_image: str
    pebble_image: str
    python_image: str
    mirrors: mirrors.Mirrors
    python_versions: list[str]

    def environment(self) -> dict[str, str]:
        """The variables molecule/ reads: the host image (the cached CPython one once the pyenv scenario has
        built it, else the bare systemd image), pebble's image and the offline mirrors."""
        host = self.python_image if docker.image_exists(self.python_image) else self.host_image
        return {
            "PYHOST_HOST_IMAGE": host,
            "PYHOST_PEBBLE_IMAGE": self.pebble_image,
            "PYHOST_MIRRORS": str(self.mirrors.root),
            "PYHOST_PYENV_REF": self.mirrors.pyenv_ref,
        }


def default_python_versions() -> list[str]:
    """The CPython version the example workspace pins: the one the mirrors must carry."""
    settings = yaml.safe_load((example_inventory() / "group_vars/index_servers/main.yml").read_text())
    return [str(settings["pyhost_python_version"])]


def prepare(python_versions: list[str] | None = None, log_dir: Path | None = None) -> Testbed:
    """Check the engine, build what is missing, and return the names of everything prepared."""
    versions = python_versions or default_python_versions()
    docker.require_engine()
    offline = mirrors.ensure_mirrors(versions)
    log = (log_dir / "debootstrap.log") if log_dir else None
    host = images.ensure_base_image(log)
    pebble = images.ensure_pebble_image()
    return Testbed(
        host_image=host,
        pebble_image=pebble,
        python_image=images.python_image_tag(versions, offline.pyenv_ref),
        mirrors=offline,
        python_versions=versions,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyhost.testbed", description=__doc__)
    parser.add_argument("--log-dir", type=Path, default=None, help="where to keep build logs")
    parser.add_argument(
        "--env",
        action="store_true",
        help="print KEY=VALUE lines instead, for molecule by hand: "
        "env $(python -m pyhost.testbed --env) molecule test -s pyenv",
    )
    args = parser.parse_args(argv)
    try:
        bed = prepare(log_dir=args.log_dir)
    except PyhostError as exc:
        print(f"pyhost: error: {exc}", file=sys.stderr)
        return 1
    if args.env:
        for key, value in bed.environment().items():
            print(f"{key}={value}")
        return 0
    cached = "cached" if docker.image_exists(bed.python_image) else "built by the pyenv scenario on first use"
    print(f"host image:    {bed.host_image}")
    print(f"pebble image:  {bed.pebble_image}")
    print(f"python image:  {bed.python_image} ({cached})")
    print(f"pyenv mirror:  {bed.mirrors.pyenv_git} @ {bed.mirrors.pyenv_ref[:12]}")
    print(f"CPython:       {bed.mirrors.cpython} ({', '.join(bed.python_versions)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
