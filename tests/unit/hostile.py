"""Distribution files as a publisher turned attacker would craft them, for the indexgen and serve tests.

Each builder writes one file into a directory and returns its path. The archives are made byte by byte where
the standard library refuses to write them (flags, unknown compression methods, millions of members), so that
each is exactly the case named and nothing else is wrong with it.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

ENCRYPTED = 0x1
UTF8_NAME = 0x800


def metadata(name: str, version: str, extra: str = "") -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra}".encode()


def wheel(directory: Path, filename: str, members: dict[str, bytes] | None = None) -> Path:
    """A wheel named `filename` whose METADATA agrees with the name, or holding exactly `members`."""
    name, version = filename.split("-")[:2]
    if members is None:
        members = {f"{name}-{version}.dist-info/METADATA": metadata(name, version)}
    path = directory / filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def sdist(directory: Path, filename: str, name: str, version: str) -> Path:
    """A .tar.gz or .zip sdist named `filename` whose PKG-INFO says `name` and `version`."""
    path = directory / filename
    top = filename.removesuffix(".tar.gz").removesuffix(".zip")
    if filename.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"{top}/PKG-INFO", metadata(name, version))
        return path
    with tarfile.open(path, "w:gz") as archive:
        data = metadata(name, version)
        entry = tarfile.TarInfo(f"{top}/PKG-INFO")
        entry.size = len(data)
        archive.addfile(entry, io.BytesIO(data))
    return path


def _find_central(data: bytes, name: bytes) -> int:
    at = data.rindex(b"PK\x01\x02")
    while data[at + 46 : at + 46 + len(name)] != name:
        at = data.rindex(b"PK\x01\x02", 0, at)
    return at


def patch_central_entry(
    path: Path, member: str, *, flags: int = 0, method: int | None = None, name: bytes | None = None
) -> None:
    """Change `member`'s central directory entry (an ASCII name): add general-purpose `flags`, set its
    compression `method`, replace its name by `name` of the same length."""
    data = bytearray(path.read_bytes())
    at = _find_central(bytes(data), member.encode())
    (old,) = struct.unpack_from("<H", data, at + 8)
    struct.pack_into("<H", data, at + 8, old | flags)
    if method is not None:
        struct.pack_into("<H", data, at + 10, method)
    if name is not None:
        assert len(name) == len(member)
        data[at + 46 : at + 46 + len(name)] = name
    path.write_bytes(bytes(data))


def encrypted_metadata(directory: Path, filename: str) -> Path:
    """A wheel whose METADATA carries the 'encrypted' flag (zipfile raises RuntimeError reading it)."""
    path = wheel(directory, filename)
    name, version = filename.split("-")[:2]
    patch_central_entry(path, f"{name}-{version}.dist-info/METADATA", flags=ENCRYPTED)
    return path


def unknown_compression(directory: Path, filename: str) -> Path:
    """A wheel whose METADATA says compression method 97 (zipfile raises NotImplementedError)."""
    path = wheel(directory, filename)
    name, version = filename.split("-")[:2]
    patch_central_entry(path, f"{name}-{version}.dist-info/METADATA", method=97)
    return path


def invalid_utf8_name(directory: Path, filename: str) -> Path:
    """A wheel with a member whose name claims UTF-8 but is not (zipfile raises UnicodeDecodeError)."""
    name, version = filename.split("-")[:2]
    members = {f"{name}-{version}.dist-info/METADATA": metadata(name, version), "xx": b""}
    path = wheel(directory, filename, members)
    patch_central_entry(path, "xx", flags=UTF8_NAME, name=b"x\xff")
    return path


def header_bomb(directory: Path, filename: str, size: int = 15 * 1024 * 1024) -> Path:
    """A small wheel whose METADATA is `size` bytes of headers (the review's 15 MiB took 18 s and 676 MiB)."""
    name, version = filename.split("-")[:2]
    body = metadata(name, version) + b"a: b\n" * (size // 5)
    return wheel(directory, filename, {f"{name}-{version}.dist-info/METADATA": body})


def many_headers(directory: Path, filename: str, count: int) -> Path:
    """A wheel whose METADATA is under the size cap but holds `count` headers."""
    name, version = filename.split("-")[:2]
    body = metadata(name, version) + b"a:\n" * count
    return wheel(directory, filename, {f"{name}-{version}.dist-info/METADATA": body})


def many_zip_members(directory: Path, filename: str, count: int) -> Path:
    """A wheel whose central directory lists `count` entries (all the same empty file), then METADATA.

    Written byte by byte: zipfile takes seconds to write a million entries, and this takes a moment.
    """
    path = wheel(directory, filename)
    data = path.read_bytes()
    end = data.rindex(b"PK\x05\x06")
    (size, offset) = struct.unpack_from("<LL", data, end + 12)
    central = data[offset : offset + size]
    filler = b"PK\x01\x02" + bytes(24) + struct.pack("<HHH", 1, 0, 0) + bytes(12) + b"x"
    padded = filler * count + central
    record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, len(padded), offset, 0)
    path.write_bytes(data[:offset] + padded + record)
    return path


def many_tar_members(directory: Path, filename: str, count: int) -> Path:
    """An sdist of `count` empty members before its PKG-INFO (the review's 200,000 took 18 s)."""
    name, version = filename.removesuffix(".tar.gz").rsplit("-", 1)
    empty = tarfile.TarInfo(f"{name}-{version}/x").tobuf()
    data = metadata(name, version)
    info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
    info.size = len(data)
    path = directory / filename
    with gzip.open(path, "wb", compresslevel=1) as stream:
        for _ in range(count // 1000):
            stream.write(empty * 1000)
        stream.write(empty * (count % 1000))
        stream.write(info.tobuf() + data + bytes(-len(data) % 512) + bytes(1024))
    return path


def large_tar_member(directory: Path, filename: str, declared: int) -> Path:
    """An sdist whose first member declares `declared` bytes (its data is cut short: it is never read)."""
    name, version = filename.removesuffix(".tar.gz").rsplit("-", 1)
    info = tarfile.TarInfo(f"{name}-{version}/big")
    info.size = declared
    path = directory / filename
    with gzip.open(path, "wb") as stream:
        stream.write(info.tobuf() + bytes(4096))
    return path
