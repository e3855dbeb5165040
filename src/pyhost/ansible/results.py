"""What a playbook run produced: the recap per host, the failures, the unreachable hosts and the data the
playbook handed over with set_stats, collected from ansible-runner's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAT_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "dark": "unreachable",
    "failures": "failed",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


@dataclass
class Failure:
    host: str
    task: str
    message: str


@dataclass
class RunResult:
    rc: int
    status: str
    recap: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)
    # What the playbook handed over with set_stats (per_host: false): ansible-runner's artifact_data.
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0


def one_line(text: object, limit: int = 400) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def failure_message(res: dict[str, Any]) -> str:
    """The most useful single line of a failed module result."""
    if res.get("censored"):
        return str(res["censored"])
    for item in res.get("results") or []:
        if isinstance(item, dict) and item.get("failed"):
            return failure_message(item)
    message = str(res.get("msg") or "").strip()
    stderr = str(res.get("stderr") or "").strip()
    if stderr:
        last = stderr.splitlines()[-1]
        message = f"{message}: {last}" if message and last not in message else (message or last)
    if not message and res.get("rc") is not None:
        message = f"exit code {res['rc']}"
    return one_line(message or "failed without a message")


class EventCollector:
    """Turns ansible-runner events into a RunResult (what the display shows is progress.EventDisplay's)."""

    def __init__(self) -> None:
        self.result = RunResult(rc=-1, status="starting")

    def collect(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = str(data.get("host") or data.get("remote_addr") or "")
        task = str(data.get("task") or "")
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.result.failures.append(Failure(host=host, task=task, message=failure_message(res)))
        elif kind == "runner_on_unreachable":
            reason = one_line(res.get("msg") or "no reason given").removeprefix("Task failed: ")
            self.result.unreachable[host] = reason
        elif kind == "playbook_on_stats":
            self.result.recap = _recap(data)
            artifact_data = data.get("artifact_data")
            self.result.data = artifact_data if isinstance(artifact_data, dict) else {}


def _recap(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    hosts: set[str] = set()
    for key in STAT_KEYS:
        hosts.update((stats.get(key) or {}).keys())
    return {
        host: {label: int((stats.get(key) or {}).get(host, 0)) for key, label in STAT_KEYS.items()}
        for host in sorted(hosts)
    }
