"""How fast `pyhost stats` summarises access logs: 1,000,000 lines in nginx's pyhost_json format.

    .venv/bin/python bench/stats_logs.py [--lines 1000000] [--repeat 3] [--python /usr/bin/python3]

Writes a realistic mix of requests (what pip, uv and Poetry send while installing: project pages, PEP 658
metadata, downloads, 304s, HEADs, 401s, uploads) spread over 30 days and 200 users and 50 projects, split like
logrotate leaves it (the current log, NAME.1, and the rest in NAME.2.gz), then times
src/pyhost/server/stats.py run as it runs on a server (`python stats.py --log ... --indexgen ...`, a fresh
process, --by version) and prints the median of --repeat runs. The logs live in a temporary directory and
are removed at the end.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STATS = REPO / "src/pyhost/server/stats.py"
INDEXGEN = REPO / "src/pyhost/index/indexgen.py"
START = 1764547200.0  # 2025-12-01T00:00:00Z
DAYS = 30
# (share of requests, method, path kind, status)
MIX = [
    (0.35, "GET", "page", 200),
    (0.20, "GET", "metadata", 200),
    (0.30, "GET", "file", 200),
    (0.06, "GET", "file", 304),
    (0.03, "HEAD", "file", 200),
    (0.04, "GET", "page", 401),
    (0.02, "POST", "upload", 200),
]


def make_lines(count: int, seed: int = 20) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    projects = [f"project-{n}" for n in range(50)]
    users = [f"user{n}" for n in range(200)] + [""]
    weights = [share for share, *_ in MIX]
    lines = []
    step = DAYS * 86400 / count
    for n in range(count):
        _, method, kind, status = rng.choices(MIX, weights)[0]
        project = rng.choice(projects)
        wheel = f"{project.replace('-', '_')}-1.{rng.randrange(20)}-py3-none-any.whl"
        uri = {
            "page": f"/simple/{project}/",
            "metadata": f"/packages/{wheel}.metadata",
            "file": f"/packages/{wheel}",
            "upload": "/",
        }[kind]
        entry = {
            "time": "-",
            "msec": round(START + n * step, 3),
            "remote_addr": f"198.51.100.{rng.randrange(1, 255)}",
            "remote_user": rng.choice(users),
            "method": method,
            "uri": uri,
            "status": status,
            "bytes_sent": 1234567,
            "body_bytes_sent": 1234000,
            "content_range": "",
            "completion": "OK" if rng.random() > 0.01 else "",
            "request_time": 0.012,
            "user_agent": 'pip/24.3.1 {"ci":null,"cpu":"x86_64","python":"3.12.7"}',
        }
        lines.append(json.dumps(entry, separators=(",", ":")) + "\n")
    return lines


def write_logs(directory: Path, lines: list[str]) -> Path:
    log = directory / "pyhost.access.log"
    tenth = len(lines) // 10
    with gzip.open(directory / "pyhost.access.log.2.gz", "wt", compresslevel=6) as stream:
        stream.writelines(lines[: len(lines) - 2 * tenth])
    (directory / "pyhost.access.log.1").write_text("".join(lines[len(lines) - 2 * tenth : -tenth]))
    log.write_text("".join(lines[-tenth:]))
    return log


def run_once(python: str, log: Path) -> tuple[float, float, dict[str, object]]:
    """Wall-clock and CPU seconds (user + system) of one run, and its summary."""
    argv = [python, "-I", str(STATS), "--log", str(log), "--indexgen", str(INDEXGEN), "--by", "version"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--python", default=sys.executable, help="the Python that runs stats.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pyhost-bench-stats-") as scratch:
        log = write_logs(Path(scratch), make_lines(args.lines))
        sizes = {path.name: path.stat().st_size for path in sorted(Path(scratch).iterdir())}
        walls, cpus = [], []
        for _ in range(args.repeat):
            wall, cpu, summary = run_once(args.python, log)
            walls.append(wall)
            cpus.append(cpu)
    version = subprocess.run(
        [args.python, "-c", "import platform; print(platform.python_version())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert summary["lines"] == args.lines, summary["lines"]
    print(f"Python {version}, {args.lines} lines in {', '.join(f'{k} ({v:,} B)' for k, v in sizes.items())}")
    print(
        f"downloads counted: {summary['downloads']}, rows: {len(summary['rows'])}, users: {summary['users']}"
    )
    print(
        f"wall seconds per run: {', '.join(f'{t:.2f}' for t in walls)}; median {statistics.median(walls):.2f}"
    )
    print(f"CPU seconds per run: {', '.join(f'{t:.2f}' for t in cpus)}; median {statistics.median(cpus):.2f}")
    print(f"load average at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
