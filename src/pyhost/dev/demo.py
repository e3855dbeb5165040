"""`make demo`: a sandbox VPS provisioned for real, a publisher added, and the seed's tutorial run against it.

Every step goes through the real `pyhost` command, as a user would type it. The workspace is ./sandbox
(override with PYHOST_DEMO_WORKSPACE); the tutorial's projects and venvs go under it too.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from pyhost import content
from pyhost.dev.tutorial import Index, Tutorial
from pyhost.errors import PyhostError
from pyhost.sandbox import docker
from pyhost.workspace import users

DEMO_USER = "demo"
# A small PyPI project, released long before the upstream cooldown, that the demo installs through pyhost.
PUBLIC_PROJECT = "six"


def _regenerate_pages(server: dict[str, str]) -> list[str]:
    """The server's page generator over its packages, pages and metadata directories (the role's defaults)."""
    app = server["pypiserver_app_dir"]
    return [
        f"{app}/.venv/bin/python",
        "-I",
        f"{app}/pyhost_indexgen.py",
        "--packages-dir",
        server["pypiserver_packages_dir"],
        "--output",
        server["pypiserver_pages_dir"],
        "--metadata-dir",
        server["pypiserver_metadata_dir"],
    ]


def _pyhost(
    workspace: Path,
    *args: str,
    input_text: str | None = None,
    capture: bool = False,
    capture_stdout: bool = False,
) -> str:
    """Run pyhost; `capture` keeps both streams, `capture_stdout` only the output (progress still shows)."""
    cmd = [sys.executable, "-m", "pyhost", *args, "--inventory", str(workspace)]
    proc = subprocess.run(
        cmd,
        input=input_text,
        text=True,
        stdout=subprocess.PIPE if capture or capture_stdout else None,
        stderr=subprocess.PIPE if capture else None,
        check=False,
    )
    if proc.returncode != 0:
        detail = (proc.stderr or "").strip().splitlines()[-1:] if capture else []
        raise PyhostError(
            f"`pyhost {' '.join(args)}` failed (exit {proc.returncode}) {' '.join(detail)}".strip()
        )
    return proc.stdout if capture or capture_stdout else ""


def _banner(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def main() -> int:
    workspace = Path(os.environ.get("PYHOST_DEMO_WORKSPACE", "sandbox")).resolve()
    started = time.monotonic()
    try:
        _banner("pyhost sandbox up: a systemd 'VPS' and a local ACME server in containers")
        _pyhost(workspace, "sandbox", "up")
        _banner(
            "pyhost provision --host sandbox: the real roles, end to end. The first run builds CPython from "
            "source (about 5-8 minutes on 2 cores) unless the test run already cached it."
        )
        _pyhost(workspace, "provision", "--host", "sandbox")
        status = json.loads(_pyhost(workspace, "sandbox", "status", "--json", capture=True))
        password = secrets.token_urlsafe(18)
        known = json.loads(_pyhost(workspace, "list-users", "--json", capture=True))
        if any(user["name"] == DEMO_USER for user in known):
            # A second demo run keeps its user and gives it a new password and a new read token.
            _banner(f"pyhost passwd {DEMO_USER} (a generated password)")
            _pyhost(
                workspace,
                "passwd",
                DEMO_USER,
                "--password-stdin",
                "--host",
                "sandbox",
                input_text=password + "\n",
            )
            _banner(f"pyhost token {DEMO_USER} (a new read token, for installs)")
            made = _pyhost(workspace, "token", DEMO_USER, "--host", "sandbox", capture_stdout=True)
        else:
            _banner(f"pyhost add-user {DEMO_USER} --role publisher (a generated password)")
            made = _pyhost(
                workspace,
                "add-user",
                DEMO_USER,
                "--role",
                "publisher",
                "--password-stdin",
                "--host",
                "sandbox",
                input_text=password + "\n",
                capture_stdout=True,
            )
        print(made, end="")
        token = users.token_from_output(made)
        if token is None:
            raise PyhostError(f"pyhost did not print a read token for {DEMO_USER}")
        index = Index(
            url=status["url"], user=DEMO_USER, password=password, ca_file=Path(status["ca_file"]), token=token
        )

        def client_config(tool: str) -> str:
            return _pyhost(
                workspace,
                "client-config",
                "--host",
                "sandbox",
                "--user",
                DEMO_USER,
                "--tool",
                tool,
                capture=True,
            )

        # Releases are immutable, so a second demo run would be refused its 0.1.0: start the tutorial's
        # packages afresh in the sandbox (only the demo does this, and only in its own sandbox).
        server = content.role_defaults("pypiserver")
        packages = server["pypiserver_packages_dir"]
        docker.run(["exec", status["container"], "sh", "-c", f"rm -f {packages}/hello[-_]*"])
        # Files removed behind the server's back: bring the static pages in step (the service does at start).
        docker.run(
            ["exec", "--user", server["pypiserver_user"], status["container"], *_regenerate_pages(server)]
        )
        _banner("the seed's tutorial against the sandbox")
        tutorial = Tutorial(index, workspace / "tutorial", client_config=client_config)
        outcome = tutorial.run_all()
        _banner(f"a public package through the same URL: PyPI pulled through {index.simple}")
        try:
            version = tutorial.pip_install_public(PUBLIC_PROJECT)
            public = f"{PUBLIC_PROJECT} {version}, from PyPI through pyhost"
        except PyhostError as exc:  # a machine without PyPI: the private index still works, say so and go on
            public = f"not reached ({exc}); private packages are not affected"
        print(f"  {public}")
    except PyhostError as exc:
        print(f"pyhost demo: error: {exc}", file=sys.stderr)
        return 1
    minutes = (time.monotonic() - started) / 60
    _banner(f"done in {minutes:.1f} min")
    print(f"""
  index URL:     {index.url}
  simple index:  {index.simple}
  CA file:       {index.ca_file}
  user:          {DEMO_USER} (publisher)
  password:      {password}   (publishing: twine, poetry publish)
  read token:    {token}   (installing: pip, uv, poetry add)
  python test.py printed: {outcome.hello_output!r}; consumer pins hello-poetry {outcome.consumer_constraint}
  PyPI:          {public}

Try it (with REQUESTS_CA_BUNDLE and CURL_CA_BUNDLE unset: requests lets them override pip's --cert):
  pip install --cert {index.ca_file} \\
      --index-url https://{DEMO_USER}:{token}@{index.host}/simple/ hello-poetry
  {sys.executable} -m pyhost client-config --inventory {workspace} --host sandbox \\
      --user {DEMO_USER} --tool poetry
  {sys.executable} -m pyhost status --inventory {workspace} --host sandbox
  {sys.executable} -m pyhost sandbox down --inventory {workspace}     # when you are done
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
