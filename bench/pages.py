"""What the pages for people (pyhost.index.browse) add to the page generator's work per upload, measured here.

    .venv/bin/python bench/run.py --pages [--repeat 7]

Two indexes, built in a temporary directory with small valid wheels whose METADATA carries a Markdown
description of about 3 kB (rendered with readme_renderer, as on the server):
- one project with 10,000 files;
- 1,000 projects with one file each.
For each, a full generation (what the service does when it starts), timed once, then --repeat uploads: one new
wheel of one project (a new latest version, so its description is rendered again) and `indexgen.generate` for
that project, as the server does after an upload (the median is kept). All of it with the pages for people and
again without them (the generator's hook replaced by one that does nothing), in this process, on this machine.
Times are the process's CPU time, not wall time: the machine this ran on is shared, and its other load would
otherwise swamp differences of a few hundred milliseconds.
Writes bench/pages.json and prints the table of bench/README.md.
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from container import make_wheels
from pyhost.index import indexgen

BENCH = Path(__file__).resolve().parent
DESCRIPTION = (
    "# benchpkg\n\nA package for the benchmark, with **some** Markdown, a list and code.\n\n"
    + "".join(f"- item {i}: a line of text that looks like a README's\n" for i in range(40))
    + "\n```python\nimport benchpkg\nprint(benchpkg.VERSION)\n```\n"
)
NO_PAGES = types.SimpleNamespace(
    update_project=lambda *args, **kwargs: None, update_front_page=lambda *args, **kwargs: None
)


def wheel(directory: Path, project: str, version: str) -> Path:
    more = f"Summary: {project}, for the benchmark\nDescription-Content-Type: text/markdown\n\n{DESCRIPTION}"
    return make_wheels.wheel(directory, version, project, more)


@contextmanager
def pages_for_people(enabled: bool) -> Iterator[None]:
    original = indexgen._browse
    if not enabled:
        indexgen._browse = lambda: NO_PAGES  # type: ignore[assignment]
    try:
        yield
    finally:
        indexgen._browse = original  # type: ignore[assignment]


def timed(action: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    """CPU seconds of this process (what the generator costs; the machine's other load does not count)."""
    started = time.process_time()
    action(*args, **kwargs)
    return time.process_time() - started


def measure_index(
    name: str, fill: Callable[[Path], None], upload_project: str, repeat: int
) -> dict[str, Any]:
    """A full generation, then `repeat` uploads, each with and without the pages for people."""
    result: dict[str, Any] = {"index": name}
    with tempfile.TemporaryDirectory(prefix="pyhost-bench-pages-") as scratch:
        packages = Path(scratch) / "packages"
        packages.mkdir()
        fill(packages)
        for enabled in (False, True):
            label = "with" if enabled else "without"
            simple, metadata = Path(scratch) / f"simple-{label}", Path(scratch) / f"metadata-{label}"
            uploads, new_files = [], []
            with pages_for_people(enabled):
                result[f"full_{label}_s"] = timed(indexgen.generate, packages, simple, metadata_dir=metadata)
                for run in range(repeat):
                    new = wheel(packages, upload_project, f"9000.{run}")
                    new_files.append(new)
                    uploads.append(
                        timed(
                            indexgen.generate,
                            packages,
                            simple,
                            [upload_project],
                            metadata_dir=metadata,
                            refresh=[new.name],
                        )
                    )
            for path in new_files:
                path.unlink()
            result[f"upload_{label}_s"] = statistics.median(uploads)
    result["upload_added_s"] = result["upload_with_s"] - result["upload_without_s"]
    result["full_added_s"] = result["full_with_s"] - result["full_without_s"]
    return result


def one_project(count: int) -> Callable[[Path], None]:
    def fill(packages: Path) -> None:
        for i in range(count):
            wheel(packages, "benchpkg", f"1.0.{i}")

    return fill


def many_projects(count: int) -> Callable[[Path], None]:
    def fill(packages: Path) -> None:
        for i in range(count):
            wheel(packages, f"benchpkg{i:04d}", "1.0")

    return fill


def render_table(run: dict[str, Any]) -> str:
    lines = [
        "| index | upload, without | upload, with | added per upload | full generation, without | with |",
        "|---|---|---|---|---|---|",
    ]
    for cell in run["cells"]:
        without, with_pages = cell["upload_without_s"] * 1000, cell["upload_with_s"] * 1000
        lines.append(
            f"| {cell['index']} | {without:.0f} ms | {with_pages:.0f} ms | {with_pages - without:+.0f} ms "
            f"| {cell['full_without_s']:.2f} s | {cell['full_with_s']:.2f} s |"
        )
    return "\n".join(lines)


def main(repeat: int, files: int = 10_000, projects: int = 1_000) -> None:
    cells = [
        measure_index(f"1 project, {files:,} files", one_project(files), "benchpkg", repeat),
        measure_index(f"{projects:,} projects, 1 file each", many_projects(projects), "benchpkg0007", repeat),
    ]
    run = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "repeat": repeat,
        "cells": cells,
    }
    (BENCH / "pages.json").write_text(json.dumps(run, indent=2) + "\n")
    print(render_table(run))
