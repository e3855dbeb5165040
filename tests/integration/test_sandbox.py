"""Through the real CLI: sandbox up, provision, users, status, the seed's tutorial, sandbox down.

One sandbox serves the whole module: it is provisioned once (from the cached CPython image when the pyenv
scenario produced it) and torn down at the end, whatever happened.
"""

from __future__ import annotations

import base64
import json
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from pyhost.testbed import Testbed
from pyhost.tutorial import Index, Tutorial

pytestmark = pytest.mark.integration

# A sandbox of the tests' own: a user's running `make demo` sandbox is left alone.
SANDBOX_NAME = "pyhost-test"
PUBLISHER, PUBLISHER_PASSWORD = "pyjitsejan", "correct horse battery staple"
READER, READER_PASSWORD = "reader1", "a reader's long passphrase"


def pyhost(
    workspace: Path, *args: str, input_text: str | None = None, check: bool = True, stream: bool = False
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pyhost", *args, "--inventory", str(workspace)]
    proc = subprocess.run(
        cmd,
        input=input_text,
        text=True,
        capture_output=not stream,
        check=False,
        env={**os.environ, "COLUMNS": "120", "PYHOST_SANDBOX_NAME": SANDBOX_NAME},
    )
    if check:
        assert proc.returncode == 0, f"pyhost {' '.join(args)} failed: {proc.stderr}"
    return proc


@dataclass
class Sandbox:
    workspace: Path
    status: dict


@pytest.fixture(scope="module")
def sandbox(
    testbed: Testbed, tmp_path_factory: pytest.TempPathFactory, live: Callable[[], ContextManager[None]]
) -> Iterator[Sandbox]:
    workspace = tmp_path_factory.mktemp("sandbox") / "inventory"
    # A sandbox left over by an interrupted run would keep an old ACME root: start from nothing.
    pyhost(workspace, "sandbox", "down", check=False)
    try:
        with live():
            print("\n== pyhost sandbox up")
            pyhost(workspace, "sandbox", "up", stream=True)
            print("== pyhost provision --host sandbox")
            pyhost(workspace, "provision", "--host", "sandbox", stream=True)
        status = json.loads(pyhost(workspace, "sandbox", "status", "--json").stdout)
        yield Sandbox(workspace, status)
    finally:
        pyhost(workspace, "sandbox", "down", check=False)


def _get(url: str, ca_file: str, user: str | None = None, password: str | None = None) -> int:
    request = urllib.request.Request(url)
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_sandbox_status_names_a_reachable_https_endpoint(sandbox: Sandbox) -> None:
    status = sandbox.status
    for key in ("url", "domain", "ca_file", "connect", "container"):
        assert status.get(key), f"sandbox status --json lacks {key}: {status}"
    assert status["url"].startswith(f"https://{status['domain']}")
    assert Path(status["ca_file"]).is_file()


def test_add_users_and_read_access(sandbox: Sandbox) -> None:
    pyhost(
        sandbox.workspace,
        "add-user",
        PUBLISHER,
        "--role",
        "publisher",
        "--password-stdin",
        "--host",
        "sandbox",
        input_text=PUBLISHER_PASSWORD + "\n",
    )
    pyhost(
        sandbox.workspace,
        "add-user",
        READER,
        "--role",
        "reader",
        "--password-stdin",
        "--host",
        "sandbox",
        input_text=READER_PASSWORD + "\n",
    )
    listed = pyhost(sandbox.workspace, "list-users").stdout
    assert PUBLISHER in listed and READER in listed and "$2" not in listed

    simple = sandbox.status["url"].rstrip("/") + "/simple/"
    ca = sandbox.status["ca_file"]
    assert _get(simple, ca) == 401
    assert _get(simple, ca, READER, READER_PASSWORD) == 200
    assert _get(simple, ca, PUBLISHER, PUBLISHER_PASSWORD) == 200
    assert _get(simple, ca, READER, "wrong password") == 401


def test_verbose_converge_never_shows_a_password_or_its_hash(sandbox: Sandbox) -> None:
    sentinel = "Sentinel-Passw0rd-7f3a9c"
    pyhost(
        sandbox.workspace,
        "add-user",
        "sentinel",
        "--role",
        "publisher",
        "--password-stdin",
        "--host",
        "sandbox",
        input_text=sentinel + "\n",
    )
    users = yaml.safe_load((sandbox.workspace / "group_vars/index_servers/users.yml").read_text())
    (stored,) = [u["hash"] for u in users["pyhost_users"] if u["name"] == "sentinel"]
    proc = pyhost(sandbox.workspace, "provision", "--host", "sandbox", "-vvvv", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "ESTABLISH" in output, "not a -vvv transcript: the check below would prove nothing"
    assert sentinel not in output
    assert stored not in output
    assert stored.split("$")[-1] not in output  # not even the salt and digest part of the hash
    recap = re.findall(r"changed=(\d+)", output)
    assert recap and set(recap) == {"0"}, f"a re-provision changed something: {recap}"
    pyhost(sandbox.workspace, "remove-user", "sentinel")


def test_status_reports_healthy(sandbox: Sandbox) -> None:
    proc = pyhost(sandbox.workspace, "status", "--host", "sandbox", "--json", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report, "status printed nothing"


def test_the_seed_tutorial(sandbox: Sandbox, tmp_path: Path) -> None:
    index = Index(
        url=sandbox.status["url"],
        user=PUBLISHER,
        password=PUBLISHER_PASSWORD,
        ca_file=Path(sandbox.status["ca_file"]),
    )

    def client_config(tool: str) -> str:
        return pyhost(
            sandbox.workspace, "client-config", "--host", "sandbox", "--user", PUBLISHER, "--tool", tool
        ).stdout

    outcome = Tutorial(index, tmp_path / "tutorial", client_config=client_config).run_all()
    assert outcome.installed["pip --index-url"] == "0.2.0"
    assert outcome.installed["pip.conf"] == "0.2.0"
    assert outcome.installed["uv"] == "0.2.0"
    assert outcome.installed["twine upload"] == "1.0.0"
    assert outcome.consumer_constraint == "^0.2.0"
    assert outcome.hello_output == "Hello Poetry"
