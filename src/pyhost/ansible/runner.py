"""Run pyhost's playbooks through ansible-runner: the environment they run with, Ctrl-C, and the result.

An event handler hands each event to the collector (results.py: recap, failures, unreachable hosts, set_stats
data) and to the display (progress.py: the live line or one line per task). Nothing is written to disk.
"""

from __future__ import annotations

import configparser
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import ansible_runner
from rich.console import Console

from pyhost import content
from pyhost.ansible.progress import EventDisplay
from pyhost.ansible.results import EventCollector, RunResult
from pyhost.errors import PyhostError
from pyhost.workspace.inventory import Workspace


class HostUnreachable(PyhostError):
    """Ansible could not connect to a host."""


def _event_handler(collector: EventCollector, display: EventDisplay) -> Callable[[dict[str, Any]], bool]:
    """ansible-runner's event_handler; returning False keeps the event out of the artifacts on disk."""
    lock = threading.Lock()

    def handle(event: dict[str, Any]) -> bool:
        with lock:
            collector.collect(event)
            display.show(event, collector.result)
        return False

    return handle


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
    collector = EventCollector()
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
            event_handler=_event_handler(collector, display),
            cancel_callback=stop.is_set,
            quiet=verbose == 0,
            suppress_env_files=True,
            suppress_output_file=True,
        )
    result = collector.result
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
    collector = EventCollector()
    with tempfile.TemporaryDirectory(prefix="pyhost-ping-") as private, display.running():
        runner = ansible_runner.run(
            private_data_dir=private,
            module="ansible.builtin.ping",
            host_pattern=limit,
            inventory=[str(p.resolve()) for p in workspace.inventory_sources()],
            envvars=envvars(workspace),
            event_handler=_event_handler(collector, display),
            quiet=True,
            suppress_env_files=True,
            suppress_output_file=True,
        )
    collector.result.rc = runner.rc if runner.rc is not None else 1
    raise_unreachable(workspace, collector.result)


def raise_unreachable(workspace: Workspace, result: RunResult) -> None:
    for host, reason in sorted(result.unreachable.items()):
        try:
            address = workspace.host_address(host)
        except PyhostError:
            address = host
        raise HostUnreachable(f"host {host} ({address}) is unreachable: {reason}")
