"""Download statistics from nginx's access logs: completed downloads per project, version, file, user or day.

nginx writes one JSON object per request (`log_format pyhost_json` in roles/nginx/templates/pyhost.conf.j2;
FIELDS below are the keys read here). Logs can be large, so the summary is made where they are: `pyhost stats`
sends this file to the server (playbooks/stats.yml) and runs it there with the server's Python, which loads
the index's own file name parser (pyhost_indexgen.py, the same file as indexgen.py) with --indexgen; only the
summary, as JSON, comes back. Like indexgen.py, it imports only the standard library and avoids syntax newer
than Python 3.8.

A download counts when it is a GET of a distribution file under /packages/ (not its .metadata), answered 200
with the whole body sent ($request_completion OK), or a 206 whose range ends at the file's last byte (the
request that completes a resumed download). 304s, HEADs, metadata, errors and aborted transfers do not count.
With --upstream, the same rules count the files of the upstream index instead (public packages pulled through,
/upstream-files/PROJECT/FILE): one kind per run, so the default, private count reads no more than it did.
Rotated logs (NAME.1) and compressed ones (NAME.2.gz, ...) are read too, oldest first.
"""

from __future__ import annotations

import argparse
import calendar
import gzip
import importlib.util
import json
import os
import re
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    Parser = Callable[[str], tuple[str, str]]

# The keys of nginx's log_format pyhost_json that the summary reads.
FIELDS = ("msec", "remote_user", "method", "uri", "status", "completion", "content_range")
BY_CHOICES = ("project", "version", "file", "user", "day")
ROW_KEYS = {
    "project": ("project",),
    "version": ("project", "version"),
    "file": ("project", "version", "file"),
    "user": ("user",),
    "day": ("day",),
}
PACKAGES_PREFIX = "/packages/"
UPSTREAM_PREFIX = "/upstream-files/"
SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SINCE = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_ROTATED = re.compile(r"^\.([1-9][0-9]{0,4})(\.gz)?$")
_CONTENT_RANGE = re.compile(rb"^bytes ([0-9]+)-([0-9]+)/([0-9]+)$")
# An upstream file's project, as the upstream filter's pages write it (PEP 503 names; normalized below).
_PROJECT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_SEPARATORS = re.compile(r"[-_.]+")
# Cheap tests on the raw line before parsing it: with escape=json a quote inside a value is written \", so
# these only match the fields themselves.
_GET_MARK = b'"method":"GET"'
_OK_MARK = b'"status":200,'
_PARTIAL_MARK = b'"status":206,'
# The start of a line as nginx writes it for a GET of a file with status 200 or 206, values without escapes:
# four times faster than json.loads, which reads every other line (keys in another order, escaped characters).
_FAST_ENTRY_FORMAT = (
    rb'\{"time":"[^"\\]*","msec":([0-9.]+),"remote_addr":"[^"\\]*","remote_user":"([^"\\]*)",'
    rb'"method":"GET","uri":"(PREFIX[^"\\]*)","status":(20[06]),"bytes_sent":[0-9]+,"body_bytes_sent":[0-9]+,'
    rb'"content_range":"([^"\\]*)","completion":"([^"\\]*)",'
)
# Per kind of file (its URI prefix): the mark of its URI and the expression, made once.
_MARKS = {
    prefix: (
        b'"uri":"' + prefix.encode(),
        re.compile(_FAST_ENTRY_FORMAT.replace(b"PREFIX", re.escape(prefix).encode())),
    )
    for prefix in (PACKAGES_PREFIX, UPSTREAM_PREFIX)
}
_FAST_ENTRY = _MARKS[PACKAGES_PREFIX][1]
_LINE_ENDS = (b"}\n", b"}")
_METADATA = b".metadata"
# A line longer than this is not one nginx wrote for a request (its request line is bounded by its buffers).
MAX_LINE = 64 * 1024


class StatsError(Exception):
    """Bad arguments: one line for the user."""


def parse_since(value: str, now: float) -> float:
    """The start of the period as a Unix time: 30d, 12h, 2w or 90m before NOW, or a UTC date YYYY-MM-DD."""
    match = _SINCE.match(value)
    if match:
        return now - int(match.group(1)) * SECONDS[match.group(2)]
    if _DATE.match(value):
        try:
            return float(calendar.timegm(time.strptime(value, "%Y-%m-%d")))
        except ValueError:
            pass
    raise StatsError(f"--since {value!r} is neither a duration (30d, 12h, 2w, 90m) nor a date (YYYY-MM-DD)")


def log_files(path: str) -> list[str]:
    """PATH and its rotations (PATH.1, PATH.2.gz, ...) that exist, oldest first."""
    directory, name = os.path.split(path)
    rotated: list[tuple[int, str]] = []
    try:
        entries = os.listdir(directory or ".")
    except OSError as exc:
        raise StatsError(f"cannot read the log directory {directory}: {exc.strerror}") from exc
    for entry in entries:
        if not entry.startswith(name):
            continue
        match = _ROTATED.match(entry[len(name) :])
        if match:
            rotated.append((int(match.group(1)), os.path.join(directory, entry)))
    found = [file for _, file in sorted(rotated, reverse=True)]
    if os.path.isfile(path):
        found.append(path)
    return found


def _open(path: str) -> BinaryIO:
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


class Summary:
    """Completed downloads counted by (day, user, URI), plus what was read: of private files, or with
    UPSTREAM of the upstream index's files."""

    def __init__(self, since: float | None = None, *, upstream: bool = False) -> None:
        self.since = since
        self.upstream = upstream
        self.prefix = UPSTREAM_PREFIX if upstream else PACKAGES_PREFIX
        # (days since 1970, user name, URI) as nginx wrote them: decoded once per distinct key, in report().
        self.counts: dict[tuple[int, bytes, bytes], int] = {}
        self.lines = 0
        self.other_lines = 0
        self.first: float | None = None
        self.last: float | None = None
        self.logs: list[str] = []
        self.errors: list[str] = []

    def add_lines(self, lines: Iterable[bytes]) -> None:
        counts = self.counts
        since = self.since
        uri_mark, fast_entry = _MARKS[self.prefix]
        first, last = self.first, self.last
        read = other = 0
        for line in lines:
            read += 1
            if not line.startswith(b"{") or len(line) > MAX_LINE:
                other += 1
                continue
            if (
                _GET_MARK not in line
                or uri_mark not in line
                or (_OK_MARK not in line and _PARTIAL_MARK not in line)
            ):
                continue
            match = fast_entry.match(line) if line.endswith(_LINE_ENDS) else None
            try:
                fields = match.groups() if match is not None else _json_fields(line)
                if fields is None:
                    continue
                msec, user, uri, status, content_range, completion = fields
                if uri.endswith(_METADATA):
                    continue
                moment = float(msec)
            except (ValueError, KeyError, TypeError):
                other += 1
                continue
            if first is None or moment < first:
                first = moment
            if last is None or moment > last:
                last = moment
            if since is not None and moment < since:
                continue
            if status == b"200":
                if completion != b"OK":
                    continue
            elif status != b"206" or not _completes_file(content_range):
                continue
            key = (int(moment // 86400), user, uri)
            counts[key] = counts.get(key, 0) + 1
        self.lines += read
        self.other_lines += other
        self.first, self.last = first, last

    def add_file(self, path: str) -> None:
        """Read one log; a file that cannot be read is reported and the others still count."""
        try:
            with _open(path) as stream:
                self.add_lines(stream)
        except (OSError, EOFError) as exc:
            self.errors.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
            return
        self.logs.append(path)

    def report(self, parse: Parser, by: str = "project", project: str | None = None) -> dict[str, Any]:
        """Rows keyed by BY (see ROW_KEYS), most downloads first, each with its distinct users."""
        if by not in ROW_KEYS:
            raise StatsError(f"--by {by!r}: choose one of {', '.join(BY_CHOICES)}")
        files = {uri: _file_of(uri, self.prefix) for uri in {uri for _, _, uri in self.counts}}
        names = _parsed_names(parse, {file[1] for file in files.values() if file is not None})
        days: dict[int, str] = {}
        rows: dict[tuple[str, ...], dict[str, Any]] = {}
        everyone: set[str] = set()
        total = 0
        for (number, raw_user, uri), count in self.counts.items():
            file = files[uri]
            parsed = names.get(file[1]) if file is not None else None
            if file is None or parsed is None:
                continue
            # An upstream file's project is the one whose page listed it: its directory.
            directory, filename = file
            owner = directory if self.upstream else parsed[0]
            if project is not None and owner != project:
                continue
            day = days.get(number)
            if day is None:
                day = days[number] = time.strftime("%Y-%m-%d", time.gmtime(number * 86400))
            user = raw_user.decode("utf-8", "replace")
            fields = {"project": owner, "version": parsed[1], "file": filename, "user": user, "day": day}
            key = tuple(fields[name] for name in ROW_KEYS[by])
            row = rows.get(key)
            if row is None:
                row = rows[key] = {name: fields[name] for name in ROW_KEYS[by]}
                row.update(downloads=0, users=set())
            row["downloads"] += count
            row["users"].add(user)
            everyone.add(user)
            total += count
        ordered = sorted(rows.values(), key=lambda row: (-row["downloads"], [row[k] for k in ROW_KEYS[by]]))
        if by == "day":
            ordered.sort(key=lambda row: row["day"])
        return {
            "by": by,
            "project": project,
            "upstream": self.upstream,
            "since": self.since,
            "first": self.first,
            "last": self.last,
            "logs": self.logs,
            "errors": self.errors,
            "lines": self.lines,
            "other_lines": self.other_lines,
            "downloads": total,
            "users": len(everyone),
            "rows": [{**row, "users": len(row["users"])} for row in ordered],
        }


def _json_fields(line: bytes) -> tuple[bytes, ...] | None:
    """The fields _FAST_ENTRY reads, from a line it does not match (parsed as JSON); None for not a GET."""
    entry = json.loads(line)
    if entry["method"] != "GET":
        return None
    names = ("msec", "remote_user", "uri", "status", "content_range", "completion")
    return tuple(str(entry.get(name) or "").encode() for name in names)


def _file_of(uri: bytes, prefix: str) -> tuple[str, str] | None:
    """The project directory (normalized; "" under /packages/) and the file name of a download's URI
    (PREFIX[PROJECT/]NAME, decoded as nginx decodes it), or None for anything else (metadata too)."""
    try:
        path = uri.decode().split("?", 1)[0]
    except UnicodeDecodeError:
        return None
    if not path.startswith(prefix):
        return None
    directory, rest = "", path[len(prefix) :]
    if prefix == UPSTREAM_PREFIX:
        directory, _, rest = rest.partition("/")
        directory = urllib.parse.unquote(directory)
        if not _PROJECT_NAME.fullmatch(directory):
            return None
        directory = _SEPARATORS.sub("-", directory).lower()
    name = urllib.parse.unquote(rest)
    if not name or "/" in name or name.endswith(".metadata"):
        return None
    return directory, name


def _completes_file(content_range: bytes) -> bool:
    """A 206 whose range reaches the file's last byte: the request that finishes a resumed download."""
    match = _CONTENT_RANGE.match(content_range)
    return bool(match) and int(match.group(2)) + 1 == int(match.group(3))


def _parsed_names(parse: Parser, filenames: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(project, version) of each distribution file name; names that are not distributions are left out."""
    parsed: dict[str, tuple[str, str]] = {}
    for filename in filenames:
        try:
            parsed[filename] = parse(filename)
        except ValueError:  # InvalidDistribution: whatever the parser refuses is not a distribution
            continue
    return parsed


def summarise(
    paths: Iterable[str],
    parse: Parser,
    *,
    by: str = "project",
    project: str | None = None,
    since: float | None = None,
    upstream: bool = False,
) -> dict[str, Any]:
    summary = Summary(since, upstream=upstream)
    for path in paths:
        summary.add_file(path)
    return summary.report(parse, by, project)


def load_parser(indexgen_path: str | None) -> Parser:
    """indexgen's parse_filename: from the file at INDEXGEN_PATH (on a server), else pyhost's own module."""
    module: ModuleType
    if indexgen_path is None:
        from pyhost.index import indexgen  # noqa: PLC0415 - only when run from an installed pyhost

        module = indexgen
    else:
        spec = importlib.util.spec_from_file_location("pyhost_indexgen", indexgen_path)
        if spec is None or spec.loader is None or not os.path.isfile(indexgen_path):
            raise StatsError(f"{indexgen_path} is missing: provision the host first")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
    return module.parse_filename  # type: ignore[no-any-return]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="stats", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--log", required=True, help="the access log; its rotations are read too")
    parser.add_argument("--indexgen", help="pyhost_indexgen.py, whose parse_filename names the files")
    parser.add_argument("--since", help="30d, 12h, 2w, 90m or YYYY-MM-DD (UTC)")
    parser.add_argument("--project", help="one project (normalized name)")
    parser.add_argument("--by", choices=BY_CHOICES, default="project")
    parser.add_argument("--upstream", action="store_true", help=f"count {UPSTREAM_PREFIX} instead")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        since = parse_since(args.since, time.time()) if args.since else None
        paths = log_files(args.log)
        if not paths:
            raise StatsError(f"there is no access log {args.log} yet: provision the host first")
        report = summarise(
            paths,
            load_parser(args.indexgen),
            by=args.by,
            project=args.project,
            since=since,
            upstream=args.upstream,
        )
    except StatsError as exc:
        print(f"stats: error: {exc}", file=sys.stderr)
        return 1
    json.dump(report, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
