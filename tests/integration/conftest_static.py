"""Helpers for the static-index tests: real installable distributions, a moto S3 server, an HTTP server, pip.

Imported as `tests.integration.conftest_static` by tests/unit/test_indexgen.py, tests/unit/test_static.py and
tests/integration/test_static_route.py; pytest does not load it as a conftest.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

BUCKET = "team-packages"
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIATESTINGONLY00000",
    "AWS_SECRET_ACCESS_KEY": "test-secret-that-must-never-be-printed",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# Fixed timestamps make builds reproducible, so building the same release twice gives the same bytes.
FIXED_DATE = (2024, 1, 1, 0, 0, 0)
WHEEL_FILE = b"Wheel-Version: 1.0\nGenerator: pyhost-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _metadata(name: str, version: str, requires_python: str | None) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Summary: test package {name}"]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    return "\n".join(lines) + "\n"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(directory: Path, name: str, version: str, requires_python: str | None = None) -> Path:
    """A real, installable pure-Python wheel with one module, `<name>.py`, holding VERSION; reproducible."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}.py": f'VERSION = "{version}"\n'.encode(),
        f"{info}/METADATA": _metadata(name, version, requires_python).encode(),
        f"{info}/WHEEL": WHEEL_FILE,
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            entry = zipfile.ZipInfo(member, date_time=FIXED_DATE)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data, zipfile.ZIP_DEFLATED)
    return path


def build_sdist(directory: Path, name: str, version: str, requires_python: str | None = None) -> Path:
    """A real sdist (PKG-INFO, pyproject.toml, one module) as `python -m build --sdist` would lay it out."""
    dist = name.replace("-", "_")
    top = f"{dist}-{version}"
    files = {
        f"{top}/PKG-INFO": _metadata(name, version, requires_python).encode(),
        f"{top}/pyproject.toml": (
            f'[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
        ).encode(),
        f"{top}/{dist}.py": f'VERSION = "{version}"\n'.encode(),
    }
    path = directory / f"{top}.tar.gz"
    with (
        gzip.GzipFile(path, "wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for member, data in files.items():
            entry = tarfile.TarInfo(member)
            entry.size = len(data)
            archive.addfile(entry, io.BytesIO(data))
    return path


@contextlib.contextmanager
def moto_s3(public_bucket: str | None = BUCKET) -> Iterator[str]:
    """A real moto S3 server on loopback; yields its endpoint. The bucket, if named, is publicly readable."""
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - test-only dependency, slow to import

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        # Every moto server in one process shares the same backends: start from an empty store.
        reset = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset, timeout=10).close()
        if public_bucket:
            make_public_bucket(endpoint, public_bucket)
        yield endpoint
    finally:
        server.stop()


def s3_client(endpoint: str | None) -> Any:
    import boto3  # noqa: PLC0415

    return boto3.session.Session(
        aws_access_key_id=AWS_TEST_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    ).client("s3", endpoint_url=endpoint)


def make_public_bucket(endpoint: str, bucket: str) -> None:
    """Create `bucket` with a policy letting anyone read objects, as a team serving pip from S3 does."""
    client = s3_client(endpoint)
    client.create_bucket(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            }
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str]

    def log_message(self, format: str, *args: object) -> None:
        self.requested.append(self.path)


@contextlib.contextmanager
def http_server(
    directory: Path, base: type[_QuietHandler] = _QuietHandler
) -> Iterator[tuple[str, list[str]]]:
    """Serve `directory` on loopback with python's http.server; yields (base URL, paths requested so far)."""
    requested: list[str] = []
    handler = type("Handler", (base,), {"requested": requested})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this machine's pip and AWS settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "AWS_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_FIND_LINKS="",
        PIP_EXTRA_INDEX_URL="",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
    )
    env.update(extra)
    return env


def pip_install(index_url: str, venv: Path, *requirements: str, ca_file: str | None = None) -> dict[str, str]:
    """Install into a fresh venv from `index_url` only; returns {project: installed version}.

    `ca_file`: the only CA pip trusts (requests would prefer REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE to it).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    env = clean_env()
    if ca_file is not None:
        env["PIP_CERT"] = ca_file
        for key in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            env.pop(key, None)
    result = subprocess.run(
        [*pip, "install", "--no-cache-dir", "--index-url", index_url, *requirements],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    script = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(python), "-c", script, *requirements], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`pyhost static ARGS` in a subprocess, the way a user's shell runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pyhost.cli.static", *args],
        env=env if env is not None else clean_env(**AWS_TEST_ENV),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class _JsonIndexHandler(_QuietHandler):
    """http.server with two settings every web server has: the directory's index file, a type by extension.

    A directory with index.v1+json is answered with it, as application/vnd.pypi.simple.v1+json: the same as
    nginx's `index index.v1+json index.html;` with `types { application/vnd.pypi.simple.v1+json v1+json; }`.
    """

    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".v1+json": JSON_TYPE,
    }

    def translate_path(self, path: str) -> str:
        translated = super().translate_path(path)
        index = os.path.join(translated, "index.v1+json")
        return index if path.split("?", 1)[0].endswith("/") and os.path.isfile(index) else translated


@contextlib.contextmanager
def json_index_server(directory: Path) -> Iterator[tuple[str, list[str]]]:
    """Like http_server, serving each directory's index.v1+json (the JSON page) where there is one."""
    with http_server(directory, _JsonIndexHandler) as served:
        yield served


def installer(
    tool: str, index_url: str, venv: Path, *requirements: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`pip install` or `uv pip install` into a fresh venv from `index_url` only, with OPTIONS, unchecked."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    if tool == "pip":
        command = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    else:
        from uv import find_uv_bin  # noqa: PLC0415 - test-only dependency

        command = [find_uv_bin(), "pip", "install", "--python", python, "--no-cache"]
    env = {k: v for k, v in clean_env().items() if not k.startswith("UV_")}
    env["UV_NO_CONFIG"] = "1"
    return subprocess.run(
        [*command, "--index-url", index_url, *options, *requirements],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def installed_version(venv: Path, name: str) -> str:
    script = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    python = str(venv / "bin" / "python")
    return subprocess.run(
        [python, "-c", script, name], capture_output=True, text=True, check=True
    ).stdout.strip()
