"""Check a password file before pyhost puts it in place: `check_htpasswd.py [--tokens] FILE`.

Password files (publishers, readers) must parse with pypiserver's own reader (passlib's HtpasswdFile), and
every entry must be a bcrypt hash that this passlib and bcrypt can verify. The read tokens' file (--tokens)
must hold one `name:{SSHA}...` entry per user, in the form nginx's auth_basic reads: base64 of a SHA-1 digest
followed by its salt. Prints only counts and user names, never a hash.
"""

from __future__ import annotations

import base64
import binascii
import re
import sys

from passlib.apache import HtpasswdFile
from passlib.hash import bcrypt

SHA1_BYTES = 20
MIN_SALT_BYTES = 4
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")


def check_passwords(path: str) -> int:
    try:
        entries = HtpasswdFile(path)
    except (OSError, ValueError) as exc:
        print(f"{path}: cannot be read as an htpasswd file: {exc}", file=sys.stderr)
        return 1
    not_bcrypt = [user for user in entries.users() if not bcrypt.identify(entries.get_hash(user))]
    if not_bcrypt:
        print(f"{path}: not a bcrypt hash for {', '.join(not_bcrypt)}", file=sys.stderr)
        return 1
    # Proves the passlib and bcrypt pair can verify hashes at all (passlib 1.7.4 with bcrypt >= 4.1 cannot).
    probe = bcrypt.using(rounds=4).hash("probe")
    if not bcrypt.verify("probe", probe):
        print("passlib cannot verify bcrypt hashes", file=sys.stderr)
        return 1
    print(f"{path}: {len(entries.users())} user(s), all bcrypt")
    return 0


def _is_ssha(value: str) -> bool:
    if not value.startswith("{SSHA}"):
        return False
    try:
        raw = base64.b64decode(value[len("{SSHA}") :], validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) >= SHA1_BYTES + MIN_SALT_BYTES


def check_tokens(path: str) -> int:
    try:
        with open(path, encoding="utf-8") as stream:
            lines = stream.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot be read: {exc}", file=sys.stderr)
        return 1
    names: list[str] = []
    bad: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, _, value = line.partition(":")
        if not NAME_RE.match(name) or name in names:
            bad.append(f"line {number}")
        elif not _is_ssha(value):
            bad.append(name)
        names.append(name)
    if bad:
        print(f"{path}: not a valid {{SSHA}} entry for {', '.join(bad)}", file=sys.stderr)
        return 1
    print(f"{path}: {len(names)} read token(s), all {{SSHA}}")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--tokens"] and len(argv[1:]) == 1:
        return check_tokens(argv[1])
    if len(argv) == 1 and not argv[0].startswith("-"):
        return check_passwords(argv[0])
    print("usage: check_htpasswd.py [--tokens] FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
