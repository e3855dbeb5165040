"""The seed's tutorial, step for step, against a running index: what a user does once the server is up.

Poetry builds and publishes `hello-poetry` 0.1.0 and 0.2.0; pip installs it by `--index-url` and through the
pip.conf that `pyhost client-config` prints; a consumer Poetry project adds it from the index; uv installs it;
twine uploads a second package. Used by `make demo` and by the end-to-end test, so both run the same steps.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pyhost.errors import PyhostError
from pyhost.index.clientconfig import PLACEHOLDER, TOKEN_PLACEHOLDER

TOOLS = ("poetry>=2,<3", "twine>=5", "uv>=0.4", "build>=1")
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

HELLO_MODULE = '''\
class HelloPoetry:
    """Says hello when made."""

    def __init__(self) -> None:
        print("Hello Poetry")
'''


@dataclass
class Index:
    """Where the index is and who uses it."""

    url: str  # https://DOMAIN[:PORT]/
    user: str
    password: str  # publishing (twine, poetry publish)
    ca_file: Path
    token: str | None = None  # installing (pip, uv, a Poetry source); the password when there is none

    @property
    def read_secret(self) -> str:
        return self.token if self.token is not None else self.password

    @property
    def simple(self) -> str:
        return self.url.rstrip("/") + "/simple/"

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc


@dataclass
class Outcome:
    """What the tutorial observed, for the caller to check and show."""

    steps: list[str] = field(default_factory=list)
    hello_output: str = ""
    consumer_constraint: str = ""
    installed: dict[str, str] = field(default_factory=dict)


class Tutorial:
    """Runs each step in WORKDIR with its own tools venv; every command's output goes to LOG."""

    def __init__(
        self,
        index: Index,
        workdir: Path,
        *,
        client_config: Callable[[str], str],
        say: Callable[[str], None] = print,
    ) -> None:
        self.index = index
        self.work = workdir
        self.client_config = client_config
        self.say = say
        self.log = workdir / "tutorial.log"
        self.tools = workdir / "tools"
        self.outcome = Outcome()
        self.bundle = workdir / "ca-bundle.pem"

    # -- plumbing -------------------------------------------------------------------------------
    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PIP_", "POETRY_", "UV_", "TWINE_", "VIRTUAL_ENV"))
        }
        env.update(
            {
                "PATH": f"{self.tools / 'bin'}{os.pathsep}{env.get('PATH', '')}",
                "PIP_CONFIG_FILE": os.devnull,
                "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "REQUESTS_CA_BUNDLE": str(self.bundle),
                "SSL_CERT_FILE": str(self.bundle),
                "PIP_CERT": str(self.bundle),
                "POETRY_CONFIG_DIR": str(self.work / "poetry-config"),
                "POETRY_CACHE_DIR": str(self.work / "poetry-cache"),
                "POETRY_VIRTUALENVS_IN_PROJECT": "true",
                "POETRY_NO_INTERACTION": "1",
                "UV_CACHE_DIR": str(self.work / "uv-cache"),
                "UV_NATIVE_TLS": "1",
                "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring",
            }
        )
        env.update(extra or {})
        return env

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        input_text: str | None = None,
    ) -> str:
        """Run one command; fail with its last lines when it fails."""
        with self.log.open("a") as log:
            log.write(f"\n$ {' '.join(args)}\n")
        proc = subprocess.run(
            list(args),
            cwd=cwd or self.work,
            env=self._env(env),
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
        )
        with self.log.open("a") as log:
            log.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PyhostError(
                f"`{' '.join(args[:3])} ...` failed (exit {proc.returncode}): {' | '.join(tail)}"
            )
        return proc.stdout

    def step(self, title: str) -> None:
        self.outcome.steps.append(title)
        self.say(f"  - {title}")

    def fresh_venv(self, name: str) -> Path:
        venv = self.work / name
        shutil.rmtree(venv, ignore_errors=True)
        self.run([sys.executable, "-m", "venv", str(venv)])
        return venv

    # -- the steps ------------------------------------------------------------------------------
    def prepare(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        system = SYSTEM_CA_BUNDLE.read_text() if SYSTEM_CA_BUNDLE.exists() else ""
        # Build tools fetch from PyPI (system trust) and the index needs its own CA: one bundle for both.
        self.bundle.write_text(system + "\n" + self.index.ca_file.read_text())
        if not (self.tools / "bin" / "poetry").exists():
            self.step("install the client tools (poetry, twine, uv, build) into their own venv")
            self.run([sys.executable, "-m", "venv", str(self.tools)])
            self.run([str(self.tools / "bin/pip"), "install", "--quiet", *TOOLS])

    def publish_hello_poetry(self) -> None:
        project = self.work / "hello-poetry"
        shutil.rmtree(project, ignore_errors=True)
        self.step("poetry new hello-poetry, with hello_poetry/hellopoetry.py")
        self.run(["poetry", "new", "hello-poetry"])
        package = project / "src" / "hello_poetry"
        if not package.is_dir():
            package = project / "hello_poetry"
        (package / "hellopoetry.py").write_text(HELLO_MODULE)

        self.step("poetry config repositories.dev and http-basic.dev")
        self.run(["poetry", "config", "repositories.dev", self.index.url], cwd=project)
        self.run(["poetry", "config", "http-basic.dev", self.index.user, self.index.password], cwd=project)
        self.run(["poetry", "config", "certificates.dev.cert", str(self.bundle)], cwd=project)

        self.step("poetry publish -r dev --build (0.1.0)")
        self.run(["poetry", "publish", "-r", "dev", "--build"], cwd=project)
        self.step("poetry version 0.2.0, build and publish again")
        self.run(["poetry", "version", "0.2.0"], cwd=project)
        shutil.rmtree(project / "dist", ignore_errors=True)
        self.run(["poetry", "publish", "-r", "dev", "--build"], cwd=project)

    def _authed_simple(self) -> str:
        parts = urlsplit(self.index.simple)
        return f"{parts.scheme}://{self.index.user}:{self.index.read_secret}@{parts.netloc}{parts.path}"

    def pip_install_from_index(self, venv_name: str, project: str) -> str:
        """pip install PROJECT into a fresh venv with --index-url; returns the installed version."""
        venv = self.fresh_venv(venv_name)
        self.run(
            [
                str(venv / "bin/pip"),
                "install",
                "--no-cache-dir",
                "--cert",
                str(self.bundle),
                "--index-url",
                self._authed_simple(),
                project,
            ]
        )
        return self._version(venv, project)

    def pip_install_by_index_url(self) -> None:
        self.step("option 1.1: pip install --index-url https://<domain>/simple/ hello-poetry")
        self.outcome.installed["pip --index-url"] = self.pip_install_from_index("venv-pip", "hello-poetry")

    def pip_install_by_client_config(self) -> None:
        self.step("option 1.2: the same install through the pip.conf from `pyhost client-config`")
        venv = self.fresh_venv("venv-pipconf")
        conf = self.client_config("pip").replace(PLACEHOLDER, self.index.password)
        conf = conf.replace(TOKEN_PLACEHOLDER, self.index.read_secret)
        pip_conf = venv / "pip.conf"
        pip_conf.write_text(conf)
        self.run(
            [str(venv / "bin/pip"), "install", "--no-cache-dir", "hello-poetry"],
            env={"PIP_CONFIG_FILE": str(pip_conf), "PIP_CERT": str(self.bundle)},
        )
        self.outcome.installed["pip.conf"] = self._version(venv, "hello-poetry")

    def poetry_add(self) -> None:
        self.step("option 2: a consumer project with a [[tool.poetry.source]], then poetry add hello-poetry")
        consumer = self.work / "consumer"
        shutil.rmtree(consumer, ignore_errors=True)
        consumer.mkdir()
        # `poetry new` wrote requires-python from the Python that ran it; the consumer runs on the same one.
        python_floor = f">={sys.version_info.major}.{sys.version_info.minor}"
        (consumer / "pyproject.toml").write_text(
            textwrap.dedent(f"""\
            [tool.poetry]
            name = "consumer"
            version = "0.1.0"
            description = "Uses hello-poetry from the private index"
            authors = ["pyhost tutorial"]
            package-mode = false

            [tool.poetry.dependencies]
            python = "{python_floor}"

            [[tool.poetry.source]]
            name = "dev"
            url = "{self.index.simple}"
            priority = "primary"

            [build-system]
            requires = ["poetry-core"]
            build-backend = "poetry.core.masonry.api"
            """)
        )
        credentials = [self.index.user, self.index.read_secret]
        self.run(["poetry", "config", "http-basic.dev", *credentials], cwd=consumer)
        self.run(["poetry", "config", "certificates.dev.cert", str(self.bundle)], cwd=consumer)
        self.run(["poetry", "add", "hello-poetry"], cwd=consumer)
        deps = tomllib.loads((consumer / "pyproject.toml").read_text())
        self.outcome.consumer_constraint = _dependency_constraint(deps, "hello-poetry")
        (consumer / "test.py").write_text(
            "from hello_poetry.hellopoetry import HelloPoetry\n\nHelloPoetry()\n"
        )
        self.step("python test.py")
        self.outcome.hello_output = self.run(["poetry", "run", "python", "test.py"], cwd=consumer).strip()

    def uv_install(self) -> None:
        self.step("uv pip install hello-poetry")
        venv = self.fresh_venv("venv-uv")
        self.run(
            [
                "uv",
                "pip",
                "install",
                "--python",
                str(venv / "bin/python"),
                "--no-cache",
                "--index-url",
                self._authed_simple(),
                "hello-poetry",
            ]
        )
        self.outcome.installed["uv"] = self._version(venv, "hello-poetry")

    def twine_upload_second_package(self) -> None:
        self.step("twine upload of a second package (hello-twine), then pip install it")
        src = self.work / "hello-twine"
        shutil.rmtree(src, ignore_errors=True)
        (src / "hello_twine").mkdir(parents=True)
        (src / "hello_twine" / "__init__.py").write_text('GREETING = "Hello Twine"\n')
        (src / "pyproject.toml").write_text(
            textwrap.dedent("""\
            [build-system]
            requires = ["flit_core>=3.2,<4"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "hello-twine"
            version = "1.0.0"
            description = "A second package, uploaded with twine"
            requires-python = ">=3.9"
            """)
        )
        self.run([str(self.tools / "bin/python"), "-m", "build", "--outdir", "dist", "."], cwd=src)
        dists = sorted(str(p) for p in (src / "dist").iterdir())
        self.run(
            [
                "twine",
                "upload",
                "--non-interactive",
                "--repository-url",
                self.index.url,
                "--cert",
                str(self.bundle),
                "-u",
                self.index.user,
                "-p",
                self.index.password,
                *dists,
            ],
            cwd=src,
        )
        self.outcome.installed["twine upload"] = self.pip_install_from_index("venv-twine", "hello-twine")

    def _version(self, venv: Path, dist: str) -> str:
        out = self.run(
            [str(venv / "bin/python"), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"]
        )
        return out.strip()

    def pip_install_public(self, project: str) -> str:
        """pip install a public PROJECT with this index as the only one: the server pulls it from its upstream
        index (PyPI by default). Only the demo does this: the tests never reach the internet."""
        self.step(f"pip install {project} (a PyPI project) with this index as the only one")
        version = self.pip_install_from_index("venv-upstream", project)
        self.outcome.installed[f"{project} through the upstream index"] = version
        return version

    def run_all(self) -> Outcome:
        started = time.monotonic()
        self.prepare()
        self.publish_hello_poetry()
        self.pip_install_by_index_url()
        self.pip_install_by_client_config()
        self.poetry_add()
        self.uv_install()
        self.twine_upload_second_package()
        self.say(f"  tutorial done in {time.monotonic() - started:.0f} s (log: {self.log})")
        return self.outcome


def _dependency_constraint(pyproject: dict, name: str) -> str:
    """The version constraint poetry recorded for NAME, in either the PEP 621 or the tool.poetry table."""
    for spec in pyproject.get("project", {}).get("dependencies", []):
        if spec.replace("_", "-").lower().startswith(name):
            return spec[len(name) :].strip(" ()")
    legacy = pyproject.get("tool", {}).get("poetry", {}).get("dependencies", {})
    value = legacy.get(name) or legacy.get(name.replace("-", "_"), "")
    return value if isinstance(value, str) else str(value.get("version", ""))
