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
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from pyhost.dev.tutorial import Index, Tutorial
from pyhost.sandbox import docker
from pyhost.sandbox.testbed import Testbed
from pyhost.workspace import users
from tests.integration import conftest_static as helpers
from tests.integration.test_static_route import build_releases

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


# What an Ubuntu 20.04 host says about itself (Ansible reads a Debian host's version from /etc/debian_version,
# so only another distribution's os-release changes what it sees).
FOCAL_OS_RELEASE = 'NAME="Ubuntu"\nVERSION_ID="20.04"\nVERSION_CODENAME=focal\nID=ubuntu\nID_LIKE=debian\n'
# Paths that running any playbook touches: Ansible's own files, the journal its modules log to.
RUN_TRACES = ("/root/.ansible", "/tmp", "/var/log/journal")


@dataclass
class Refusal:
    """`pyhost provision` on the fresh sandbox host disguised as Ubuntu 20.04."""

    proc: subprocess.CompletedProcess[str]
    seconds: float
    changes_before: list[str]  # `docker diff` of the host container, before and after
    changes_after: list[str]


@dataclass
class Sandbox:
    workspace: Path
    status: dict
    refusal: Refusal
    tokens: dict[str, str] = field(default_factory=dict)  # read tokens, as add-user printed them


def _container_changes(container: str) -> list[str]:
    lines = docker.run(["diff", container]).splitlines()
    return sorted(line for line in lines if not line.split(maxsplit=1)[-1].startswith(RUN_TRACES))


def _provision_as_focal(workspace: Path, container: str) -> Refusal:
    """Provision with /etc/os-release saying Ubuntu 20.04, then put the real one back."""
    disguise = f"mv /etc/os-release /etc/os-release.real && printf '{FOCAL_OS_RELEASE}' > /etc/os-release"
    docker.run(["exec", container, "sh", "-c", disguise])
    try:
        before = _container_changes(container)
        started = time.monotonic()
        proc = pyhost(workspace, "provision", "--host", "sandbox", check=False)
        seconds = time.monotonic() - started
        after = _container_changes(container)
    finally:
        docker.run(["exec", container, "mv", "/etc/os-release.real", "/etc/os-release"])
    return Refusal(proc, seconds, before, after)


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
            status = json.loads(pyhost(workspace, "sandbox", "status", "--json").stdout)
            print("== pyhost provision --host sandbox, disguised as Ubuntu 20.04 (refused)")
            refusal = _provision_as_focal(workspace, status["container"])
            print("== pyhost provision --host sandbox")
            pyhost(workspace, "provision", "--host", "sandbox", stream=True)
        yield Sandbox(workspace, status, refusal)
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


def test_an_unsupported_platform_is_refused_before_anything_changes(sandbox: Sandbox) -> None:
    refusal = sandbox.refusal
    assert refusal.proc.returncode != 0, refusal.proc.stdout
    failed = [line for line in refusal.proc.stdout.splitlines() if line.startswith("failed ")]
    assert failed == [
        "failed sandbox | Check that the host runs a supported platform: Ubuntu 20.04 is not supported: "
        "pyhost runs on Debian 12, Debian 13, Ubuntu 22.04 and Ubuntu 24.04."
    ], refusal.proc.stdout
    assert refusal.seconds < 60, f"the refusal took {refusal.seconds:.0f} s"
    assert refusal.changes_after == refusal.changes_before


def test_sandbox_status_names_a_reachable_https_endpoint(sandbox: Sandbox) -> None:
    status = sandbox.status
    for key in ("url", "domain", "ca_file", "connect", "container"):
        assert status.get(key), f"sandbox status --json lacks {key}: {status}"
    assert status["url"].startswith(f"https://{status['domain']}")
    assert Path(status["ca_file"]).is_file()


def test_add_users_and_read_access(sandbox: Sandbox) -> None:
    accounts = ((PUBLISHER, "publisher", PUBLISHER_PASSWORD), (READER, "reader", READER_PASSWORD))
    for name, role, password in accounts:
        added = pyhost(
            sandbox.workspace,
            "add-user",
            name,
            "--role",
            role,
            "--password-stdin",
            "--host",
            "sandbox",
            input_text=password + "\n",
        ).stdout
        token = users.token_from_output(added)
        assert token, f"add-user printed no read token: {added}"
        sandbox.tokens[name] = token
    listed = pyhost(sandbox.workspace, "list-users").stdout
    assert PUBLISHER in listed and READER in listed and "$2" not in listed
    stored = (sandbox.workspace / "group_vars/index_servers/users.yml").read_text()
    assert "{SSHA}" in stored and not any(token in stored for token in sandbox.tokens.values())

    simple = sandbox.status["url"].rstrip("/") + "/simple/"
    ca = sandbox.status["ca_file"]
    assert _get(simple, ca) == 401
    # Reads take read tokens only (nginx_read_passwords is off): a password costs no bcrypt check there.
    assert _get(simple, ca, READER, READER_PASSWORD) == 401
    assert _get(simple, ca, PUBLISHER, PUBLISHER_PASSWORD) == 401
    assert _get(simple, ca, READER, sandbox.tokens[READER]) == 200
    assert _get(simple, ca, PUBLISHER, sandbox.tokens[PUBLISHER]) == 200
    assert _get(simple, ca, READER, "wrong password") == 401
    assert _get(simple, ca, READER, sandbox.tokens[PUBLISHER]) == 401  # a token is its own user's only


def test_a_new_token_replaces_the_old_one(sandbox: Sandbox) -> None:
    simple = sandbox.status["url"].rstrip("/") + "/simple/"
    ca = sandbox.status["ca_file"]
    old = sandbox.tokens[READER]
    new = users.token_from_output(pyhost(sandbox.workspace, "token", READER, "--host", "sandbox").stdout)
    assert new and new != old
    assert _get(simple, ca, READER, new) == 200
    assert _get(simple, ca, READER, old) == 401
    sandbox.tokens[READER] = new


def test_verbose_converge_never_shows_a_password_or_its_hash(sandbox: Sandbox) -> None:
    sentinel = "Sentinel-Passw0rd-7f3a9c"
    added = pyhost(
        sandbox.workspace,
        "add-user",
        "sentinel",
        "--role",
        "publisher",
        "--password-stdin",
        "--host",
        "sandbox",
        input_text=sentinel + "\n",
    ).stdout
    token = users.token_from_output(added)
    assert token
    entries = yaml.safe_load((sandbox.workspace / "group_vars/index_servers/users.yml").read_text())
    (entry,) = [u for u in entries["pyhost_users"] if u["name"] == "sentinel"]
    stored, token_hash = entry["hash"], entry["token_hash"]
    proc = pyhost(sandbox.workspace, "provision", "--host", "sandbox", "-vvvv", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "ESTABLISH" in output, "not a -vvv transcript: the check below would prove nothing"
    assert sentinel not in output
    assert stored not in output
    assert stored.split("$")[-1] not in output  # not even the salt and digest part of the hash
    assert token not in output
    assert token_hash.removeprefix("{SSHA}") not in output
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
        token=sandbox.tokens[PUBLISHER],
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


def test_static_publish_into_the_host(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "dist").mkdir()
    releases = build_releases(tmp_path / "dist")
    for paths in releases.values():  # two versions of two packages, one call each
        out = pyhost(sandbox.workspace, "static", "publish", *map(str, paths), "--host", "sandbox").stdout
        assert f"index URL: https://{sandbox.status['domain']}/simple/" in out, out
    # As the reader, with a read token.
    url = f"https://{READER}:{sandbox.tokens[READER]}@{sandbox.status['domain']}/simple/"
    ca_file = sandbox.status["ca_file"]
    installed = helpers.pip_install(url, tmp_path / "venv", "pkg-a", "pkg-b", ca_file=ca_file)
    assert installed["pkg-a"] == "2.0" and installed["pkg-b"] == "2.0"

    # The same files again change nothing; a taken name with other content is refused, and nothing lands.
    same = map(str, releases["pkg-a==2.0"])
    again = pyhost(sandbox.workspace, "static", "publish", *same, "--host", "sandbox")
    assert "uploaded" not in again.stdout and "unchanged" in again.stdout
    clash_dir = tmp_path / "clash"
    clash_dir.mkdir()
    clash = helpers.build_wheel(clash_dir, "pkg-a", "1.0", requires_python=">=3.12")
    fresh = helpers.build_wheel(clash_dir, "pkg-c", "1.0")
    refused = pyhost(
        sandbox.workspace, "static", "publish", str(fresh), str(clash), "--host", "sandbox", check=False
    )
    assert refused.returncode == 1
    errors = [line for line in refused.stderr.splitlines() if line.startswith("pyhost: error:")]
    assert len(errors) == 1 and "different content" in errors[0], refused.stderr
    listing = pyhost(sandbox.workspace, "static", "list", "--host", "sandbox").stdout
    assert "pkg_a-2.0-py3-none-any.whl" in listing and "pkg_c" not in listing
