"""Users of the index: name rules, bcrypt hashing, read tokens and the workspace's users file.

The users file (group_vars/index_servers/users.yml) is the source of truth: a list of {name, hash, role}
with an optional token_hash. Passwords are hashed here, on the controller, so only bcrypt hashes ever reach
the disk or the server. Read tokens are random secrets made here and shown once; only their {SSHA} hash is
kept.

Why two secrets: basic auth has no sessions, so the server checks a credential on every request. bcrypt is
right for a password a human chose (slow to guess offline) but costs tens of milliseconds per check, which
caps reads near 30 requests a second per core. A read token has 256 random bits: no offline guessing can
succeed, so a fast salted hash, which nginx checks in microseconds, protects it as well as bcrypt would.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import bcrypt
import yaml

from pyhost.errors import PyhostError

# htpasswd forbids ':' in names; URLs and pip.conf need no escaping for these characters.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
ROLES = ("publisher", "reader")
BCRYPT_COST = 10
BCRYPT_MAX_BYTES = 72
# bcrypt's costs run from 04 to 31. The role checks the same rules (roles/pypiserver/vars/main.yml); a unit
# test holds the two copies equal.
HASH_RE = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
TOKEN_BYTES = 32
TOKEN_SALT_BYTES = 16
TOKEN_SCHEME = "{SSHA}"  # noqa: S105 - the name of a hash scheme, not a secret
SHA1_BYTES = 20
# How `pyhost add-user` and `pyhost token` print a new token (scripts read it back from this line).
TOKEN_ANNOUNCEMENT = "read token for pip/uv/poetry installs: "  # noqa: S105 - a label, not a secret
# The role checks the same form (roles/pypiserver/vars/main.yml): a digest and a salt of 4 bytes or more.
TOKEN_HASH_RE = re.compile(r"^\{SSHA\}[A-Za-z0-9+/]{32,}={0,2}$")

HEADER = (
    "# Users of the package index, written by `pyhost add-user`, `pyhost passwd`, `pyhost token` and\n"
    "# `pyhost remove-user`. Only hashes live here: bcrypt for passwords, {SSHA} for read tokens.\n"
    "# Roles: publisher (upload and read), reader (read only).\n"
)


@dataclass(frozen=True)
class User:
    name: str
    hash: str
    role: str
    token_hash: str | None = None

    def as_dict(self) -> dict[str, str]:
        entry = {"name": self.name, "hash": self.hash, "role": self.role}
        if self.token_hash is not None:
            entry["token_hash"] = self.token_hash
        return entry


def validate_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise PyhostError(
            f"invalid user name {name!r}: use 1 to 32 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or a digit"
        )


def validate_role(role: str) -> None:
    if role not in ROLES:
        raise PyhostError(f"invalid role {role!r}: use one of {', '.join(ROLES)}")


def validate_password(password: str) -> None:
    if not password:
        raise PyhostError("empty password: nothing was changed")
    if "\0" in password or "\n" in password:
        raise PyhostError("the password contains a NUL or newline character: nothing was changed")
    if len(password.encode()) > BCRYPT_MAX_BYTES:
        raise PyhostError(
            f"the password is longer than bcrypt's {BCRYPT_MAX_BYTES} bytes: nothing was changed"
        )


def hash_password(password: str) -> str:
    validate_password(password)
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=BCRYPT_COST, prefix=b"2b")).decode()


def verify_password(password: str, hashed: str) -> bool:
    return bcrypt.checkpw(password.encode(), hashed.encode())


def new_token() -> str:
    """A read token: 32 random bytes, URL-safe base64 (43 characters, no ':' so it fits basic auth)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str, salt: bytes | None = None) -> str:
    """{SSHA} hash, as nginx's auth_basic checks it: base64(sha1(token + salt) + salt)."""
    salt = secrets.token_bytes(TOKEN_SALT_BYTES) if salt is None else salt
    digest = hashlib.sha1(token.encode() + salt).digest()  # noqa: S324 - a 256-bit random token, not a password
    return TOKEN_SCHEME + base64.b64encode(digest + salt).decode()


def verify_token(token: str, hashed: str) -> bool:
    if not TOKEN_HASH_RE.match(hashed):
        return False
    try:
        raw = base64.b64decode(hashed[len(TOKEN_SCHEME) :], validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(hash_token(token, raw[SHA1_BYTES:]), hashed)


def token_from_output(output: str) -> str | None:
    """The token that `pyhost add-user` or `pyhost token` printed, from its standard output."""
    for line in output.splitlines():
        if line.startswith(TOKEN_ANNOUNCEMENT):
            return line[len(TOKEN_ANNOUNCEMENT) :].strip() or None
    return None


def with_new_token(user: User) -> tuple[User, str]:
    """The user with a fresh read token's hash, and the token itself (to show once, never to store)."""
    token = new_token()
    return replace(user, token_hash=hash_token(token)), token


def read_password_stdin(stream: IO[str]) -> str:
    """The first line of standard input, without its line ending (as `docker login --password-stdin`)."""
    data = stream.read()
    first = data.splitlines()[0] if data else ""
    validate_password(first)
    return first


def prompt_password(ask: Callable[[str], str]) -> str:
    """Ask twice with ASK (getpass); an empty or mismatched answer is an error, never a retry loop."""
    first = ask("Password: ")
    validate_password(first)
    second = ask("Repeat password: ")
    if first != second:
        raise PyhostError("the two passwords do not match: nothing was changed")
    return first


class UsersFile:
    """group_vars/index_servers/users.yml of one workspace."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[User]:
        if not self.path.exists():
            return []
        try:
            data = yaml.safe_load(self.path.read_text())
        except yaml.YAMLError as exc:
            raise PyhostError(f"{self.path} is not valid YAML: {exc}") from exc
        if data is None:
            return []
        if not isinstance(data, dict):
            raise PyhostError(f"{self.path} must be a mapping with a pyhost_users list")
        entries = data.get("pyhost_users")
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise PyhostError(f"{self.path}: pyhost_users must be a list of {{name, hash, role}}")
        users = []
        for index, entry in enumerate(entries, start=1):
            users.append(self._parse(index, entry))
        return users

    def _parse(self, index: int, entry: object) -> User:
        where = f"{self.path}: user #{index}"
        if not isinstance(entry, dict) or not {"name", "hash", "role"} <= entry.keys():
            raise PyhostError(f"{where} must have name, hash and role")
        name, hashed, role = (str(entry[k]) for k in ("name", "hash", "role"))
        try:
            validate_name(name)
            validate_role(role)
        except PyhostError as exc:
            raise PyhostError(f"{where}: {exc}") from exc
        if not HASH_RE.match(hashed):
            raise PyhostError(
                f"{where} ({name}) has no bcrypt hash: set its password with `pyhost passwd {name}`"
            )
        token_hash = entry.get("token_hash")
        if token_hash is not None and not TOKEN_HASH_RE.match(str(token_hash)):
            raise PyhostError(
                f"{where} ({name}) has a token_hash that is not an {{SSHA}} hash: "
                f"make a new token with `pyhost token {name}`"
            )
        return User(name, hashed, role, None if token_hash is None else str(token_hash))

    def get(self, name: str) -> User:
        for user in self.load():
            if user.name == name:
                return user
        raise PyhostError(f"no user {name!r} in {self.path}: `pyhost list-users` shows who exists")

    def save(self, users: list[User]) -> None:
        """Replace the file atomically with mode 0600: readers see the old list or the new one, never half."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = HEADER + yaml.safe_dump(
            {"pyhost_users": [user.as_dict() for user in users]}, default_flow_style=False, sort_keys=False
        )
        fd, tmp = tempfile.mkstemp(prefix=".users.", suffix=".tmp", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def added(users: list[User], new: User) -> list[User]:
    if any(user.name == new.name for user in users):
        raise PyhostError(
            f"user {new.name!r} already exists: change the password with `pyhost passwd {new.name}`"
        )
    return [*users, new]


def removed(users: list[User], name: str) -> list[User]:
    kept = [user for user in users if user.name != name]
    if len(kept) == len(users):
        raise PyhostError(f"no user {name!r}: `pyhost list-users` shows who exists")
    return kept


def replaced(users: list[User], new: User) -> list[User]:
    if not any(user.name == new.name for user in users):
        raise PyhostError(f"no user {new.name!r}: add it with `pyhost add-user {new.name}`")
    return [new if user.name == new.name else user for user in users]
