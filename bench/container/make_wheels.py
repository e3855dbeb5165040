"""make_wheels.py DIR FIRST COUNT: small but valid pure-Python wheels benchpkg-1.0.FIRST ... of one project.

Runs inside the sandbox host (any Python 3.8+, standard library only). Each wheel has METADATA with a
Requires-Python, WHEEL and RECORD, so pip, pyhost's page generator and pypiserver all accept it.
"""

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

PROJECT = "benchpkg"


def wheel(directory: Path, version: str, project: str = PROJECT, more_metadata: str = "") -> Path:
    """One wheel; `more_metadata` is appended to its METADATA (more headers, a blank line, a description)."""
    info = f"{project}-{version}.dist-info"
    files = {
        f"{project}/__init__.py": f"VERSION = {version!r}\n".encode(),
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {project}\nVersion: {version}\nRequires-Python: >=3.8\n"
            + more_metadata
        ).encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: pyhost-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    path = directory / f"{project}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def main() -> None:
    directory, first, count = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(first, first + count):
        wheel(directory, f"1.0.{number}")


if __name__ == "__main__":
    main()
