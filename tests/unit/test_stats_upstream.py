"""`pyhost stats --upstream`: public packages pulled through the upstream index, counted as private ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pyhost.index import indexgen
from pyhost.server import stats, stats_host

from .test_stats import DAY1, DAY2, DAY3, WHEEL, line, local_workspace

REQUESTS = "requests-2.32.3-py3-none-any.whl"
REQUESTS_SDIST = "requests-2.32.3.tar.gz"
REQUESTS_OLD = "requests-2.31.0-py3-none-any.whl"
SIX = "six-1.16.0-py2.py3-none-any.whl"
TYPING = "typing_extensions-4.12.2-py3-none-any.whl"
PRIVATE_NAME = "acme_lib-1.0-py3-none-any.whl"
LAST_PART = "bytes 500-999/1000"


def upstream(project: str, filename: str) -> str:
    return f"/upstream-files/{project}/{filename}"


def write_log(directory: Path) -> Path:
    """One log with private and upstream requests of every kind."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "pyhost.access.log"
    lines = [
        # Private downloads: counted without --upstream only.
        line(f"/packages/{WHEEL}", msec=DAY1),
        line(f"/packages/{WHEEL}", msec=DAY1 + 1, user="bob"),
        # Upstream downloads that count: 7.
        line(upstream("requests", REQUESTS), msec=DAY1 + 2),
        line(upstream("requests", REQUESTS), msec=DAY2, user="bob"),
        line(upstream("requests", REQUESTS_OLD) + "?x=1", msec=DAY2 + 1, user=""),
        line(upstream("requests", REQUESTS_SDIST), msec=DAY2 + 2, status=206, content_range=LAST_PART),
        line(upstream("six", SIX.replace("-1.16", "%2D1.16")), msec=DAY3),  # encoded: nginx decodes it
        line(upstream("Typing_Extensions", TYPING), msec=DAY3 + 1, user="carol"),  # normalized
        line(upstream("six", SIX), msec=DAY3 + 2, user='d"ave'),  # escaped: read as JSON
        # Upstream requests that do not count.
        line(upstream("requests", REQUESTS_SDIST), msec=DAY2 + 3, status=206, content_range="bytes 0-4/1000"),
        line(upstream("requests", REQUESTS), msec=DAY2 + 4, completion=""),  # aborted
        line(upstream("requests", REQUESTS), msec=DAY2 + 5, method="HEAD"),
        line(upstream("requests", REQUESTS) + ".metadata", msec=DAY2 + 6),
        line(upstream("requests", REQUESTS), msec=DAY2 + 7, status=304),
        line(upstream("acme-lib", PRIVATE_NAME), msec=DAY2 + 8, status=404),  # a private project's name
        line(upstream("requests", "README.txt"), msec=DAY2 + 9),  # not a distribution
        line(upstream("..", REQUESTS), msec=DAY2 + 10),  # not a project
        line(upstream("requests", f"../{REQUESTS}"), msec=DAY2 + 11),
        line(upstream("x%2F..%2Frequests", REQUESTS), msec=DAY2 + 12),
        line(f"/upstream-files/{REQUESTS}", msec=DAY2 + 13),  # no project
        line("/simple/requests/", msec=DAY2 + 14),
    ]
    log.write_text("".join(lines))
    return log


def summary_of(log: Path, **options: object) -> dict[str, object]:
    return stats.summarise(stats.log_files(str(log)), indexgen.parse_filename, **options)  # type: ignore[arg-type]


def test_upstream_counts_only_completed_upstream_downloads(tmp_path: Path) -> None:
    summary = summary_of(write_log(tmp_path / "logs"), by="file", upstream=True)
    assert summary["rows"] == [
        {"project": "requests", "version": "2.32.3", "file": REQUESTS, "downloads": 2, "users": 2},
        {"project": "six", "version": "1.16.0", "file": SIX, "downloads": 2, "users": 2},
        {"project": "requests", "version": "2.31.0", "file": REQUESTS_OLD, "downloads": 1, "users": 1},
        {"project": "requests", "version": "2.32.3", "file": REQUESTS_SDIST, "downloads": 1, "users": 1},
        {"project": "typing-extensions", "version": "4.12.2", "file": TYPING, "downloads": 1, "users": 1},
    ]
    assert summary["downloads"] == 7
    assert summary["users"] == 5  # alice, bob, anonymous, carol, d"ave
    assert summary["upstream"] is True
    assert (summary["lines"], summary["other_lines"]) == (21, 0)
    assert (summary["first"], summary["last"]) == (DAY1 + 2, DAY3 + 2)


def test_private_count_ignores_upstream_files(tmp_path: Path) -> None:
    summary = summary_of(write_log(tmp_path / "logs"), by="file")
    assert summary["rows"] == [
        {"project": "demo-pkg", "version": "1.0", "file": WHEEL, "downloads": 2, "users": 2},
    ]
    assert summary["upstream"] is False
    assert (summary["first"], summary["last"]) == (DAY1, DAY1 + 1)


def test_upstream_by_version_day_and_one_project(tmp_path: Path) -> None:
    log = write_log(tmp_path / "logs")
    assert summary_of(log, by="version", upstream=True)["rows"] == [
        {"project": "requests", "version": "2.32.3", "downloads": 3, "users": 2},
        {"project": "six", "version": "1.16.0", "downloads": 2, "users": 2},
        {"project": "requests", "version": "2.31.0", "downloads": 1, "users": 1},
        {"project": "typing-extensions", "version": "4.12.2", "downloads": 1, "users": 1},
    ]
    by_day = [(row["day"], row["downloads"]) for row in summary_of(log, by="day", upstream=True)["rows"]]
    assert by_day == [("2025-12-01", 1), ("2025-12-02", 3), ("2025-12-03", 3)]
    only = summary_of(log, by="user", project="typing-extensions", upstream=True)
    assert only["rows"] == [{"user": "carol", "downloads": 1, "users": 1}]
    since = summary_of(log, since=DAY3, upstream=True)
    assert since["rows"] == [
        {"project": "six", "downloads": 2, "users": 2},
        {"project": "typing-extensions", "downloads": 1, "users": 1},
    ]


def test_upstream_lines_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the line with an escaped quote is read as JSON: the others match the upstream expression."""
    read_as_json: list[bytes] = []

    def json_fields(line: bytes) -> tuple[bytes, ...] | None:
        read_as_json.append(line)
        return parse_json(line)

    parse_json = stats._json_fields
    monkeypatch.setattr(stats, "_json_fields", json_fields)
    assert summary_of(write_log(tmp_path / "logs"), upstream=True)["downloads"] == 7
    assert len(read_as_json) == 1 and b'd\\"ave' in read_as_json[0]


def test_server_arguments_pass_the_flag_on() -> None:
    argv = stats_host.server_arguments(None, None, "project", upstream=True)
    assert argv == ["--by", "project", "--upstream"]
    assert "--upstream" not in stats_host.server_arguments(None, None, "project")


# The command, through the real playbook on this machine -------------------------------------------------


@pytest.fixture
def upstream_workspace(tmp_path: Path) -> Path:
    return local_workspace(tmp_path, write_log)


def test_stats_upstream_command(invoke: Callable[..., Result], upstream_workspace: Path) -> None:
    base = ("stats", "--host", "theviji", "-i", str(upstream_workspace))
    result = invoke(*base, "--upstream", "--by", "version", "--project", "Requests", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == [
        {"project": "requests", "version": "2.32.3", "downloads": 3, "users": 2},
        {"project": "requests", "version": "2.31.0", "downloads": 1, "users": 1},
    ]
    table = invoke(*base, "--upstream")
    assert table.exit_code == 0, table.output
    assert "Downloads of upstream files on theviji" in table.stdout
    assert ["requests", "4", "3"] in [row.split() for row in table.stdout.splitlines()]
    assert "total: 7 downloads by 5 users" in table.stdout
    private = invoke(*base)
    assert "Downloads of private files on theviji" in private.stdout
    assert "total: 2 downloads by 2 users" in private.stdout


def test_stats_upstream_bad_option_fails_before_connecting(
    invoke: Callable[..., Result], unreachable_workspace: Path
) -> None:
    workspace = str(unreachable_workspace)
    result = invoke("stats", "--host", "theviji", "--upstream", "--since", "30y", "-i", workspace)
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("pyhost: error: --since '30y' is neither a duration")
    assert "unreachable" not in result.stderr
