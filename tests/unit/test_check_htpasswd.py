"""check_htpasswd.py, the check every password and token file passes before the role puts it in place.

The role's own Jinja checks refuse bad users before this script runs, so on a host only its success path runs;
here each way it refuses a file runs too. It is loaded by path with the app's locked passlib (libpass).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import bcrypt
import pytest

from tests.unit.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[2] / "roles/pypiserver/files/app/check_htpasswd.py"


check = load_script(SCRIPT, "pyhost_check_htpasswd")


def bcrypt_line(user: str) -> str:
    return f"{user}:{bcrypt.hashpw(b'secret', bcrypt.gensalt(4)).decode()}"


def ssha(token: bytes = b"token", salt: bytes = b"saltsalt") -> str:
    return "{SSHA}" + base64.b64encode(hashlib.sha1(token + salt).digest() + salt).decode()  # noqa: S324


def run(tmp_path: Path, content: str | bytes, *options: str) -> int:
    path = tmp_path / "file"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return check.main([*options, str(path)])


def test_bcrypt_passwords_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(tmp_path, bcrypt_line("alice") + "\n" + bcrypt_line("bob") + "\n")
    assert code == 0
    assert "2 user(s), all bcrypt" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "not a bcrypt hash for alice"),
        ("alice:$apr1$salt$hash\n" + "bob:plain\n", "not a bcrypt hash for alice, bob"),
    ],
)
def test_a_password_file_with_another_hash_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, says: str
) -> None:
    code = run(tmp_path, bcrypt_line("carol") + "\n" + content)
    assert code == 1
    err = capsys.readouterr().err
    assert says in err
    assert "$2" not in err  # never a hash


def test_a_missing_password_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check.main([str(tmp_path / "absent")]) == 1
    assert "cannot be read as an htpasswd file" in capsys.readouterr().err


def test_a_passlib_that_cannot_verify_bcrypt_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # passlib 1.7.4 with bcrypt >= 4.1 is such a pair: its hashes look right but never verify.
    monkeypatch.setattr(check.bcrypt, "verify", lambda secret, hashed: False)
    code = run(tmp_path, bcrypt_line("alice") + "\n")
    assert code == 1
    assert "cannot verify bcrypt hashes" in capsys.readouterr().err


def test_read_tokens_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(tmp_path, f"# comment\n\nalice:{ssha()}\nbob:{ssha(b'other')}\n", "--tokens")
    assert code == 0
    assert "2 read token(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (f"alice:{ssha()}\nalice:{ssha(b'again')}\n", "line 3"),
        (f"Alice:{ssha()}\n", "line 2"),
        (f"al ice:{ssha()}\n", "line 2"),
        ("alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "for alice"),
        ("alice:{SSHA}not base64!\n", "for alice"),
        ("alice:{SSHA}" + base64.b64encode(b"x" * 23).decode() + "\n", "for alice"),
        ("alice\n", "for alice"),
    ],
)
def test_a_bad_token_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, says: str
) -> None:
    code = run(tmp_path, f"zed:{ssha()}\n" + content, "--tokens")
    assert code == 1
    assert says in capsys.readouterr().err


def test_an_unreadable_token_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(tmp_path, b"alice:\xff\xfe\n", "--tokens")
    assert code == 1
    assert "cannot be read" in capsys.readouterr().err
    assert check.main(["--tokens", str(tmp_path / "absent")]) == 1


@pytest.mark.parametrize("argv", [[], ["--tokens"], ["-x"], ["a", "b"], ["--tokens", "a", "b"]])
def test_wrong_arguments_print_the_usage(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert check.main(argv) == 2
    assert "usage: check_htpasswd.py" in capsys.readouterr().err
