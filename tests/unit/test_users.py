"""Users: name rules, bcrypt hashes, the users file."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import string
from pathlib import Path

import bcrypt
import pytest
import yaml

from pyhost.errors import PyhostError
from pyhost.workspace import users


@pytest.mark.parametrize("name", ["a", "pyjitsejan", "ci-bot", "j.doe_2", "0day", "a" * 32])
def test_valid_names(name: str) -> None:
    users.validate_name(name)


@pytest.mark.parametrize(
    "name", ["", "Alice", "a:b", "a b", "-lead", ".hidden", "_x", "a/b", "a@b", "ünï", "a" * 33, "a%20b"]
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(PyhostError, match="invalid user name"):
        users.validate_name(name)


def test_hash_is_bcrypt_2b_cost_10_and_verifies() -> None:
    hashed = users.hash_password("correct horse")
    assert hashed.startswith("$2b$10$")
    assert bcrypt.checkpw(b"correct horse", hashed.encode())
    assert not users.verify_password("wrong horse", hashed)
    assert users.hash_password("correct horse") != hashed  # salted


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "empty password"),
        ("a" * 73, "longer than bcrypt's 72 bytes"),
        ("a\nb", "newline"),
        ("é" * 37, "72"),
    ],
)
def test_unusable_passwords(password: str, message: str) -> None:
    with pytest.raises(PyhostError, match=message):
        users.hash_password(password)


def test_password_from_stdin_is_its_first_line() -> None:
    assert users.read_password_stdin(io.StringIO("  spaced pass \r\nignored\n")) == "  spaced pass "
    with pytest.raises(PyhostError, match="empty password"):
        users.read_password_stdin(io.StringIO(""))


def test_prompt_asks_twice_and_refuses_a_mismatch() -> None:
    answers = iter(["one", "two"])
    with pytest.raises(PyhostError, match="do not match"):
        users.prompt_password(lambda _prompt: next(answers))
    answers = iter(["same", "same"])
    assert users.prompt_password(lambda _prompt: next(answers)) == "same"


def test_users_file_round_trip_is_private_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "group_vars" / "index_servers" / "users.yml"
    path.parent.mkdir(parents=True)
    path.write_text("pyhost_users: []\n")
    path.chmod(0o644)
    old_umask = os.umask(0)
    try:
        alice = users.User("alice", users.hash_password("pw"), "publisher")
        users.UsersFile(path).save([alice])
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert users.UsersFile(path).load() == [alice]
    assert [p.name for p in path.parent.iterdir()] == ["users.yml"]  # no temporary file left behind
    assert "pw" not in path.read_text().replace(alice.hash, "")


def test_missing_users_file_is_an_empty_list(tmp_path: Path) -> None:
    assert users.UsersFile(tmp_path / "users.yml").load() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("pyhost_users: {}\n", "must be a list"),
        ("pyhost_users:\n  - name: bob\n    role: reader\n", "must have name, hash and role"),
        ("pyhost_users:\n  - {name: bob, hash: plaintext, role: reader}\n", "pyhost passwd bob"),
        ("pyhost_users:\n  - {name: Bob, hash: x, role: reader}\n", "invalid user name"),
        ("- just a list\n", "must be a mapping"),
    ],
)
def test_malformed_users_file(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "users.yml"
    path.write_text(body)
    with pytest.raises(PyhostError, match=message):
        users.UsersFile(path).load()


def test_list_operations_refuse_duplicates_and_unknown_names() -> None:
    alice = users.User("alice", "h", "reader")
    with pytest.raises(PyhostError, match="already exists"):
        users.added([alice], users.User("alice", "h2", "publisher"))
    with pytest.raises(PyhostError, match="no user 'bob'"):
        users.removed([alice], "bob")
    with pytest.raises(PyhostError, match="no user 'bob'"):
        users.replaced([alice], users.User("bob", "h", "reader"))
    assert users.replaced([alice], users.User("alice", "h3", "reader")) == [
        users.User("alice", "h3", "reader")
    ]


def test_read_token_is_random_urlsafe_and_long() -> None:
    tokens = {users.new_token() for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert len(token) == 43  # 32 bytes
        assert ":" not in token and set(token) <= set(string.ascii_letters + string.digits + "-_")


def test_token_hash_is_salted_ssha_that_nginx_can_check() -> None:
    token = users.new_token()
    hashed = users.hash_token(token)
    assert users.hash_token(token) != hashed  # salted
    assert users.verify_token(token, hashed)
    assert not users.verify_token(token + "x", hashed)
    # nginx's {SSHA}: base64(sha1(token + salt) + salt)
    raw = base64.b64decode(hashed.removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    assert hashlib.sha1(token.encode() + salt).digest() == digest  # noqa: S324 - the scheme nginx reads
    assert len(salt) == 16
    assert not users.verify_token(token, "$2b$10$" + "a" * 53)


def test_users_file_keeps_token_hashes_and_accepts_users_without(tmp_path: Path) -> None:
    path = tmp_path / "users.yml"
    alice, token = users.with_new_token(users.User("alice", users.hash_password("pw"), "publisher"))
    bob = users.User("bob", users.hash_password("pw"), "reader")
    users.UsersFile(path).save([alice, bob])
    assert users.UsersFile(path).load() == [alice, bob]
    assert token not in path.read_text()
    assert "token_hash" not in yaml.safe_load(path.read_text())["pyhost_users"][1]
    assert users.verify_token(token, users.UsersFile(path).get("alice").token_hash or "")


@pytest.mark.parametrize("token_hash", ["plain-token", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", "{SSHA}short"])
def test_users_file_refuses_a_token_hash_that_is_not_ssha(tmp_path: Path, token_hash: str) -> None:
    path = tmp_path / "users.yml"
    hashed = users.hash_password("pw")
    path.write_text(
        yaml.safe_dump(
            {"pyhost_users": [{"name": "bob", "hash": hashed, "role": "reader", "token_hash": token_hash}]}
        )
    )
    with pytest.raises(PyhostError, match=r"not an \{SSHA\} hash: make a new token with `pyhost token bob`"):
        users.UsersFile(path).load()


def test_token_from_output_reads_the_announced_token() -> None:
    output = f"Added reader bob in users.yml\n{users.TOKEN_ANNOUNCEMENT}abc-DEF_123\nApplied to sandbox.\n"
    assert users.token_from_output(output) == "abc-DEF_123"
    assert users.token_from_output("Added reader bob\n") is None


ROLE_VARS = Path(__file__).resolve().parents[2] / "roles/pypiserver/vars/main.yml"


def test_the_cli_checks_users_by_the_rules_the_server_checks() -> None:
    """A users file pyhost accepts is one the pypiserver role accepts: the same expressions, both places."""
    role = yaml.safe_load(ROLE_VARS.read_text())
    assert users.NAME_RE.pattern == role["__pypiserver_name_regex"]
    assert users.HASH_RE.pattern == role["__pypiserver_hash_regex"]
    assert users.TOKEN_HASH_RE.pattern == role["__pypiserver_token_hash_regex"]


@pytest.mark.parametrize(("cost", "accepted"), [("03", False), ("04", True), ("31", True), ("32", False)])
def test_bcrypt_costs_outside_4_to_31_are_refused(tmp_path: Path, cost: str, accepted: bool) -> None:
    hashed = f"$2b${cost}$" + "a" * 53
    path = tmp_path / "users.yml"
    path.write_text(yaml.safe_dump({"pyhost_users": [{"name": "bob", "hash": hashed, "role": "reader"}]}))
    if accepted:
        assert [user.name for user in users.UsersFile(path).load()] == ["bob"]
    else:
        with pytest.raises(PyhostError, match="pyhost passwd bob"):
            users.UsersFile(path).load()
