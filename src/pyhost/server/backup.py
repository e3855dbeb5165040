"""Backups of an index server: a snapshot now, the list of snapshots with their age, a restore, their health.

The server does the work (roles/backup: restic, its units and scripts); this module runs the job playbooks
(backup.yml, backups.yml, restore.yml), reads what they hand over through set_stats, and turns the outcome of
the server's last runs into the lines `pyhost status` reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from pyhost import content
from pyhost.ansible import results, runner
from pyhost.errors import PyhostError
from pyhost.workspace.inventory import Workspace

HOUR = 3600
MINUTE = 60
DAY = 24 * HOUR


@dataclass(frozen=True)
class Snapshot:
    id: str
    time: datetime
    hostname: str
    paths: tuple[str, ...]

    @property
    def short_id(self) -> str:
        return self.id[:8]


def parse_time(value: str) -> datetime:
    """restic's RFC 3339 times, with nanoseconds ('2026-12-01T23:12:51.690848775Z' or '+01:00')."""
    text = value.strip().replace("Z", "+00:00")
    if "." in text:
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6]}{rest[digits:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_snapshots(raw: object) -> list[Snapshot]:
    """restic snapshots --json, oldest first."""
    if not isinstance(raw, list):
        return []
    found = [
        Snapshot(
            id=str(item["id"]),
            time=parse_time(str(item["time"])),
            hostname=str(item.get("hostname") or ""),
            paths=tuple(str(path) for path in item.get("paths") or ()),
        )
        for item in raw
        if isinstance(item, dict) and item.get("id") and item.get("time")
    ]
    return sorted(found, key=lambda snap: snap.time)


def human_age(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < MINUTE:
        return f"{seconds} s"
    if seconds < HOUR:
        return f"{seconds // MINUTE} min"
    if seconds < 2 * DAY:
        return f"{seconds // HOUR} h {seconds % HOUR // MINUTE} min"
    return f"{seconds // DAY} days"


def _run(
    workspace: Workspace,
    host: str,
    playbook: str,
    title: str,
    *,
    extravars: dict[str, Any] | None = None,
    verbose: int = 0,
    console: Console | None = None,
) -> results.RunResult:
    result = runner.run_playbook(
        workspace,
        content.playbook(playbook),
        limit=host,
        extravars=extravars,
        verbose=verbose,
        console=console,
        title=title,
    )
    runner.raise_unreachable(workspace, result)
    if not result.ok:
        reason = result.failures[0].message if result.failures else f"exit code {result.rc}"
        raise PyhostError(f"{title[0].lower()}{title[1:]} failed: {reason}")
    return result


def back_up(workspace: Workspace, host: str, *, verbose: int = 0, console: Console | None = None) -> Snapshot:
    """A snapshot now; returns the newest snapshot afterwards (the one just made)."""
    result = _run(workspace, host, "backup.yml", f"Backing up {host}", verbose=verbose, console=console)
    snapshots = parse_snapshots(result.data.get("backup_snapshots"))
    last_runs = result.data.get("backup_status")
    if not snapshots or (isinstance(last_runs, dict) and last_runs.get("last_result") == "empty"):
        raise PyhostError(f"nothing to back up: {host} holds no release yet")
    return snapshots[-1]


def list_snapshots(
    workspace: Workspace, host: str, *, verbose: int = 0, console: Console | None = None
) -> tuple[list[Snapshot], dict[str, str]]:
    """The repository's snapshots (oldest first) and the server's record of its last runs."""
    result = _run(
        workspace, host, "backups.yml", f"Listing the backups of {host}", verbose=verbose, console=console
    )
    last_runs = result.data.get("backup_status")
    return parse_snapshots(result.data.get("backup_snapshots")), (
        {str(k): str(v) for k, v in last_runs.items()} if isinstance(last_runs, dict) else {}
    )


def restore(
    workspace: Workspace,
    host: str,
    *,
    snapshot: str | None,
    force: bool,
    verbose: int = 0,
    console: Console | None = None,
) -> dict[str, Any]:
    """A snapshot (or the newest) back onto HOST; returns the playbook's account of it."""
    extravars: dict[str, Any] = {"backup_restore_force": force}
    if snapshot:
        extravars["backup_restore_snapshot"] = snapshot
    result = _run(
        workspace,
        host,
        "restore.yml",
        f"Restoring {host}",
        extravars=extravars,
        verbose=verbose,
        console=console,
    )
    outcome = result.data.get("backup_restore")
    if not isinstance(outcome, dict):
        raise PyhostError(f"the restore of {host} reported nothing: run it again with -v")
    return outcome


def print_snapshots(snapshots: list[Snapshot], console: Console, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("id", "time (UTC)", "age", "host"):
        table.add_column(column, no_wrap=True)
    table.add_column("paths", overflow="fold")
    for snap in reversed(snapshots):
        table.add_row(
            snap.short_id,
            snap.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            human_age((now - snap.time).total_seconds()),
            snap.hostname,
            " ".join(snap.paths),
        )
    console.print(table)


def evaluate(facts: dict[str, Any], package_files: int, now: datetime | None = None) -> dict[str, Any]:
    """The backup part of `pyhost status`: the last success's age against its limit, the last runs' results.

    FACTS come from playbooks/status.yml: backup_enabled and backup_status (the server's key=value record).
    """
    if str(facts.get("backup_enabled")).lower() != "true":
        return {"enabled": False, "ok": True, "problems": []}
    now = now or datetime.now(UTC)
    record = _record(str(facts.get("backup_status") or ""))
    max_age = int(record.get("max_age_hours") or 48) * HOUR
    report: dict[str, Any] = {"enabled": True, "max_age_hours": max_age // HOUR, "last_result": None}
    problems: list[str] = []
    success = record.get("last_success", "")
    if success.isdigit():
        age = (now - datetime.fromtimestamp(int(success), UTC)).total_seconds()
        report["last_success"] = datetime.fromtimestamp(int(success), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        report["age_seconds"] = int(age)
        if age > max_age:
            problems.append(f"the last successful backup is {human_age(age)} old (limit {max_age // HOUR} h)")
    else:
        report["last_success"] = None
        if package_files:
            problems.append("no successful backup yet")
    report["last_result"] = record.get("last_result") or None
    if record.get("last_result") == "failed":
        problems.append("the last backup failed: journalctl -u 'pyhost-backup*' says why")
    if record.get("check_result") == "failed":
        problems.append("the last repository check failed: journalctl -u pyhost-backup-check says why")
    for unit, state in sorted(_units(facts).items()):
        if state != "active":
            problems.append(f"{unit} is {state}")
    report["problems"] = problems
    report["ok"] = not problems
    return report


def _record(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def _units(facts: dict[str, Any]) -> dict[str, str]:
    """ActiveState of the backup's path and timer units, from `systemctl show` blocks."""
    states: dict[str, str] = {}
    for block in str(facts.get("backup_units") or "").strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        if "Id" in props:
            loaded = props.get("LoadState") != "not-found"
            states[props["Id"]] = props.get("ActiveState", "unknown") if loaded else "not installed"
    return states
