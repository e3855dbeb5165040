"""Run pyhost's playbooks through ansible-runner and show what is happening while they run.

An event handler follows the play, the current task and the results per host. On a terminal a live line
shows a spinner, a pulsing bar, the current play and task, the task's own elapsed time and the total elapsed
time (a CPython build takes minutes, so the line must show that work goes on); elsewhere (CI, pipes) one line
per play and task is printed instead. At the end the recap (ok/changed/failed per host) is printed.
"""

from __future__ import annotations

import configparser
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import ansible_runner
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

from pyhost import content
from pyhost.errors import PyhostError
from pyhost.workspace.inventory import Workspace

STAT_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "dark": "unreachable",
    "failures": "failed",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


class HostUnreachable(PyhostError):
    """Ansible could not connect to a host."""


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


class _TaskElapsedColumn(ProgressColumn):
    """How long the current Ansible task has been running."""

    def render(self, task: Task) -> Text:
        started = task.fields.get("task_started")
        if not started:
            return Text("")
        seconds = int(time.monotonic() - started)
        return Text(f"task {seconds // 60}:{seconds % 60:02d}", style="cyan")


class EventDisplay:
    """Turns ansible-runner events into a live progress line (terminal) or one line per task (otherwise)."""

    def __init__(self, console: Console, title: str, *, live: bool, log_lines: bool = True) -> None:
        self.console = console
        self.title = title
        self.live = live and console.is_terminal
        self.log_lines = log_lines and not self.live
        self.started = time.monotonic()
        self.play = ""
        self.tasks_done = 0
        self.result = RunResult(rc=-1, status="starting")
        self._progress: Progress | None = None
        self._task_id: Any = None
        self._current_task = ""
        self._lock = threading.Lock()

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

    def _refresh(self, *, new_task: bool = False) -> None:
        if self._progress is None:
            return
        description = f"[bold]{self.play}[/bold] > {self._current_task}" if self.play else self.title
        counts = f"{self.tasks_done} done"
        failed = len(self.result.failures)
        if failed:
            counts += f", {failed} failed"
        fields: dict[str, Any] = {"counts": counts}
        if new_task:
            fields["task_started"] = time.monotonic()
        self._progress.update(self._task_id, description=description, **fields)

    def handle(self, event: dict[str, Any]) -> bool:
        """ansible-runner's event_handler; returning False keeps the event out of the artifacts on disk."""
        with self._lock:
            self._handle(event)
        return False

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = str(data.get("host") or data.get("remote_addr") or "")
        task = str(data.get("task") or "")
        res = data.get("res") if isinstance(data.get("res"), dict) else {}
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play") or data.get("name") or "")
            self._log(f"PLAY {self.play}")
            self._refresh()
        elif kind == "playbook_on_task_start":
            self._current_task = task
            self._log(f"TASK {task}")
            self._refresh(new_task=True)
        elif kind == "runner_on_ok":
            self.tasks_done += 1
            self._refresh()
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.result.failures.append(Failure(host=host, task=task, message=failure_message(res)))
            self.tasks_done += 1
            self._log(f"FAILED {host}: {failure_message(res)}")
            self._refresh()
        elif kind == "runner_on_unreachable":
            reason = one_line(res.get("msg") or "no reason given").removeprefix("Task failed: ")
            self.result.unreachable[host] = reason
            self._refresh()
        elif kind == "runner_on_skipped":
            self.tasks_done += 1
            self._refresh()
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


def envvars(workspace: Workspace) -> dict[str, str]:
    """The environment ansible-playbook runs with: our roles, and safe defaults the user may override."""
    env = {
        "ANSIBLE_ROLES_PATH": str(content.roles_dir()),
        "ANSIBLE_LIBRARY": os.pathsep.join(
            [str(content.modules_dir()), *filter(None, [os.environ.get("ANSIBLE_LIBRARY")])]
        ),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "False",
        # ansible-playbook and its modules run from the same Python as pyhost (a virtualenv's bin/ need
        # not be on PATH when pyhost is called by its full path).
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
    }
    cfg = workspace.path / "ansible.cfg"
    if cfg.is_file():
        env["ANSIBLE_CONFIG"] = str(cfg.resolve())
    # Pipelining sends each module over the open connection instead of copying it to a temporary file first:
    # one round trip per task instead of three or four, which halves a provision that changes nothing. Left to
    # the user when the environment or the workspace's ansible.cfg says otherwise.
    if "ANSIBLE_PIPELINING" not in os.environ and not _cfg_sets(cfg, "pipelining"):
        env["ANSIBLE_PIPELINING"] = "True"
    # Trust a new server's SSH key on first use and refuse a changed one, instead of either failing on a fresh
    # VPS (ssh's default) or turning checking off.
    if "ANSIBLE_SSH_COMMON_ARGS" not in os.environ:
        env["ANSIBLE_SSH_COMMON_ARGS"] = "-o StrictHostKeyChecking=accept-new"
    return env


def _cfg_sets(cfg: Path, option: str) -> bool:
    """Whether an ansible.cfg sets OPTION in any section (a plain look: ansible reads it for real)."""
    if not cfg.is_file():
        return False
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(cfg, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return False
    return any(parser.has_option(section, option) for section in parser.sections())


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """Ctrl-C stops ansible-playbook through runner's cancel callback instead of orphaning it."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def run_playbook(
    workspace: Workspace,
    playbook: Path,
    *,
    limit: str | None = None,
    tags: Sequence[str] = (),
    skip_tags: Sequence[str] = (),
    check: bool = False,
    diff: bool = False,
    extravars: dict[str, Any] | None = None,
    verbose: int = 0,
    console: Console | None = None,
    title: str | None = None,
) -> RunResult:
    """Run PLAYBOOK against the workspace, limited to LIMIT, and return what happened.

    verbose=0 shows the progress display; verbose>=1 streams Ansible's own output instead (and verbose>=2
    adds -v flags to it).
    """
    if not playbook.is_file():
        raise PyhostError(f"playbook {playbook} is missing from this installation: reinstall pyhost")
    console = console or Console(stderr=True)
    display = EventDisplay(console, title or f"{playbook.name} on {limit or 'all hosts'}", live=verbose == 0)
    flags = [flag for flag, on in (("--check", check), ("--diff", diff)) if on]
    with (
        tempfile.TemporaryDirectory(prefix="pyhost-run-") as private,
        _interruptible() as stop,
        display.running(),
    ):
        runner = ansible_runner.run(
            private_data_dir=private,
            playbook=str(playbook),
            inventory=[str(p.resolve()) for p in workspace.inventory_sources()],
            limit=limit,
            tags=",".join(tags) or None,
            skip_tags=",".join(skip_tags) or None,
            cmdline=" ".join(flags) or None,
            extravars=extravars or None,
            envvars=envvars(workspace),
            verbosity=max(verbose - 1, 0) or None,
            event_handler=display.handle,
            cancel_callback=stop.is_set,
            quiet=verbose == 0,
            suppress_env_files=True,
            suppress_output_file=True,
        )
    result = display.result
    result.rc = runner.rc if runner.rc is not None else 1
    result.status = runner.status
    if result.status == "canceled":
        raise PyhostError("interrupted: ansible-playbook was stopped; run the command again to finish")
    return result


def run_for_artifact(
    workspace: Workspace,
    playbook: Path,
    host: str,
    key: str,
    *,
    failed: str,
    extravars: dict[str, Any] | None = None,
    console: Console | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """Run PLAYBOOK on HOST and return what it handed over with set_stats under KEY.

    An unreachable host, a failed task or a missing answer is one error line starting with FAILED.
    """
    result = run_playbook(workspace, playbook, limit=host, extravars=extravars, console=console, title=title)
    raise_unreachable(workspace, result)
    answer = result.data.get(key)
    if not result.ok or not isinstance(answer, dict):
        reason = result.failures[0].message if result.failures else f"exit code {result.rc}"
        raise PyhostError(f"{failed}: {reason}")
    return answer


def check_reachable(workspace: Workspace, limit: str, console: Console | None = None) -> None:
    """Connect to each host of LIMIT once (ansible's ping); fail with one line on the first unreachable one.

    Commands that write to the workspace call this first, so an unreachable host leaves the workspace as is.
    """
    console = console or Console(stderr=True)
    display = EventDisplay(console, f"Connecting to {limit}", live=True, log_lines=False)
    with tempfile.TemporaryDirectory(prefix="pyhost-ping-") as private, display.running():
        runner = ansible_runner.run(
            private_data_dir=private,
            module="ansible.builtin.ping",
            host_pattern=limit,
            inventory=[str(p.resolve()) for p in workspace.inventory_sources()],
            envvars=envvars(workspace),
            event_handler=display.handle,
            quiet=True,
            suppress_env_files=True,
            suppress_output_file=True,
        )
    display.result.rc = runner.rc if runner.rc is not None else 1
    raise_unreachable(workspace, display.result)


def raise_unreachable(workspace: Workspace, result: RunResult) -> None:
    for host, reason in sorted(result.unreachable.items()):
        try:
            address = workspace.host_address(host)
        except PyhostError:
            address = host
        raise HostUnreachable(f"host {host} ({address}) is unreachable: {reason}")


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
