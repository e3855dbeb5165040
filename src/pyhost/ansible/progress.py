"""What the user sees while a playbook runs, and the recap at the end.

On a terminal a live line shows a spinner, a pulsing bar, the current play and task, the task's own elapsed
time and the total elapsed time (a CPython build takes minutes, so the line must show that work goes on);
elsewhere (CI, pipes) one line per play and task is printed instead. At the end the recap (ok/changed/failed
per host) is printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table
from rich.text import Text

from pyhost.ansible.results import STAT_KEYS, RunResult, failure_message


class _TaskElapsedColumn(ProgressColumn):
    """How long the current Ansible task has been running."""

    def render(self, task: Task) -> Text:
        started = task.fields.get("task_started")
        if not started:
            return Text("")
        seconds = int(time.monotonic() - started)
        return Text(f"task {seconds // 60}:{seconds % 60:02d}", style="cyan")


class EventDisplay:
    """Shows ansible-runner events as a live progress line (terminal) or one line per task (otherwise)."""

    def __init__(self, console: Console, title: str, *, live: bool, log_lines: bool = True) -> None:
        self.console = console
        self.title = title
        self.live = live and console.is_terminal
        self.log_lines = log_lines and not self.live
        self.started = time.monotonic()
        self.play = ""
        self.tasks_done = 0
        self._progress: Progress | None = None
        self._task_id: Any = None
        self._current_task = ""

    @contextmanager
    def running(self) -> Iterator[EventDisplay]:
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn(
                    "{task.description}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")
                ),
                BarColumn(bar_width=12),
                TextColumn("[dim]{task.fields[counts]}"),
                _TaskElapsedColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._task_id = self._progress.add_task(self.title, total=None, counts="", task_started=None)
            with self._progress:
                yield self
        else:
            self._log(self.title)
            yield self

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def _log(self, line: str) -> None:
        if not self.log_lines:
            return
        self.console.print(f"[{self._elapsed()}] {line}", markup=False, highlight=False)

    def _refresh(self, result: RunResult, *, new_task: bool = False) -> None:
        if self._progress is None:
            return
        description = f"[bold]{self.play}[/bold] > {self._current_task}" if self.play else self.title
        counts = f"{self.tasks_done} done"
        failed = len(result.failures)
        if failed:
            counts += f", {failed} failed"
        fields: dict[str, Any] = {"counts": counts}
        if new_task:
            fields["task_started"] = time.monotonic()
        self._progress.update(self._task_id, description=description, **fields)

    def show(self, event: dict[str, Any], result: RunResult) -> None:
        """Draw EVENT; RESULT is what has been collected so far, this event included."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = str(data.get("host") or data.get("remote_addr") or "")
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play") or data.get("name") or "")
            self._log(f"PLAY {self.play}")
            self._refresh(result)
        elif kind == "playbook_on_task_start":
            self._current_task = str(data.get("task") or "")
            self._log(f"TASK {self._current_task}")
            self._refresh(result, new_task=True)
        elif kind in ("runner_on_ok", "runner_on_skipped"):
            self.tasks_done += 1
            self._refresh(result)
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.tasks_done += 1
            self._log(f"FAILED {host}: {failure_message(res)}")
            self._refresh(result)
        elif kind == "runner_on_unreachable":
            self._refresh(result)


def print_recap(result: RunResult, console: Console) -> None:
    """Failures first (one line each), then a table of ok/changed/unreachable/failed/... per host."""
    for failure in result.failures:
        console.print(
            Text.assemble(
                ("failed ", "bold red"), f"{failure.host} | {failure.task}: ", (failure.message, "red")
            )
        )
    table = Table(title="Recap", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("host")
    for label in STAT_KEYS.values():
        table.add_column(label, justify="right")
    for host, counts in result.recap.items():
        styles = {"changed": "yellow", "failed": "red", "unreachable": "red", "ok": "green"}
        cells = [
            Text(str(counts[label]), style=styles.get(label, "") if counts[label] else "dim")
            for label in STAT_KEYS.values()
        ]
        table.add_row(host, *cells)
    if result.recap:
        console.print(table)
    verdict = "succeeded" if result.ok else f"failed (exit code {result.rc})"
    console.print(f"Playbook {verdict}.", style="green" if result.ok else "red")
