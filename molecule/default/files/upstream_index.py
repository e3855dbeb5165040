"""A small upstream index for the molecule default scenario (standard library only; Debian's python3).

    python3 upstream_index.py build DIR         # wheels and PEP 691/503 pages of the upstream projects
    python3 upstream_index.py serve DIR PORT    # serve them; every request path appended to DIR/access.log
    python3 upstream_index.py wheel DIR NAME VERSION [REQUIREMENT ...]   # one wheel (the private uploads)

The upstream projects (upload times relative to the build):

- upstream-only-dep: 1.0 (30 days old), 1.5 (30 days old, yanked), 2.0 (an hour old: held by the cooldown);
- exempt-lib: 2.0 (an hour old; the scenario exempts it);
- pyhost-upstream-app 99.0 and acme-tools 99.0: the names of private projects, with a higher version;
- never-fetched-lib 1.0: asked for only while upstream is down;
- big-blob 1.0 to 1.4: 2 MiB of random bytes each, more than the scenario's file cache cap together.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import http.server
import io
import json
import os
import sys
import zipfile
from pathlib import Path

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
NOW = dt.datetime.now(dt.UTC)


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel(out: Path, name: str, version: str, requires: list[str], blob: int = 0) -> Path:
    """A pure-Python wheel: a module that knows its version, METADATA with Requires-Dist, RECORD."""
    module = name.replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    metadata = "".join(
        [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
        + [f"Requires-Dist: {r}\n" for r in requires]
    ).encode()
    members = {
        f"{module}/__init__.py": f'VERSION = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: pyhost-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    if blob:
        members[f"{module}/blob.bin"] = os.urandom(blob)
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    path = out / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    (out / (path.name + ".metadata")).write_bytes(metadata)
    return path


def _time(age: dt.timedelta) -> str:
    return (NOW - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


OLD, YOUNG = dt.timedelta(days=30), dt.timedelta(hours=1)
PROJECTS: dict[str, list[dict[str, object]]] = {
    "upstream-only-dep": [
        {"version": "1.0", "age": OLD},
        {"version": "1.5", "age": OLD, "yanked": "broken build"},
        {"version": "2.0", "age": YOUNG},
    ],
    "exempt-lib": [{"version": "2.0", "age": YOUNG}],
    "pyhost-upstream-app": [{"version": "99.0", "age": OLD}],
    "acme-tools": [{"version": "99.0", "age": OLD}],
    "never-fetched-lib": [{"version": "1.0", "age": OLD}],
    "big-blob": [{"version": f"1.{n}", "age": OLD, "blob": 2 << 20} for n in range(5)],
}


def build(root: Path) -> None:
    files = root / "files"
    files.mkdir(parents=True, exist_ok=True)
    for project, releases in PROJECTS.items():
        entries = []
        for release in releases:
            path = wheel(files, project, str(release["version"]), [], int(release.get("blob", 0)))
            metadata = (files / (path.name + ".metadata")).read_bytes()
            entries.append(
                {
                    "filename": path.name,
                    "url": f"/files/{path.name}",
                    "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                    "size": path.stat().st_size,
                    "upload-time": _time(release["age"]),  # type: ignore[arg-type]
                    "yanked": release.get("yanked", False),
                    "core-metadata": {"sha256": hashlib.sha256(metadata).hexdigest()},
                }
            )
        page_dir = root / "simple" / project
        page_dir.mkdir(parents=True, exist_ok=True)
        page = {"meta": {"api-version": "1.1"}, "name": project, "files": entries}
        (page_dir / "index.v1+json").write_text(json.dumps(page))
        anchors = []
        for entry in entries:
            yanked = entry["yanked"]
            attributes = f' data-yanked="{html.escape(yanked)}"' if isinstance(yanked, str) else ""
            anchors.append(
                f'<a href="{entry["url"]}#sha256={entry["hashes"]["sha256"]}"{attributes}>'  # type: ignore[index]
                f"{entry['filename']}</a>"
            )
        (page_dir / "index.html").write_text(
            "<!DOCTYPE html><html><body>" + "".join(anchors) + "</body></html>"
        )


def serve(root: Path, port: int) -> None:
    log = (root / "access.log").open("a", buffering=1)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def send_head(self):  # type: ignore[no-untyped-def]
            log.write(self.path + "\n")
            if self.path.startswith("/simple/") and self.path.endswith("/"):
                json_page = root / self.path.lstrip("/") / "index.v1+json"
                if JSON_TYPE in self.headers.get("Accept", "") and json_page.is_file():
                    body = json_page.read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Type", JSON_TYPE)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    return io.BytesIO(body)
            return super().send_head()

        def log_message(self, *args: object) -> None:
            pass

    http.server.ThreadingHTTPServer(("", port), Handler).serve_forever()


def main(argv: list[str]) -> int:
    command, root = argv[0], Path(argv[1])
    if command == "build":
        build(root)
    elif command == "serve":
        serve(root, int(argv[2]))
    elif command == "wheel":
        root.mkdir(parents=True, exist_ok=True)
        print(wheel(root, argv[2], argv[3], argv[4:]))
    else:
        print(f"upstream_index.py: unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
