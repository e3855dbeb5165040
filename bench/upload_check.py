"""What checking an upload before it is stored costs, as a project grows: serve.py's upload path, in process.

    .venv/bin/python bench/upload_check.py [--sizes 100,1000,10000] [--rounds 5]

No sandbox and no network: a packages directory under a temporary directory is filled with small wheels of
one project (bench/container/make_wheels.py, the same wheels bench/run.py uses), its pages are generated as
the service's ExecStartPre does, and then, at each size, `rounds` more wheels go through serve.py's
GuardedBackend.add_package, as pypiserver hands them over. Timed, per upload:

- check: reading the archive within its limits and comparing its core metadata with its name (indexgen's
  reader, distcheck);
- aliases: listing the packages directory and comparing the new file with every stored file of its project,
  the first time after a start (nothing cached) and afterwards (each stored name parsed once per process);
- upload: the whole add_package, which also regenerates the project's pages before it returns.

Writes bench/upload_check.json and prints the table of bench/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parent
APP = BENCH.parent / "roles/pypiserver/files/app"
MAKE_WHEELS = BENCH / "container/make_wheels.py"
PROJECT = "benchpkg"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def milliseconds(seconds: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(seconds) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
    }


def measure(root: Path, sizes: list[int], rounds: int) -> list[dict[str, Any]]:
    serve = load(APP / "serve.py")
    indexgen, distcheck = serve.load_module(serve.INDEXGEN), serve.load_module(serve.DISTCHECK)
    packages, pages, incoming = root / "packages", root / "simple", root / "incoming"
    for folder in (packages, pages, incoming):
        folder.mkdir()
    rows = []
    stored = 0
    for size in sizes:
        subprocess.run([sys.executable, MAKE_WHEELS, packages, str(stored), str(size - stored)], check=True)
        subprocess.run([sys.executable, MAKE_WHEELS, incoming, str(size), str(rounds)], check=True)
        stored = size + rounds
        indexgen.generate(packages, pages)
        backend = serve.GuardedBackend(
            None,
            packages,
            overwrite=False,
            allow_delete=False,
            pages=serve.StaticPages(indexgen, packages, pages, None),
            indexgen=indexgen,
            distcheck=distcheck,
        )
        distcheck._stored_key.cache_clear()
        check, aliases, uploads = [], [], []
        cold_aliases = None
        for path in sorted(incoming.iterdir()):
            started = time.perf_counter()
            key = distcheck.check_filename(path.name)
            metadata = indexgen.read_core_metadata(path)
            distcheck.check_metadata(key, indexgen.parse_core_metadata(metadata, path.name))
            checked = time.perf_counter()
            with os.scandir(packages) as entries:
                assert not distcheck.same_files(key, [entry.name for entry in entries])
            compared = time.perf_counter()
            backend.add_package(path.name, io.BytesIO(path.read_bytes()))
            done = time.perf_counter()
            check.append(checked - started)
            if cold_aliases is None:
                cold_aliases = compared - checked
            else:
                aliases.append(compared - checked)
            uploads.append(done - compared)
            path.unlink()
        rows.append(
            {
                "files": size,
                "uploads": rounds,
                "check": milliseconds(check),
                "aliases_first_ms": round(cold_aliases * 1000, 1),
                "aliases": milliseconds(aliases),
                "upload": milliseconds(uploads),
            }
        )
        print(f"{size} files: {rows[-1]}", file=sys.stderr)
    return rows


def render(result: dict[str, Any]) -> str:
    lines = [
        "| files in the project | check (median) | alias comparison, first after a start | "
        "alias comparison (median) | whole upload with page regeneration (median) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['files']:,} | {row['check']['median_ms']} ms | {row['aliases_first_ms']} ms | "
            f"{row['aliases']['median_ms']} ms | {row['upload']['median_ms']} ms |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/upload_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000", type=lambda v: [int(x) for x in v.split(",")])
    parser.add_argument("--rounds", type=int, default=5, help="uploads timed at each size")
    parser.add_argument("--render", metavar="JSON", help="only print the table of a results file")
    args = parser.parse_args(argv)
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return 0
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pyhost-upload-check-") as root:
        rows = measure(Path(root), args.sizes, args.rounds)
    result = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "python": sys.version.split()[0]},
        "rows": rows,
    }
    (BENCH / "upload_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
