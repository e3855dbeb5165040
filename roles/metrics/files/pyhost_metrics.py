"""pyhost's Prometheus metrics, written for node_exporter's textfile collector.

A systemd timer runs this every metrics_interval seconds with the index's own Python (the pypiserver venv,
which carries prometheus-client). Each run reads the lines nginx appended to its JSON access log since the
last run (`log_format pyhost_json` in roles/nginx/templates/pyhost.conf.j2), adds them to counters kept in a
state file, reads the certificate's expiry, asks systemd whether the services are active, reads the backup
script's record of its last runs and measures the upstream (pull-through) caches, then writes everything
in Prometheus' text format to one file, atomically (a temporary file renamed over it), which node_exporter
serves. A backup record or a cache that cannot be read costs its own series and one line on stderr, not the
others.

The state file remembers the log's inode and how far it was read. When logrotate has moved the log away (a
new inode at the path), the rest of the old file is read from its rotation (PATH.1, which Debian's
delaycompress keeps plain for a day) before the new file is read from its start; a file shorter than the
offset (truncated in place) is read again from its start. Only whole lines are counted: a line nginx is still
writing waits for the next run. The counters survive restarts in the state file; losing it starts them from
zero (a counter reset, which Prometheus' rate() handles).
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# A line longer than this is not one nginx wrote for a request: it counts as one unreadable line.
MAX_LINE = 64 * 1024
# At most this much log is read in one run (a first run over a large log catches up over several runs).
MAX_READ = 256 * 1024 * 1024
CHUNK = 1024 * 1024
STATE_VERSION = 1
# pypiserver's answer to an upload it kept.
UPLOADED = 200
# The backup script's record is a few key=value lines: anything larger is not its.
MAX_BACKUP_RECORD = 64 * 1024
# What each result of a backup run or check reports as pyhost_backup_last_run_ok / pyhost_backup_check_ok.
# "empty" is a run on a server without any release: nothing was due, so nothing failed.
BACKUP_RESULTS = {"ok": 1.0, "empty": 1.0, "failed": 0.0}
CHECK_RESULTS = {"ok": 1.0, "failed": 0.0}
# The help of each pyhost_backup_NAME series, NAME being the BackupRecord field it reports.
BACKUP_HELP = {
    "last_success_timestamp_seconds": "When the last backup succeeded (Unix time).",
    "last_run_timestamp_seconds": "When the last backup run ended (Unix time).",
    "last_run_ok": "1 when the last backup run did not fail (nothing to back up counts as 1).",
    "check_timestamp_seconds": "When the last repository check ended (Unix time).",
    "check_ok": "1 when the last repository check (restic check) passed.",
    "max_age_seconds": "How old the last success may be (backup_max_age_hours).",
}
# nginx's two caches in the upstream cache directory (proxy_cache_path, roles/nginx/templates/pyhost.conf.j2).
UPSTREAM_CACHES = ("files", "pages")
# At most this many entries (files and directories) of one cache are looked at in a run: a stat() each, a
# few seconds at most on a small VPS. The file cache holds one file per cached distribution, the page cache
# one per project page: far fewer in caches nginx keeps within their max_size.
MAX_CACHE_ENTRIES = 500_000


class MetricsError(Exception):
    """Something this run cannot work around: one line for the journal."""


@dataclass
class Totals:
    """What the access log has said so far: requests per status, uploads, bytes sent, unreadable lines."""

    requests: dict[str, int] = field(default_factory=dict)
    uploads: int = 0
    bytes_sent: int = 0
    unreadable: int = 0

    def add(self, line: bytes) -> None:
        try:
            entry = json.loads(line)
            status = int(entry["status"])
            sent = int(entry["bytes_sent"])
            method = str(entry["method"])
        except (ValueError, KeyError, TypeError):
            self.unreadable += 1
            return
        key = str(status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.bytes_sent += sent
        # twine, poetry and uv upload with a POST to the index's root, which pypiserver answers 200 when it
        # kept the file (a deletion, when allowed, is a POST there too).
        if method == "POST" and status == UPLOADED and str(entry.get("uri", "")).split("?", 1)[0] == "/":
            self.uploads += 1


@dataclass
class State:
    """Where the log was read up to, and the totals so far."""

    inode: int | None = None
    offset: int = 0
    totals: Totals = field(default_factory=Totals)

    @classmethod
    def load(cls, path: str) -> State:
        """The saved state; a missing or unreadable one starts from nothing."""
        try:
            with open(path, encoding="utf-8") as file:
                data = json.load(file)
            if data.get("version") != STATE_VERSION:
                return cls()
            totals = data["totals"]
            return cls(
                inode=data["inode"],
                offset=int(data["offset"]),
                totals=Totals(
                    requests={str(k): int(v) for k, v in totals["requests"].items()},
                    uploads=int(totals["uploads"]),
                    bytes_sent=int(totals["bytes_sent"]),
                    unreadable=int(totals["unreadable"]),
                ),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return cls()

    def save(self, path: str) -> None:
        data = {
            "version": STATE_VERSION,
            "inode": self.inode,
            "offset": self.offset,
            "totals": vars(self.totals),
        }
        # One run at a time (systemd never starts a unit twice at once): a fixed temporary name is enough.
        temporary = path + ".new"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(data, file, sort_keys=True)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)


def _lines(path: str, offset: int, budget: int) -> Iterator[tuple[bytes, int]]:
    """Each whole line of PATH from OFFSET on, with the offset after it, reading at most BUDGET bytes.

    A line longer than MAX_LINE is yielded once, cut there, and the rest of it is skipped.
    """
    with open(path, "rb") as file:
        file.seek(offset)
        pending = b""
        position = offset
        skipping = False
        while budget > 0:
            chunk = file.read(min(CHUNK, budget))
            if not chunk:
                return
            budget -= len(chunk)
            pending += chunk
            start = 0
            while (end := pending.find(b"\n", start)) >= 0:
                position += end + 1 - start
                if not skipping:
                    yield pending[start:end], position
                skipping = False
                start = end + 1
            pending = pending[start:]
            if len(pending) > MAX_LINE:
                position += len(pending)
                if not skipping:
                    yield pending, position
                skipping = True
                pending = b""


def _read(path: str, offset: int, totals: Totals, budget: int) -> tuple[int, int]:
    """Add PATH's whole lines from OFFSET on to TOTALS; the new offset and the bytes read."""
    position = offset
    for line, after in _lines(path, offset, budget):
        position = after
        if len(line) > MAX_LINE:
            totals.unreadable += 1
        elif line:
            totals.add(line)
    return position, position - offset


def _rotated(path: str, inode: int) -> str | None:
    """The rotation of PATH (PATH.1) that is the file read last time, if it is still there and plain."""
    candidate = path + ".1"
    try:
        if os.stat(candidate).st_ino == inode:
            return candidate
    except OSError:
        pass
    return None


def update(state: State, log: str, budget: int = MAX_READ) -> None:
    """Count what nginx appended to LOG since STATE, following a rotation."""
    try:
        current = os.stat(log)
    except FileNotFoundError:
        return
    if state.inode is not None and state.inode != current.st_ino:
        old = _rotated(log, state.inode)
        if old is not None:
            state.offset, used = _read(old, state.offset, state.totals, budget)
            budget -= used
            if budget <= 0:
                # The rest of the old file first, at the next run.
                return
        state.inode, state.offset = current.st_ino, 0
    if state.inode is None:
        state.inode, state.offset = current.st_ino, 0
    if current.st_size < state.offset:
        state.offset = 0
    state.offset, _ = _read(log, state.offset, state.totals, max(budget, 0))


def certificate_expiry(path: str) -> float | None:
    """The certificate's notAfter as a Unix time; None when there is no certificate (yet)."""
    if not os.path.exists(path):
        return None
    result = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-in", path],
        capture_output=True,
        text=True,
        check=False,
    )
    prefix = "notAfter="
    if result.returncode != 0 or not result.stdout.startswith(prefix):
        said = "; ".join(
            line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()
        )
        raise MetricsError(f"cannot read the certificate {path}: {said}")
    return float(ssl.cert_time_to_seconds(result.stdout[len(prefix) :].strip()))


def warn(message: str) -> None:
    """One line for the journal about a part left out of this run's metrics."""
    print(f"pyhost-metrics: {message}", file=sys.stderr)


@dataclass(frozen=True)
class BackupRecord:
    """The outcome of the last backup runs, as roles/backup's pyhost-backup records it (None: not yet)."""

    last_success_timestamp_seconds: int | None = None
    last_run_timestamp_seconds: int | None = None
    last_run_ok: float | None = None
    check_timestamp_seconds: int | None = None
    check_ok: float | None = None
    max_age_seconds: int | None = None


def _whole_number(key: str, value: str) -> int | None:
    if not value:
        return None
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"{key}={value!r} is not a whole number")
    return int(value)


def _result(key: str, value: str, results: dict[str, float]) -> float | None:
    if not value:
        return None
    if value not in results:
        raise ValueError(f"{key}={value!r} is not one of {', '.join(results)}")
    return results[value]


def parse_backup_record(text: str) -> BackupRecord:
    """The key=value lines the backup script writes (unknown keys ignored); ValueError for anything else."""
    record: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, equals, value = line.partition("=")
        if not equals:
            raise ValueError(f"line {number} is not key=value")
        record[key.strip()] = value.strip()
    hours = _whole_number("max_age_hours", record.get("max_age_hours", ""))
    return BackupRecord(
        last_success_timestamp_seconds=_whole_number("last_success", record.get("last_success", "")),
        last_run_timestamp_seconds=_whole_number("last_run", record.get("last_run", "")),
        last_run_ok=_result("last_result", record.get("last_result", ""), BACKUP_RESULTS),
        check_timestamp_seconds=_whole_number("check_run", record.get("check_run", "")),
        check_ok=_result("check_result", record.get("check_result", ""), CHECK_RESULTS),
        max_age_seconds=None if hours is None else hours * 3600,
    )


def backup_record(path: str | None) -> BackupRecord | None:
    """The backup's record at PATH; None when there is none (no backups here) or it cannot be read."""
    if not path:
        return None
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_BACKUP_RECORD + 1)
        if len(raw) > MAX_BACKUP_RECORD:
            raise ValueError(f"larger than {MAX_BACKUP_RECORD} bytes")
        return parse_backup_record(raw.decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        warn(f"the backup status {path} is left out: {exc}")
        return None


def cached_size(info: os.stat_result) -> int:
    """A cache file's size as nginx counts it against max_size (ngx_file_fs_size, nginx 1.19.1 and later): its
    allocated blocks when they exceed its size by less than eight filesystem blocks, else its size (a file
    with holes, or XFS's preallocation while a file is written)."""
    allocated = info.st_blocks * 512
    if info.st_size < allocated < info.st_size + 8 * info.st_blksize:
        return allocated
    return info.st_size


def disk_usage(directory: str, limit: int = MAX_CACHE_ENTRIES) -> int | None:
    """The bytes the files under DIRECTORY take as nginx counts them against max_size (cached_size). None
    when DIRECTORY does not exist; ValueError past LIMIT entries. What nginx's cache manager removes meanwhile
    is skipped."""
    total, seen, pending = 0, 0, [directory]
    while pending:
        current = pending.pop()
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    seen += 1
                    if seen > limit:
                        raise ValueError(f"more than {limit} entries: not measured")
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += cached_size(entry.stat(follow_symlinks=False))
                    except FileNotFoundError:
                        continue
        except FileNotFoundError:
            if current == directory:
                return None
    return total


def upstream_caches(directory: str | None, limit: int = MAX_CACHE_ENTRIES) -> dict[str, int]:
    """The disk usage of each of nginx's upstream caches under DIRECTORY that exists (none when upstream is
    off); a cache that cannot be measured is left out with one line on stderr."""
    sizes: dict[str, int] = {}
    if not directory:
        return sizes
    for name in UPSTREAM_CACHES:
        path = os.path.join(directory, name)
        try:
            size = disk_usage(path, limit)
        except (OSError, ValueError) as exc:
            warn(f"the upstream cache {path} is left out: {exc}")
            continue
        if size is not None:
            sizes[name] = size
    return sizes


def services_up(services: Iterable[str]) -> dict[str, bool]:
    """Whether systemd says each service is active."""
    return {
        name: subprocess.run(["systemctl", "is-active", "--quiet", name], check=False).returncode == 0
        for name in services
    }


class PyhostCollector(Collector):
    """The metrics of one run, for prometheus-client's text format."""

    def __init__(
        self,
        totals: Totals,
        expiry: float | None,
        services: dict[str, bool],
        *,
        backup: BackupRecord | None = None,
        caches: dict[str, int] | None = None,
        cache_max: int | None = None,
    ) -> None:
        self.totals = totals
        self.expiry = expiry
        self.services = services
        self.backup = backup
        self.caches = caches or {}
        self.cache_max = cache_max

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily(
            "pyhost_http_requests", "Requests nginx answered on the index, by status.", labels=["status"]
        )
        for status, count in sorted(self.totals.requests.items()):
            requests.add_metric([status], count)
        yield requests
        yield CounterMetricFamily(
            "pyhost_uploads",
            "Uploads the index accepted (POSTs to / answered 200).",
            value=self.totals.uploads,
        )
        yield CounterMetricFamily(
            "pyhost_http_response_bytes",
            "Bytes nginx sent for the index, headers included.",
            value=self.totals.bytes_sent,
        )
        yield CounterMetricFamily(
            "pyhost_access_log_unreadable_lines",
            "Access log lines that are not pyhost's JSON.",
            value=self.totals.unreadable,
        )
        if self.expiry is not None:
            yield GaugeMetricFamily(
                "pyhost_certificate_expiry_timestamp_seconds",
                "When the index's TLS certificate expires (Unix time).",
                value=self.expiry,
            )
        up = GaugeMetricFamily(
            "pyhost_service_up", "1 when systemd says the service is active.", labels=["service"]
        )
        for name, active in sorted(self.services.items()):
            up.add_metric([name], 1.0 if active else 0.0)
        yield up
        yield from self._backup()
        yield from self._upstream()

    def _backup(self) -> Iterator[Metric]:
        """The backup's series, each only when the record has its value (none without a record)."""
        if self.backup is None:
            return
        for name, help_text in BACKUP_HELP.items():
            value = getattr(self.backup, name)
            if value is not None:
                yield GaugeMetricFamily(f"pyhost_backup_{name}", help_text, value=value)

    def _upstream(self) -> Iterator[Metric]:
        """The upstream caches' disk usage and the file cache's cap (none when upstream is off)."""
        if self.caches:
            used = GaugeMetricFamily(
                "pyhost_upstream_cache_bytes",
                "Disk usage of nginx's upstream cache (files: distributions, pages: project pages).",
                labels=["cache"],
            )
            for name, size in sorted(self.caches.items()):
                used.add_metric([name], size)
            yield used
        if self.cache_max is not None:
            cap = GaugeMetricFamily(
                "pyhost_upstream_cache_max_bytes",
                "The upstream cache's cap (nginx's max_size).",
                labels=["cache"],
            )
            cap.add_metric(["files"], self.cache_max)
            yield cap


def run(args: argparse.Namespace) -> None:
    state = State.load(args.state)
    update(state, args.access_log)
    collector = PyhostCollector(
        state.totals,
        certificate_expiry(args.certificate),
        services_up(args.service),
        backup=backup_record(args.backup_status),
        caches=upstream_caches(args.upstream_cache),
        cache_max=args.upstream_cache_max_bytes if args.upstream_cache else None,
    )
    # The counters are saved before they are published: a crash in between publishes them at the next run,
    # never counts a line twice.
    state.save(args.state)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    write_to_textfile(args.output, registry)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--access-log", required=True, help="nginx's JSON access log")
    parser.add_argument("--state", required=True, help="where the log offset and the counters are kept")
    parser.add_argument("--certificate", required=True, help="the TLS certificate nginx serves (PEM)")
    parser.add_argument(
        "--service", action="append", default=[], help="a systemd unit to report (repeatable)"
    )
    parser.add_argument(
        "--backup-status", help="the backup script's record of its last runs (no backup series without it)"
    )
    parser.add_argument(
        "--upstream-cache",
        help="nginx's upstream cache directory, with files/ and pages/ (none: upstream is off)",
    )
    parser.add_argument(
        "--upstream-cache-max-bytes",
        type=int,
        help="the file cache's cap, nginx's max_size (with --upstream-cache)",
    )
    parser.add_argument("--output", required=True, help="the .prom file node_exporter reads")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (MetricsError, OSError) as exc:
        print(f"pyhost-metrics: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
