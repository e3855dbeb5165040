"""`pyhost upstream held PROJECT`: what the server's upstream filter holds back of a project, and until when.

The filter (roles/upstream/files/pyhost_upstream.py) answers GET /upstream-held/PROJECT/ on its unix socket
with a JSON list: each upstream file of the project that the cooldown or the cutoff keeps off the index, its
version, upload time, and until when (a time) or why never (no upload time, after the cutoff).
playbooks/upstream-held.yml asks it on the server and hands the answer over through set_stats.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from rich.console import Console

from pyhost import content
from pyhost.ansible import runner
from pyhost.errors import PyhostError
from pyhost.workspace.inventory import Workspace

HELD_DATA = "upstream_held"
# nginx's $upstream_cache_status values that mean the answer came from the cache.
CACHE_HITS = frozenset({"HIT", "STALE", "UPDATING", "REVALIDATED"})
GB = 1024**3


@dataclass(frozen=True)
class HeldFile:
    filename: str
    version: str
    upload_time: str
    until: str  # an ISO 8601 time, or why the file is never listed


def parse_held(project: str, report: Any) -> list[HeldFile]:
    """The files held back, from the playbook's report; PyhostError (one line) for anything else."""
    if not isinstance(report, dict):
        raise PyhostError("the server reported nothing about its upstream filter: run it again with -v")
    if str(report.get("enabled")).lower() != "true":
        raise PyhostError("the upstream index is off on this server (pyhost_upstream_url is empty)")
    status = int(report.get("status", -1))
    body = str(report.get("content", "")).strip()
    if status == HTTPStatus.OK:
        try:
            entries = json.loads(body)
            return [
                HeldFile(str(e["filename"]), str(e["version"]), str(e["upload-time"]), str(e["until"]))
                for e in entries
            ]
        except (ValueError, KeyError, TypeError):
            raise PyhostError("the upstream filter answered something that is not its list") from None
    if status in (HTTPStatus.NOT_FOUND, HTTPStatus.BAD_GATEWAY):
        raise PyhostError(f"{project}: {body or 'not found upstream'}")
    reason = report.get("error") or f"status {status}"
    raise PyhostError(f"the upstream filter did not answer ({reason}): is pyhost-upstream.service running?")


def held(workspace: Workspace, host: str, project: str, *, console: Console | None = None) -> list[HeldFile]:
    """What HOST's upstream filter holds back of PROJECT (playbooks/upstream-held.yml asks it)."""
    playbook, asked = content.playbook("upstream-held.yml"), {"upstream_held_project": project}
    title, failed = (
        f"Asking {host} what it holds back of {project}",
        f"asking {host} what it holds back failed",
    )
    report = runner.run_for_artifact(
        workspace, playbook, host, HELD_DATA, failed=failed, extravars=asked, console=console, title=title
    )
    return parse_held(project, report)


def print_held(project: str, files: list[HeldFile], console: Console) -> None:
    if not files:
        console.print(f"Nothing of {project} is held back: every upstream file is on the index.")
        return
    console.print(f"{project}: {len(files)} upstream file(s) held back")
    width = max(len(file.filename) for file in files)
    for file in files:
        console.print(
            f"  {file.filename:<{width}}  {file.version:<10}  uploaded {file.upload_time or '-':<27}  "
            f"until {file.until}",
            markup=False,
        )


def evaluate(facts: dict[str, Any]) -> dict[str, Any]:
    """The upstream part of `pyhost status`: the filter answers, upstream is reachable from the server, the
    file cache's size against its cap, and the share of upstream reads nginx answered from its caches (in the
    current access log). FACTS come from playbooks/status.yml."""
    if str(facts.get("upstream_enabled")).lower() != "true":
        return {"enabled": False, "ok": True, "problems": []}
    url = str(facts.get("upstream_url") or "")
    problems = []
    filter_ok = str(facts.get("upstream_filter_status")) == "200"
    if not filter_ok:
        problems.append("the filter does not answer on its socket: systemctl status pyhost-upstream")
    reach_status = int(facts.get("upstream_reach_status") or -1)
    reachable = reach_status > 0
    if not reachable:
        reason = str(facts.get("upstream_reach_error") or "no answer").splitlines()[0:1] or ["no answer"]
        problems.append(f"{url} is unreachable from the server ({reason[0]}): cached names still install")
    try:
        cache = json.loads(str(facts.get("upstream_cache") or "{}"))
        cache_bytes = int(cache.get("bytes", 0))
        counts = {str(k): int(v) for k, v in dict(cache.get("counts", {})).items()}
    except (ValueError, TypeError, AttributeError):
        cache_bytes, counts = 0, {}
    hits = sum(n for status, n in counts.items() if status in CACHE_HITS)
    total = sum(counts.values())
    return {
        "enabled": True,
        "ok": not problems,
        "problems": problems,
        "url": url,
        "filter_ok": filter_ok,
        "reachable": reachable,
        "cache_bytes": cache_bytes,
        "cache_max_bytes": int(float(facts.get("upstream_cache_max_gb") or 0) * GB),
        "cache_reads": total,
        "hit_ratio": round(hits / total, 3) if total else None,
    }


def status_line(report: dict[str, Any], human_bytes: Any) -> str:
    """One line for `pyhost status`'s table."""
    ratio = (
        "no upstream reads yet"
        if report["hit_ratio"] is None
        else (f"{report['hit_ratio']:.0%} of {report['cache_reads']} upstream reads from the cache")
    )
    reach = "reachable" if report["reachable"] else "UNREACHABLE"
    return (
        f"{report['url']} {reach}; file cache {human_bytes(report['cache_bytes'])} of "
        f"{human_bytes(report['cache_max_bytes'])}; {ratio}"
    )
