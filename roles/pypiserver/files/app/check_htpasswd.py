"""Check a password file before pyhost puts it in place: `check_htpasswd.py FILE`.

The file must parse with pypiserver's own reader (passlib's HtpasswdFile), and every entry must be a bcrypt
hash that this passlib and bcrypt can verify. Prints only counts and user names, never a hash.
"""

from __future__ import annotations

import sys

from passlib.apache import HtpasswdFile
from passlib.hash import bcrypt


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_htpasswd.py FILE", file=sys.stderr)
        return 2
    try:
        entries = HtpasswdFile(argv[0])
    except (OSError, ValueError) as exc:
        print(f"{argv[0]}: cannot be read as an htpasswd file: {exc}", file=sys.stderr)
        return 1
    not_bcrypt = [user for user in entries.users() if not bcrypt.identify(entries.get_hash(user))]
    if not_bcrypt:
        print(f"{argv[0]}: not a bcrypt hash for {', '.join(not_bcrypt)}", file=sys.stderr)
        return 1
    # Proves the passlib and bcrypt pair can verify hashes at all (passlib 1.7.4 with bcrypt >= 4.1 cannot).
    probe = bcrypt.using(rounds=4).hash("probe")
    if not bcrypt.verify("probe", probe):
        print("passlib cannot verify bcrypt hashes", file=sys.stderr)
        return 1
    print(f"{argv[0]}: {len(entries.users())} user(s), all bcrypt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
