"""`pyhost stats --host NAME`: download statistics of a provisioned index, summarised on the server.

playbooks/stats.yml sends stats.py to the server and runs it there over nginx's access logs; the summary comes
back through set_stats. This module checks the options first (one clear line, before connecting) and prints
the summary as a table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pyhost import content
from pyhost.ansible import runner
from pyhost.errors import PyhostError
from pyhost.index import indexgen
from pyhost.server import stats
from pyhost.workspace.inventory import Workspace

ARTIFACT_KEY = "pyhost_stats"
SERVER_ERROR = "stats: error: "


def server_arguments(since: str | None, project: str | None, by: str, *, upstream: bool = False) -> list[str]:
    """stats.py's options, checked here so a bad one fails before anything connects."""
    argv = ["--by", by] + (["--upstream"] if upstream else [])
    if since is not None:
        try:
            stats.parse_since(since, time.time())
        except stats.StatsError as exc:
            raise PyhostError(str(exc)) from exc
        argv += ["--since", since]
    if project is not None:
        if not indexgen._PROJECT_NAME.fullmatch(project):
            raise PyhostError(f"--project {project!r} is not a valid project name")
        argv += ["--project", indexgen.normalize(project)]
    return argv


def gather(workspace: Workspace, host: str, argv: list[str], console: Console) -> dict[str, Any]:
    """Run playbooks/stats.yml on HOST and return the summary stats.py made there."""
    failed = f"could not read the download statistics of {host}"
    try:
        return runner.run_for_artifact(
            workspace,
            content.playbook("stats.yml"),
            host,
            ARTIFACT_KEY,
            failed=failed,
            extravars={"pyhost_stats_script": str(Path(stats.__file__).resolve()), "pyhost_stats_args": argv},
            console=console,
            title=f"Reading the access logs of {host}",
        )
    except PyhostError as exc:
        # stats.py's own one-line error, without Ansible's wrapping.
        if SERVER_ERROR not in str(exc):
            raise
        raise PyhostError(f"{failed}: {str(exc).split(SERVER_ERROR)[-1]}") from exc


def _when(moment: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment)) if moment is not None else "-"


def print_summary(host: str, summary: dict[str, Any], console: Console) -> None:
    by = summary["by"]
    keys = stats.ROW_KEYS[by]
    scope = f" of {summary['project']}" if summary.get("project") else ""
    since = f" since {_when(summary['since'])} UTC" if summary.get("since") is not None else ""
    kind = "upstream files" if summary.get("upstream") else "private files"
    console.print(f"[bold]Downloads of {kind}{scope} on {host}[/bold]{since}, by {by}")
    if summary["rows"]:
        table = Table(show_edge=False, pad_edge=False, box=None)
        for key in keys:
            table.add_column(key, style="bold" if key == keys[0] else "")
        table.add_column("downloads", justify="right")
        if by != "user":
            table.add_column("users", justify="right")
        for row in summary["rows"]:
            cells = [row[key] or "(anonymous)" for key in keys] + [str(row["downloads"])]
            if by != "user":
                cells.append(str(row["users"]))
            table.add_row(*cells)
        console.print(table)
    console.print(f"total: {summary['downloads']} downloads by {summary['users']} users", highlight=False)
    logs = len(summary["logs"])
    console.print(
        f"read {logs} log file(s), {summary['lines']} lines; file requests from {_when(summary['first'])} "
        f"to {_when(summary['last'])} UTC",
        style="dim",
        highlight=False,
    )
    if summary["other_lines"]:
        console.print(
            f"{summary['other_lines']} lines not readable as pyhost's JSON log (written before it?)",
            style="dim",
            highlight=False,
        )
    for error in summary["errors"]:
        console.print(f"unreadable: {error}", style="yellow", markup=False)
