"""How long the metrics collector takes to measure an upstream cache of N files (roles/metrics).

    .venv/bin/python bench/metrics_cache.py [--files 100000 500000] [--repeat 3]

Lays out N small files as nginx's proxy_cache_path levels=1:2 does (files/X/YZ/<md5>) in a temporary
directory, then times the collector's upstream_caches() on it, as one timer run does, and prints the median
of --repeat runs. The directory entries are in the kernel's cache after the first run (a server's collector
runs every 30 s, so they mostly are there too); the files are removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

COLLECTOR = Path(__file__).resolve().parent.parent / "roles/metrics/files/pyhost_metrics.py"


def load_collector() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pyhost_metrics", COLLECTOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up by name.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def lay_out(root: Path, count: int) -> None:
    for number in range(count):
        name = hashlib.md5(str(number).encode(), usedforsecurity=False).hexdigest()
        directory = root / "files" / name[-1] / name[-3:-1]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(b"x" * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[100_000, 500_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    collector = load_collector()
    for count in args.files:
        with tempfile.TemporaryDirectory(prefix="pyhost-bench-cache-") as temporary:
            root = Path(temporary)
            lay_out(root, count)
            runs = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                sizes = collector.upstream_caches(str(root), limit=count + 4096 + 16)
                runs.append(time.perf_counter() - start)
            assert sizes["files"] >= 100 * count, sizes
            print(f"{count:>9,} files: median {statistics.median(runs):.2f} s of {args.repeat} runs")


if __name__ == "__main__":
    main()
