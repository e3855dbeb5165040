"""The upstream index's cost, on this machine: warm upstream reads against private reads of the same size, the
latency a cold miss adds over the upstream fetch itself, and the filter's memory.

Everything runs on loopback, as root, with Debian's nginx: the site that the nginx role renders (Ansible's
templar, as the unit tests render it; anonymous reads, ports moved to 28080/28443), the filter
(roles/upstream/files/pyhost_upstream.py) on a unix socket, and the molecule scenario's upstream index
(molecule/default/files/upstream_index.py) on port 18090. The client is one keep-alive HTTPS connection,
sequential requests (latency, not throughput under load).

    .venv/bin/python bench/upstream.py            # prints the table rows and writes bench/upstream.json
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "molecule" / "default" / "files"))

import upstream_index  # noqa: E402
from tests.unit.test_shared_facts import render  # noqa: E402

UPSTREAM_PORT, HTTPS_PORT, HTTP_PORT = 18090, 28443, 28080
ROUNDS = 300
BLOB = 2 << 20  # the file size of both file rows
COLD = 10  # cold misses measured (each a page never read before)


def _site(work: Path) -> str:
    inventory = {
        "pyhost_domain": "localhost",
        "pyhost_public_read": True,
        "nginx_default_server": False,
        "nginx_placeholder_dir": str(work / "tls"),
        "pyhost_data_dir": str(work),
        "pyhost_upstream_cache_dir": str(work / "cache"),
        "pyhost_upstream_socket": str(work / "upstream.sock"),
        "pyhost_upstream_min_age": "0",
    }
    site = render("nginx", "pyhost.conf.j2", inventory, tasks_file="vhost.yml")
    return (
        site.replace("/etc/nginx/pyhost-ffdhe2048.pem", str(REPO / "roles/nginx/files/ffdhe2048.pem"))
        .replace("/var/log/nginx/", f"{work}/")
        .replace("listen 443 ssl http2;", f"listen 127.0.0.1:{HTTPS_PORT} ssl http2;")
        .replace("listen 80;", f"listen 127.0.0.1:{HTTP_PORT};")
    )


def _setup(work: Path) -> list[subprocess.Popen[bytes]]:
    for name in ("packages", "simple", "metadata", "cache", "tls"):
        (work / name).mkdir()
    tls = work / "tls"
    openssl = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost"
    san = ["-addext", "subjectAltName=DNS:localhost"]
    keys = ["-keyout", str(tls / "privkey.pem"), "-out", str(tls / "fullchain.pem")]
    subprocess.run([*openssl.split(), *san, *keys], check=True, capture_output=True)
    # The private side: a project whose page and file have the upstream rows' sizes.
    upstream_index.PROJECTS = {
        "big-blob": [{"version": "1.0", "age": upstream_index.OLD, "blob": BLOB}],
        **{f"small-lib-{n}": [{"version": "1.0", "age": upstream_index.OLD}] for n in range(COLD)},
    }
    upstream_index.build(work / "upstream")
    upstream_index.wheel(work / "packages", "private-blob", "1.0", [], BLOB)
    upstream_index.wheel(work / "packages", "private-small", "1.0", [])
    for stray in (work / "packages").glob("*.metadata"):
        stray.unlink()
    dirs = {"--packages-dir": "packages", "--output": "simple", "--metadata-dir": "metadata"}
    pages = [arg for option, name in dirs.items() for arg in (option, str(work / name))]
    subprocess.run([sys.executable, "-m", "pyhost.index.indexgen", *pages], check=True, capture_output=True)
    (work / "site.conf").write_text(_site(work))
    (work / "nginx.conf").write_text(
        f"pid {work}/nginx.pid;\nerror_log {work}/error.log;\nuser root;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include /etc/nginx/mime.types;\n  include {work}/site.conf;\n}}\n"
    )
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                str(REPO / "molecule/default/files/upstream_index.py"),
                "serve",
                str(work / "upstream"),
                str(UPSTREAM_PORT),
            ]
        ),
        subprocess.Popen(
            [
                sys.executable,
                str(REPO / "roles/upstream/files/pyhost_upstream.py"),
                "--upstream-url",
                f"http://127.0.0.1:{UPSTREAM_PORT}/simple/",
                "--unix-socket",
                str(work / "upstream.sock"),
                "--min-age",
                "0",
            ],
            stderr=subprocess.DEVNULL,
        ),
    ]
    subprocess.run(["nginx", "-c", str(work / "nginx.conf"), "-e", str(work / "error.log")], check=True)
    time.sleep(1)
    return processes


class Client:
    def __init__(self, ca: Path) -> None:
        context = ssl.create_default_context(cafile=str(ca))
        self.connection = http.client.HTTPSConnection("localhost", HTTPS_PORT, context=context)

    def get(self, path: str, accept: str = "application/vnd.pypi.simple.v1+json") -> tuple[float, int, bytes]:
        started = time.perf_counter()
        self.connection.request("GET", path, headers={"Accept": accept})
        response = self.connection.getresponse()
        body = response.read()
        return time.perf_counter() - started, response.status, body


def _median_ms(client: Client, path: str) -> tuple[float, int]:
    times = []
    for _ in range(ROUNDS):
        took, status, body = client.get(path)
        assert status == 200, (path, status)
        times.append(took)
    return statistics.median(times) * 1000, len(body)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(work: Path, app_pid: int) -> dict[str, object]:
    client = Client(work / "tls/fullchain.pem")
    upstream_page = "/simple/big-blob/"
    upstream_file = "/upstream-files/big-blob/big_blob-1.0-py3-none-any.whl"
    client.get("/simple/private-small/")  # the TLS handshake, out of the cold row
    # Cold: the first read of a page through the filter, against the same page read from upstream directly
    # (a new connection each time, as the filter makes one).
    cold, direct = [], []
    for n in range(COLD):
        took, status, _ = client.get(f"/simple/small-lib-{n}/")
        assert status == 200
        cold.append(took)
        started = time.perf_counter()
        request = urllib.request.Request(
            f"http://127.0.0.1:{UPSTREAM_PORT}/simple/small-lib-{n}/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        )
        with urllib.request.urlopen(request) as response:  # noqa: S310 (loopback)
            response.read()
        direct.append(time.perf_counter() - started)
    cold_file, status, _ = client.get(upstream_file)
    assert status == 200
    client.get(upstream_page)  # warm both
    rows = {}
    for name, path in (
        ("private page", "/simple/private-blob/"),
        ("upstream page (warm)", upstream_page),
        ("private file (2 MiB)", "/packages/private_blob-1.0-py3-none-any.whl"),
        ("upstream file (2 MiB, warm)", upstream_file),
    ):
        rows[name] = _median_ms(client, path)
    return {
        "rounds": ROUNDS,
        "median_ms_and_bytes": rows,
        "cold_page_ms": statistics.median(cold) * 1000,
        "direct_upstream_page_ms": statistics.median(direct) * 1000,
        "cold_file_2mib_ms": cold_file * 1000,
        "filter_rss_mib": _rss_mib(app_pid),
    }


def main() -> int:
    if shutil.which("nginx") is None or os.geteuid() != 0:
        print("bench/upstream.py: error: needs root and nginx (apt-get install nginx-core)", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="pyhost-bench-upstream-"))
    processes = _setup(work)
    try:
        result = measure(work, processes[1].pid)
    finally:
        subprocess.run(
            ["nginx", "-c", str(work / "nginx.conf"), "-e", str(work / "error.log"), "-s", "stop"],
            check=False,
        )
        for process in processes:
            process.terminate()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)
    (REPO / "bench" / "upstream.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
