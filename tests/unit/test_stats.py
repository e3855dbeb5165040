"""`pyhost stats`: completed downloads counted exactly from nginx's JSON access logs, rotations too."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pyhost import content
from pyhost.index import indexgen
from pyhost.server import stats

from .conftest import make_workspace

DAY1 = 1764547200.0  # 2025-12-01T00:00:00Z
DAY2 = DAY1 + 86400
DAY3 = DAY2 + 86400
WHEEL = "demo_pkg-1.0-py3-none-any.whl"
SDIST = "demo-pkg-1.0.tar.gz"
WHEEL2 = "demo_pkg-2.0-py3-none-any.whl"
OTHER = "other-0.1.tar.gz"


def line(
    uri: str,
    *,
    msec: float = DAY1,
    user: str = "alice",
    method: str = "GET",
    status: int = 200,
    completion: str = "OK",
    content_range: str = "",
) -> str:
    """One access log line as nginx's log_format pyhost_json writes it."""
    entry = {
        "time": "-",
        "msec": msec,
        "remote_addr": "192.0.2.7",
        "remote_user": user,
        "method": method,
        "uri": uri,
        "status": status,
        "bytes_sent": 100,
        "body_bytes_sent": 90,
        "content_range": content_range,
        "completion": completion,
        "request_time": 0.001,
        "user_agent": 'pip/24.0 "quoted"',
    }
    return json.dumps(entry, separators=(",", ":")) + "\n"


def write_logs(directory: Path) -> Path:
    """The current log, one plain rotation (.1) and two compressed ones (.2.gz, .3.gz), with every case."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "pyhost.access.log"
    oldest = [
        # Before pyhost's JSON format: read, not counted.
        '192.0.2.7 - alice [01/Dec/2025:00:00:00 +0000] "GET /packages/demo-pkg-1.0.tar.gz HTTP/1.1" 200 9\n',
        line(f"/packages/{SDIST}", msec=DAY1, user="bob"),
    ]
    older = [
        line(f"/packages/{WHEEL}", msec=DAY1 + 10),
        line(f"/packages/{WHEEL}", msec=DAY1 + 20, status=304),  # not modified: no download
        line(f"/packages/{WHEEL}", msec=DAY1 + 30, method="HEAD"),
        line(f"/packages/{WHEEL}.metadata", msec=DAY1 + 40),  # PEP 658 metadata
        line(f"/packages/{WHEEL}", msec=DAY1 + 50, completion=""),  # aborted transfer
    ]
    previous = [
        line(f"/packages/{WHEEL}", msec=DAY2, user=""),  # anonymous
        line(f"/packages/{WHEEL}", msec=DAY2 + 1, status=206, content_range="bytes 0-99/1000"),  # a part
        line(f"/packages/{WHEEL}", msec=DAY2 + 2, status=206, content_range="bytes 100-999/1000"),  # the end
        line(f"/packages/{WHEEL}", msec=DAY2 + 3, status=404),
        line("/simple/demo-pkg/", msec=DAY2 + 4),
        line("/", msec=DAY2 + 5, method="POST"),
    ]
    current = [
        line(f"/packages/{WHEEL2}?x=1", msec=DAY3, user="bob"),
        line("/packages/demo_pkg-2.0-py3-none-any.whl".replace("-py3", "%2Dpy3"), msec=DAY3 + 1),
        line("/packages/not-a-distribution.txt", msec=DAY3 + 2),
        line(f"/packages/{OTHER}", msec=DAY3 + 3, user="carol"),
        line(f"/packages/{WHEEL}", msec=DAY3 + 4)[:-40] + "\n",  # cut short (a full disk, a crash)
    ]
    with gzip.open(directory / "pyhost.access.log.3.gz", "wt") as stream:
        stream.writelines(oldest)
    with gzip.open(directory / "pyhost.access.log.2.gz", "wt") as stream:
        stream.writelines(older)
    (directory / "pyhost.access.log.1").write_text("".join(previous))
    log.write_text("".join(current))
    # Not rotations of this log.
    (directory / "error.log").write_text(line(f"/packages/{WHEEL}"))
    (directory / "pyhost.access.log.old").write_text(line(f"/packages/{WHEEL}"))
    return log


def summary_of(log: Path, **options: object) -> dict[str, object]:
    return stats.summarise(stats.log_files(str(log)), indexgen.parse_filename, **options)  # type: ignore[arg-type]


def test_rotations_are_found_oldest_first(tmp_path: Path) -> None:
    log = write_logs(tmp_path / "logs")
    names = [Path(p).name for p in stats.log_files(str(log))]
    assert names == ["pyhost.access.log.3.gz", "pyhost.access.log.2.gz", "pyhost.access.log.1", log.name]


def test_only_completed_downloads_count(tmp_path: Path) -> None:
    summary = summary_of(write_logs(tmp_path / "logs"), by="file")
    assert summary["rows"] == [
        {"project": "demo-pkg", "version": "1.0", "file": WHEEL, "downloads": 3, "users": 2},
        {"project": "demo-pkg", "version": "2.0", "file": WHEEL2, "downloads": 2, "users": 2},
        {"project": "demo-pkg", "version": "1.0", "file": SDIST, "downloads": 1, "users": 1},
        {"project": "other", "version": "0.1", "file": OTHER, "downloads": 1, "users": 1},
    ]
    assert summary["downloads"] == 7
    assert summary["users"] == 4  # alice, bob, carol and anonymous
    assert summary["lines"] == 18
    assert summary["other_lines"] == 2  # the old format line and the broken one
    assert summary["first"] == DAY1
    assert summary["last"] == DAY3 + 3
    assert len(summary["logs"]) == 4
    assert summary["errors"] == []


def test_by_project_version_user_and_day(tmp_path: Path) -> None:
    log = write_logs(tmp_path / "logs")
    by_project = summary_of(log)["rows"]
    assert by_project == [
        {"project": "demo-pkg", "downloads": 6, "users": 3},
        {"project": "other", "downloads": 1, "users": 1},
    ]
    assert summary_of(log, by="version")["rows"] == [
        {"project": "demo-pkg", "version": "1.0", "downloads": 4, "users": 3},
        {"project": "demo-pkg", "version": "2.0", "downloads": 2, "users": 2},
        {"project": "other", "version": "0.1", "downloads": 1, "users": 1},
    ]
    by_user = {row["user"]: row["downloads"] for row in summary_of(log, by="user")["rows"]}
    assert by_user == {"alice": 3, "bob": 2, "": 1, "carol": 1}
    by_day = [(row["day"], row["downloads"]) for row in summary_of(log, by="day")["rows"]]
    assert by_day == [("2025-12-01", 2), ("2025-12-02", 2), ("2025-12-03", 3)]


def test_project_and_since_narrow_the_count(tmp_path: Path) -> None:
    log = write_logs(tmp_path / "logs")
    only_other = summary_of(log, project="other")
    assert (only_other["downloads"], only_other["users"]) == (1, 1)
    recent = summary_of(log, since=DAY2, by="version")
    assert recent["rows"] == [
        {"project": "demo-pkg", "version": "1.0", "downloads": 2, "users": 2},
        {"project": "demo-pkg", "version": "2.0", "downloads": 2, "users": 2},
        {"project": "other", "version": "0.1", "downloads": 1, "users": 1},
    ]


def test_an_unreadable_log_is_reported_and_the_others_count(tmp_path: Path) -> None:
    log = write_logs(tmp_path / "logs")
    (tmp_path / "logs" / "pyhost.access.log.2.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    summary = summary_of(log)
    assert summary["downloads"] == 6
    assert len(summary["errors"]) == 1
    assert "pyhost.access.log.2.gz" in summary["errors"][0]


@pytest.mark.parametrize(
    ("value", "seconds"), [("30d", 30 * 86400), ("12h", 12 * 3600), ("2w", 14 * 86400), ("90m", 5400)]
)
def test_since_durations(value: str, seconds: int) -> None:
    assert stats.parse_since(value, 1_000_000_000.0) == 1_000_000_000.0 - seconds


def test_since_date_is_utc_midnight() -> None:
    assert stats.parse_since("2025-12-02", 0.0) == DAY2


@pytest.mark.parametrize("value", ["30", "d", "0d", "-1d", "30y", "2025-13-01", "yesterday"])
def test_bad_since_is_refused(value: str) -> None:
    with pytest.raises(stats.StatsError, match="--since"):
        stats.parse_since(value, 0.0)


def test_the_template_writes_every_field_as_json() -> None:
    """The log_format in nginx's template, with nginx's variables filled in, is a JSON object with FIELDS."""
    template = (content.roles_dir() / "nginx/templates/pyhost.conf.j2").read_text()
    match = re.search(r"^log_format pyhost_json escape=json ((?:'[^']*'\s*)+);", template, re.MULTILINE)
    assert match, "log_format pyhost_json is missing from the template"
    assert "access_log /var/log/nginx/pyhost.access.log pyhost_json;" in template
    text = "".join(re.findall(r"'([^']*)'", match.group(1)))
    values = {"request_method": "GET", "request_uri": f"/packages/{WHEEL}", "status": "200", "msec": "1.5"}
    filled = re.sub(r"\$([a-z_0-9]+)", lambda var: values.get(var.group(1), "7"), text)
    entry = json.loads(filled)
    assert set(stats.FIELDS) <= set(entry)
    assert entry["uri"] == f"/packages/{WHEEL}", "the original URI ($request_uri): try_files rewrites $uri"
    # Lines as the template writes them take the fast path.
    assert stats._FAST_ENTRY.match(filled.encode())


def test_lines_in_another_shape_count_the_same(tmp_path: Path) -> None:
    """Keys in another order, escaped characters: read as JSON, counted as the fast path counts."""
    log = write_logs(tmp_path / "logs")
    expected = summary_of(log, by="file")
    for path in stats.log_files(str(log)):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as stream:
            lines = stream.readlines()
        shuffled = []
        for text in lines:
            try:
                shuffled.append(json.dumps(json.loads(text), sort_keys=True, separators=(",", ":")) + "\n")
            except ValueError:
                shuffled.append(text)
        with opener(path, "wt") as stream:
            stream.writelines(shuffled)
    assert stats._FAST_ENTRY.match(line(f"/packages/{WHEEL}").encode())
    assert summary_of(log, by="file") == expected
    escaped = line(f"/packages/{WHEEL}", user='d"ave', msec=DAY3 + 9)
    assert '\\"' in escaped and not stats._FAST_ENTRY.match(escaped.encode())
    with log.open("a") as stream:
        stream.write(escaped)
    by_user = {row["user"]: row["downloads"] for row in summary_of(log, by="user")["rows"]}
    assert by_user['d"ave'] == 1


# The command, through the real playbook on this machine -------------------------------------------------


def local_workspace(tmp_path: Path, write: Callable[[Path], Path]) -> Path:
    """Host theviji on a local connection, with the access logs WRITE makes and the index's parser."""
    write(tmp_path / "logs")
    app = tmp_path / "app"
    app.mkdir()
    shutil.copyfile(indexgen.__file__, app / "pyhost_indexgen.py")
    return make_workspace(
        tmp_path / "ws",
        ansible_connection="local",
        ansible_become=False,
        ansible_python_interpreter=sys.executable,
        pyhost_stats_log=str(tmp_path / "logs" / "pyhost.access.log"),
        pypiserver_app_dir=str(app),
    )


@pytest.fixture
def stats_workspace(tmp_path: Path) -> Path:
    return local_workspace(tmp_path, write_logs)


def test_stats_command_json(invoke: Callable[..., Result], stats_workspace: Path) -> None:
    result = invoke(
        "stats",
        "--host",
        "theviji",
        "--by",
        "version",
        "--project",
        "Demo_Pkg",
        "--json",
        "-i",
        str(stats_workspace),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["rows"] == [
        {"project": "demo-pkg", "version": "1.0", "downloads": 4, "users": 3},
        {"project": "demo-pkg", "version": "2.0", "downloads": 2, "users": 2},
    ]
    assert summary["downloads"] == 6


def test_stats_command_table(invoke: Callable[..., Result], stats_workspace: Path) -> None:
    result = invoke("stats", "--host", "theviji", "--by", "user", "-i", str(stats_workspace))
    assert result.exit_code == 0, result.output
    rows = [row.split() for row in result.stdout.splitlines()]
    assert ["alice", "3"] in rows
    assert ["(anonymous)", "1"] in rows
    assert "total: 7 downloads by 4 users" in result.stdout


def test_stats_command_without_a_log(
    invoke: Callable[..., Result], stats_workspace: Path, tmp_path: Path
) -> None:
    shutil.rmtree(tmp_path / "logs")
    (tmp_path / "logs").mkdir()
    result = invoke("stats", "--host", "theviji", "-i", str(stats_workspace))
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"pyhost: error: could not read the download statistics of theviji: there is no access log "
        f"{tmp_path / 'logs' / 'pyhost.access.log'} yet: provision the host first"
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--since", "30y"], "neither a duration"),
        (["--project", "-bad-"], "not a valid project name"),
    ],
)
def test_stats_bad_option_fails_before_connecting(
    invoke: Callable[..., Result],
    unreachable_workspace: Path,
    option: list[str],
    message: str,
) -> None:
    result = invoke("stats", "--host", "theviji", *option, "-i", str(unreachable_workspace))
    assert result.exit_code == 1
    assert message in result.stderr
    assert "unreachable" not in result.stderr
