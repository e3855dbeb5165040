"""The metrics collector (roles/metrics/files/pyhost_metrics.py): exact counters from nginx's JSON access log,
read incrementally across runs, rotations and truncation; the certificate's expiry; the services' state; the
backup's record of its last runs; the upstream caches' disk usage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.scripts import load_script

ROLE = Path(__file__).resolve().parents[2] / "roles" / "metrics"


collector = load_script(ROLE / "files" / "pyhost_metrics.py", "pyhost_metrics")


def entry(
    uri: str = "/packages/demo-1.0.tar.gz", *, method: str = "GET", status: int = 200, sent: int = 100
) -> bytes:
    """One access log line as nginx's log_format pyhost_json writes it."""
    fields = {
        "time": "2026-12-01T00:00:00+00:00",
        "msec": 1764547200.0,
        "remote_addr": "192.0.2.7",
        "remote_user": "alice",
        "method": method,
        "uri": uri,
        "status": status,
        "bytes_sent": sent,
        "body_bytes_sent": max(sent - 50, 0),
        "content_range": "",
        "completion": "OK",
        "request_time": 0.001,
        "user_agent": "twine/6.0",
    }
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


class Host:
    """A log, state, certificate and output file in a temporary directory; run() is one run of the timer."""

    def __init__(self, root: Path) -> None:
        self.log = root / "pyhost.access.log"
        self.state = root / "state" / "state.json"
        self.certificate = root / "fullchain.pem"
        self.output_dir = root / "textfile"
        self.output = self.output_dir / "pyhost.prom"
        self.backup_status = root / "pyhost-backup" / "status"
        self.upstream_cache = root / "pyhost-upstream"
        self.state.parent.mkdir()
        self.output_dir.mkdir()

    def run(self, *services: str, extra: tuple[str, ...] = ()) -> int:
        argv = [
            *extra,
            "--access-log",
            str(self.log),
            "--state",
            str(self.state),
            "--certificate",
            str(self.certificate),
        ]
        for service in services:
            argv += ["--service", service]
        return collector.main([*argv, "--output", str(self.output)])

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of the output file: (name, sorted labels) -> value."""
        samples = {}
        for family in text_string_to_metric_families(self.output.read_text()):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def requests(self) -> dict[str, float]:
        return {
            dict(labels)["status"]: value
            for (name, labels), value in self.metrics().items()
            if name == "pyhost_http_requests_total"
        }

    def value(self, name: str) -> float:
        return self.metrics()[(name, ())]

    def named(self, prefix: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {key: value for key, value in self.metrics().items() if key[0].startswith(prefix)}


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def append(path: Path, *lines: bytes) -> None:
    with path.open("ab") as file:
        file.write(b"".join(lines))


def test_counts_requests_uploads_and_bytes_exactly(host: Host) -> None:
    append(
        host.log,
        entry(status=200, sent=1000),
        entry(status=200, sent=2000),
        entry("/simple/demo/", status=304, sent=150),
        entry("/simple/demo/", status=401, sent=300),
        entry("/simple/demo/", status=401, sent=300),
        entry("/", method="POST", status=200, sent=210),
        entry("/?:action=file_upload", method="POST", status=200, sent=210),
        entry("/", method="POST", status=409, sent=220),
        entry("/", method="GET", status=200, sent=500),
        b'192.0.2.7 - - [01/Dec/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 5\n',
        # Not a line nginx writes: one unreadable line, however long.
        b"x" * (2 * collector.CHUNK + 10) + b"\n",
        # nginx is still writing this one: counted at the next run.
        entry(status=404, sent=99).rstrip(b"\n")[:40],
    )
    assert host.run() == 0
    assert host.requests() == {"200": 5, "304": 1, "401": 2, "409": 1}
    assert host.value("pyhost_uploads_total") == 2
    assert host.value("pyhost_http_response_bytes_total") == 1000 + 2000 + 150 + 600 + 420 + 220 + 500
    assert host.value("pyhost_access_log_unreadable_lines_total") == 2
    # No temporary file is left next to the output (node_exporter reads every *.prom there).
    assert sorted(path.name for path in host.output_dir.iterdir()) == ["pyhost.prom"]


def test_each_line_is_counted_once_across_runs(host: Host) -> None:
    partial = entry(status=404, sent=99)
    append(host.log, entry(status=200, sent=10), partial[:30])
    assert host.run() == 0
    assert host.requests() == {"200": 1}
    append(host.log, partial[30:], entry(status=200, sent=10))
    assert host.run() == 0
    assert host.run() == 0
    assert host.requests() == {"200": 2, "404": 1}
    assert host.value("pyhost_http_response_bytes_total") == 10 + 99 + 10


def test_rotation_finishes_the_old_file_then_reads_the_new_one(host: Host) -> None:
    append(host.log, entry(status=200), entry(status=200))
    assert host.run() == 0
    # logrotate renames the log; nginx writes to the renamed file until it reopens its logs, then a new one.
    rotated = host.log.with_name(host.log.name + ".1")
    host.log.rename(rotated)
    append(rotated, entry(status=403), entry(status=200))
    append(host.log, entry(status=500), entry("/", method="POST", status=200))
    assert host.run() == 0
    assert host.requests() == {"200": 4, "403": 1, "500": 1}
    assert host.value("pyhost_uploads_total") == 1
    # The next rotation: .1 is compressed away, the current file moves to .1.
    rotated.unlink()
    host.log.rename(rotated)
    append(host.log, entry(status=201))
    assert host.run() == 0
    assert host.requests() == {"200": 4, "201": 1, "403": 1, "500": 1}


def test_a_rotation_larger_than_one_run_is_finished_before_the_new_file(host: Host) -> None:
    line = entry(status=200)
    append(host.log, line)
    state = collector.State()
    collector.update(state, str(host.log))
    rotated = host.log.with_name(host.log.name + ".1")
    host.log.rename(rotated)
    append(rotated, line * 10)
    append(host.log, entry(status=404))
    # Four lines' worth a run: 4 + 4 old lines, then the last 2 and the new file's line.
    runs = 0
    while state.totals.requests != {"200": 11, "404": 1}:
        collector.update(state, str(host.log), budget=4 * len(line))
        runs += 1
        assert runs <= 4, state.totals
    assert runs == 3
    collector.update(state, str(host.log), budget=4 * len(line))
    assert state.totals.requests == {"200": 11, "404": 1}


def test_a_log_truncated_in_place_is_read_from_its_start(host: Host) -> None:
    append(host.log, entry(status=200), entry(status=200), entry(status=200))
    assert host.run() == 0
    host.log.write_bytes(entry(status=502))
    assert host.run() == 0
    assert host.requests() == {"200": 3, "502": 1}


def test_counters_survive_a_missing_log_and_restart_from_zero_without_state(host: Host) -> None:
    append(host.log, entry(status=200))
    assert host.run() == 0
    host.log.unlink()
    assert host.run() == 0
    assert host.requests() == {"200": 1}
    host.state.write_text("{not json")
    append(host.log, entry(status=200))
    assert host.run() == 0
    assert host.requests() == {"200": 1}


def test_certificate_expiry_is_its_not_after(host: Host, tmp_path: Path) -> None:
    assert host.run() == 0
    assert not any(name == "pyhost_certificate_expiry_timestamp_seconds" for name, _ in host.metrics())
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp_path / "key.pem"),
            "-out",
            str(host.certificate),
            "-days",
            "47",
            "-subj",
            "/CN=pypi.example.com",
        ],
        check=True,
        capture_output=True,
    )
    not_after = x509.load_pem_x509_certificate(host.certificate.read_bytes()).not_valid_after_utc.timestamp()
    assert abs(not_after - (time.time() + 47 * 86400)) < 600
    assert host.run() == 0
    assert host.value("pyhost_certificate_expiry_timestamp_seconds") == not_after


def test_a_bad_certificate_is_one_line_and_nothing_written(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    host.certificate.write_text("not a certificate\n")
    assert host.run() == 1
    error = capsys.readouterr().err
    assert error.startswith("pyhost-metrics: cannot read the certificate ")
    assert error.count("\n") == 1
    assert not host.output.exists()


def test_services_up_as_systemctl_says(host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    # Active: nginx.service only.
    fake.write_text('#!/bin/sh\n[ "$1 $2 $3" = "is-active --quiet nginx.service" ]\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert host.run("pypiserver.service", "nginx.service") == 0
    up = {
        dict(labels)["service"]: value
        for (name, labels), value in host.metrics().items()
        if name == "pyhost_service_up"
    }
    assert up == {"pypiserver.service": 0.0, "nginx.service": 1.0}


BACKUP_RECORD = """last_success=1764547200
last_result=ok
last_run=1764550800
check_result=failed
check_run=1764540000
max_age_hours=48
"""


def backup_series(host: Host) -> dict[str, float]:
    return {name: value for (name, _), value in host.named("pyhost_backup_").items()}


@pytest.mark.parametrize(("result", "ok"), [("ok", 1.0), ("empty", 1.0), ("failed", 0.0)])
def test_the_backup_record_is_reported_exactly(host: Host, result: str, ok: float) -> None:
    host.backup_status.parent.mkdir()
    host.backup_status.write_text(BACKUP_RECORD.replace("last_result=ok", f"last_result={result}"))
    assert host.run(extra=("--backup-status", str(host.backup_status))) == 0
    assert backup_series(host) == {
        "pyhost_backup_last_success_timestamp_seconds": 1764547200.0,
        "pyhost_backup_last_run_timestamp_seconds": 1764550800.0,
        "pyhost_backup_last_run_ok": ok,
        "pyhost_backup_check_timestamp_seconds": 1764540000.0,
        "pyhost_backup_check_ok": 0.0,
        "pyhost_backup_max_age_seconds": 48 * 3600.0,
    }


def test_a_backup_record_without_a_success_or_a_check_has_no_such_series(host: Host) -> None:
    host.backup_status.parent.mkdir()
    host.backup_status.write_text(
        "last_success=\nlast_result=empty\nlast_run=1764550800\ncheck_result=\ncheck_run=\nmax_age_hours=24\n"
    )
    assert host.run(extra=("--backup-status", str(host.backup_status))) == 0
    assert backup_series(host) == {
        "pyhost_backup_last_run_timestamp_seconds": 1764550800.0,
        "pyhost_backup_last_run_ok": 1.0,
        "pyhost_backup_max_age_seconds": 24 * 3600.0,
    }
    assert "pyhost_backup_last_success" not in host.output.read_text()


def test_no_backup_series_without_a_record(host: Host, capsys: pytest.CaptureFixture[str]) -> None:
    assert host.run() == 0
    assert host.run(extra=("--backup-status", str(host.backup_status))) == 0
    assert backup_series(host) == {}
    assert "pyhost_backup_" not in host.output.read_text()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "record",
    [
        BACKUP_RECORD.replace("last_success=1764547200", "last_success=yesterday"),
        BACKUP_RECORD.replace("last_result=ok", "last_result=maybe"),
        BACKUP_RECORD.replace("check_result=failed", "check_result=empty"),
        BACKUP_RECORD + "not a key and a value\n",
        BACKUP_RECORD.replace("max_age_hours=48", "max_age_hours=-1"),
        "last_run=\xff\n",
        # Too large to be the script's, however well-formed.
        BACKUP_RECORD + "\n" * (64 * 1024),
    ],
)
def test_a_malformed_backup_record_is_one_line_and_the_rest_is_written(
    host: Host, capsys: pytest.CaptureFixture[str], record: str
) -> None:
    append(host.log, entry(status=200))
    host.backup_status.parent.mkdir()
    host.backup_status.write_bytes(record.encode("latin-1"))
    assert host.run(extra=("--backup-status", str(host.backup_status))) == 0
    assert backup_series(host) == {}
    assert host.requests() == {"200": 1}
    error = capsys.readouterr().err
    assert error.startswith(f"pyhost-metrics: the backup status {host.backup_status} is left out: ")
    assert error.count("\n") == 1


def write_file(path: Path, size: int, *, sparse: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        if sparse:
            file.truncate(size)
        else:
            file.write(b"x" * size)


def cache_series(host: Host) -> dict[tuple[str, str], float]:
    return {
        (name, dict(labels)["cache"]): value
        for (name, labels), value in host.named("pyhost_upstream_").items()
    }


def test_the_upstream_caches_disk_usage_is_reported_exactly(host: Host) -> None:
    files, pages = host.upstream_cache / "files", host.upstream_cache / "pages"
    # nginx's levels=1:2 layout; whole 4 KiB blocks take as much disk as their size.
    write_file(files / "c" / "1a" / "8a1f0c", 8192)
    write_file(files / "c" / "2b" / "9b2e1d", 4096)
    # A file with holes counts its size, as nginx counts it.
    write_file(files / "d" / "3c" / "7c3d2e", 1024 * 1024, sparse=True)
    # A small file takes at least a block.
    write_file(pages / "e" / "4d" / "6d4c3b", 10)
    write_file(pages / "f" / "5e" / "5e5d4c", 12288)
    (pages / "f" / "link").symlink_to(files / "c" / "1a" / "8a1f0c")
    small = max(10, (pages / "e" / "4d" / "6d4c3b").stat().st_blocks * 512)
    cache = str(host.upstream_cache)
    assert host.run(extra=("--upstream-cache", cache, "--upstream-cache-max-bytes", "5242880")) == 0
    assert cache_series(host) == {
        ("pyhost_upstream_cache_bytes", "files"): 8192 + 4096 + 1024 * 1024,
        ("pyhost_upstream_cache_bytes", "pages"): small + 12288,
        ("pyhost_upstream_cache_max_bytes", "files"): 5242880,
    }


@pytest.mark.parametrize(
    ("size", "blocks", "counted"),
    [
        (10, 8, 4096),  # a small file: its block
        (8192, 16, 8192),  # whole blocks
        (1024 * 1024, 0, 1024 * 1024),  # holes: its size
        (4096, 64, 32768),  # preallocated, 7 blocks of 4 KiB over its size: the blocks
        (4096, 72, 4096),  # 8 blocks over: not trusted, its size
    ],
)
def test_a_cache_file_counts_as_nginx_counts_it(size: int, blocks: int, counted: int) -> None:
    info = SimpleNamespace(st_size=size, st_blocks=blocks, st_blksize=4096)
    assert collector.cached_size(info) == counted


def test_no_upstream_series_when_upstream_is_off_or_not_cached_yet(host: Host) -> None:
    write_file(host.upstream_cache / "files" / "a", 4096)
    assert host.run() == 0
    assert "pyhost_upstream_" not in host.output.read_text()
    (host.upstream_cache / "files" / "a").unlink()
    (host.upstream_cache / "files").rmdir()
    write_file(host.upstream_cache / "pages" / "a", 4096)
    cache = str(host.upstream_cache)
    assert host.run(extra=("--upstream-cache", cache, "--upstream-cache-max-bytes", "1048576")) == 0
    assert cache_series(host) == {
        ("pyhost_upstream_cache_bytes", "pages"): 4096,
        ("pyhost_upstream_cache_max_bytes", "files"): 1048576,
    }


def test_a_cache_past_the_entry_limit_is_one_line_and_left_out(
    host: Host, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("a", "b", "c"):
        write_file(host.upstream_cache / "files" / "x" / name, 4096)
    write_file(host.upstream_cache / "pages" / "a", 4096)
    # files/: x and its three files, one past the limit; pages/: one file.
    assert collector.upstream_caches(str(host.upstream_cache), limit=3) == {"pages": 4096}
    error = capsys.readouterr().err
    assert error == f"pyhost-metrics: the upstream cache {host.upstream_cache / 'files'} is left out: " + (
        "more than 3 entries: not measured\n"
    )
    assert collector.upstream_caches(str(host.upstream_cache), limit=4) == {"files": 3 * 4096, "pages": 4096}


def render(template: str, **overrides: object) -> str:
    defaults = {
        "ansible_managed": "managed",
        "metrics_interval": 30,
        "metrics_textfile_dir": "/var/lib/prometheus/node-exporter",
        "metrics_access_log": "/var/log/nginx/pyhost.access.log",
        "metrics_certificate": "/etc/letsencrypt/live/pypi.example.com/fullchain.pem",
        "metrics_services": ["pypiserver.service", "nginx.service"],
        "metrics_backup_status": "/var/lib/pyhost-backup/status",
        "metrics_upstream_cache_dir": "/var/cache/pyhost-upstream",
        "metrics_upstream_cache_max_gb": "10",
        "metrics_python": sys.executable,
        "__metrics_script": str(ROLE / "files" / "pyhost_metrics.py"),
        "__metrics_state_dir": "pyhost-metrics",
        "__metrics_output_name": "pyhost.prom",
    }
    # Ansible's template settings: trim_blocks on.
    environment = jinja2.Environment(  # noqa: S701 - systemd units, not HTML
        loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined, trim_blocks=True
    )
    return environment.get_template(template).render({**defaults, **overrides})


def test_the_unit_runs_the_collector_with_every_service() -> None:
    unit = render("pyhost-metrics.service.j2", metrics_services=["a.service", "b.service"])
    exec_start = unit.split("ExecStart=", 1)[1].split("\n# ", 1)[0]
    assert "--service a.service \\\n    --service b.service \\\n" in exec_start
    assert "--output /var/lib/prometheus/node-exporter/pyhost.prom" in exec_start
    assert "ReadWritePaths=/var/lib/prometheus/node-exporter\n" in unit
    assert "OnUnitActiveSec=45s\n" in render("pyhost-metrics.timer.j2", metrics_interval=45)


def test_the_unit_passes_the_backup_record_and_the_cache_with_nginx_cap() -> None:
    unit = render("pyhost-metrics.service.j2", metrics_upstream_cache_max_gb="0.005")
    exec_start = unit.split("ExecStart=", 1)[1].split("\n# ", 1)[0]
    assert "    --backup-status /var/lib/pyhost-backup/status \\\n" in exec_start
    assert "    --upstream-cache /var/cache/pyhost-upstream \\\n" in exec_start
    # nginx's max_size=5m for 0.005 GB (roles/nginx/templates/pyhost.conf.j2 rounds to MiB).
    assert "    --upstream-cache-max-bytes 5242880 \\\n" in exec_start
    assert "CapabilityBoundingSet=CAP_DAC_READ_SEARCH CAP_DAC_OVERRIDE\n" in unit
    off = render("pyhost-metrics.service.j2", metrics_backup_status="", metrics_upstream_cache_dir="")
    assert "--backup-status" not in off
    assert "--upstream-cache" not in off
    assert "CapabilityBoundingSet=\n" in off


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("cache_dir", ["/var/cache/pyhost-upstream", ""])
def test_the_unit_scores_at_most_0_9_in_systemd_analyze_security(tmp_path: Path, cache_dir: str) -> None:
    unit = tmp_path / "pyhost-metrics.service"
    unit.write_text(render("pyhost-metrics.service.j2", metrics_upstream_cache_dir=cache_dir))
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    overall = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    assert overall, result.stdout + result.stderr
    score = float(overall[0].split(":", 1)[1].split()[0])
    # 0.9 before the cache needed a capability: PrivateMounts= pays for it.
    assert score <= 0.9, result.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    for name in ("pyhost-metrics.service", "pyhost-metrics.timer"):
        (tmp_path / name).write_text(render(name + ".j2"))
    result = subprocess.run(
        ["systemd-analyze", "verify", "pyhost-metrics.service", "pyhost-metrics.timer"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
