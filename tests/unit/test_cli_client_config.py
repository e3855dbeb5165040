"""`pyhost client-config`: settings for pip, Poetry, uv and twine, never a password it does not have."""

from __future__ import annotations

import configparser
import getpass
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from pyhost.sandbox import sandbox
from pyhost.workspace.users import User, UsersFile, hash_password

from .conftest import snapshot


@pytest.fixture
def with_users(invoke: Callable[..., Result], workspace: Path) -> Path:
    for name, role in (("alice", "publisher"), ("bob", "reader")):
        result = invoke(
            "add-user",
            name,
            "--role",
            role,
            "--password-stdin",
            "--no-apply",
            "-i",
            str(workspace),
            input="pw\n",
        )
        assert result.exit_code == 0
    return workspace


def config(invoke: Callable[..., Result], workspace: Path, user: str, *options: str) -> Result:
    """`pyhost client-config --host theviji --user USER OPTIONS`."""
    return invoke("client-config", "--host", "theviji", "--user", user, *options, "-i", str(workspace))


def section(output: str, title: str) -> str:
    """One tool's snippet: from its '# tool:' comment to the next blank-line-separated tool."""
    blocks = output.split("\n\n# ")
    return next(b for b in blocks if b.lstrip("# ").startswith(title))


def test_publisher_gets_all_four_tools(invoke: Callable[..., Result], with_users: Path) -> None:
    result = invoke("client-config", "--host", "theviji", "--user", "alice", "-i", str(with_users))
    assert result.exit_code == 0, result.output
    out = result.stdout
    pip_conf = configparser.ConfigParser()
    pip_conf.read_string(section(out, "pip"))
    # Installing uses the read token, publishing the password.
    assert pip_conf["global"]["index-url"] == "https://alice:<READ-TOKEN>@pypi.example.com/simple/"
    poetry = section(out, "Poetry")
    assert "poetry source add --priority=primary theviji https://pypi.example.com/simple/" in poetry
    assert "poetry add YOUR-PACKAGE" in poetry
    assert "poetry config http-basic.theviji alice '<READ-TOKEN>'" in poetry
    assert "poetry config repositories.theviji-upload https://pypi.example.com/" in poetry
    assert "poetry config http-basic.theviji-upload alice '<PASSWORD>'" in poetry
    assert "poetry publish --build --repository theviji-upload" in poetry
    uv_toml = tomllib.loads(section(out, "uv").split("# and in your shell:")[0].split("\n", 1)[1])
    assert uv_toml["tool"]["uv"]["index"] == [
        {
            "name": "theviji",
            "url": "https://pypi.example.com/simple/",
            "publish-url": "https://pypi.example.com/",
            "default": True,
        }
    ]
    # One index each, never an extra one, and nothing claims the index asks PyPI by itself.
    assert "extra-index-url" not in out.replace("No extra-index-url", "")
    assert "explicit" not in out
    one_index = "The one index: the private projects, and every other name from https://pypi.org/simple/"
    assert out.count(one_index) == 3
    assert "export UV_INDEX_THEVIJI_USERNAME=alice" in out
    assert "export UV_INDEX_THEVIJI_PASSWORD='<READ-TOKEN>'" in out
    assert "UV_PUBLISH_USERNAME=alice UV_PUBLISH_PASSWORD='<PASSWORD>'" in out
    pypirc = configparser.ConfigParser()
    pypirc.read_string(section(out, "twine").split("\n", 1)[1])
    assert pypirc["theviji"]["repository"] == "https://pypi.example.com/"
    assert pypirc["theviji"]["username"] == "alice"
    assert pypirc["theviji"]["password"] == "<PASSWORD>"
    assert "$2b$" not in out
    assert "{SSHA}" not in out


def test_the_upstream_named_is_the_servers_and_off_says_so(
    invoke: Callable[..., Result], with_users: Path
) -> None:
    host_vars = with_users / "host_vars" / "theviji.yml"
    original = host_vars.read_text()
    host_vars.write_text(original + 'pyhost_upstream_url: "https://mirror.example/simple/"\n')
    out = invoke("client-config", "--host", "theviji", "--user", "bob", "-i", str(with_users)).stdout
    assert out.count("every other name from https://mirror.example/simple/ through the server") == 3
    host_vars.write_text(original + 'pyhost_upstream_url: ""\n')
    out = invoke("client-config", "--host", "theviji", "--user", "bob", "-i", str(with_users)).stdout
    assert out.count("the private projects only (the server's upstream index is off)") == 3
    assert "every other name" not in out


def test_reader_gets_no_upload_settings(invoke: Callable[..., Result], with_users: Path) -> None:
    out = invoke("client-config", "--host", "theviji", "--user", "bob", "-i", str(with_users)).stdout
    assert "twine" not in out
    assert "publish-url" not in out
    assert "repositories." not in out
    assert "<PASSWORD>" not in out
    assert "https://bob:<READ-TOKEN>@pypi.example.com/simple/" in out
    result = invoke(
        "client-config", "--host", "theviji", "--user", "bob", "--tool", "twine", "-i", str(with_users)
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("pyhost: error: user 'bob' is a reader and cannot upload")


def test_one_tool(invoke: Callable[..., Result], with_users: Path) -> None:
    out = invoke(
        "client-config", "--host", "theviji", "--user", "alice", "--tool", "uv", "-i", str(with_users)
    ).stdout
    assert "[[tool.uv.index]]" in out
    assert "pip.conf" not in out
    assert "poetry" not in out


def test_unknown_user(invoke: Callable[..., Result], with_users: Path) -> None:
    result = invoke("client-config", "--host", "theviji", "--user", "carol", "-i", str(with_users))
    assert result.exit_code == 1
    assert "no user 'carol'" in result.stderr


def test_ask_password_prints_it_only_when_it_matches(
    invoke: Callable[..., Result], with_users: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "pw")
    out = config(invoke, with_users, "alice", "--tool", "pip", "--ask-password").stdout
    # The password goes where it is sent: publishing. Installing keeps the token's placeholder.
    assert "index-url = https://alice:<READ-TOKEN>@pypi.example.com/simple/" in out
    twine = config(invoke, with_users, "alice", "--tool", "twine", "--ask-password").stdout
    assert "password = pw" in twine
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "wrong-guess")
    result = invoke(
        "client-config", "--host", "theviji", "--user", "alice", "--ask-password", "-i", str(with_users)
    )
    assert result.exit_code == 1
    assert "wrong-guess" not in result.output
    assert result.stderr.splitlines() == ["pyhost: error: that is not the password of alice: nothing printed"]


def test_sandbox_host_gets_the_ca_file(invoke: Callable[..., Result], with_users: Path) -> None:
    prepared = sandbox.Prepared(host_image="img", pebble_image="pebble", mirrors=None)
    (with_users / "sandbox.yml").write_text(sandbox.inventory_text(sandbox.host_vars(prepared, "172.30.0.3")))
    (with_users / ".sandbox").mkdir()
    ca = with_users / ".sandbox" / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    before = snapshot(with_users)
    out = invoke("client-config", "--host", "sandbox", "--user", "alice", "-i", str(with_users)).stdout
    assert f"cert = {ca}" in out
    assert f"poetry config certificates.sandbox.cert {ca}" in out
    assert f"export SSL_CERT_FILE={ca}" in out
    assert f"ca_cert = {ca}" in out
    assert f"poetry config certificates.sandbox-upload.cert {ca}" in out
    assert "https://alice:<READ-TOKEN>@pypi.pyhost.test/simple/" in out
    assert snapshot(with_users) == before


def test_any_host_gets_the_ca_file_its_inventory_names(
    invoke: Callable[..., Result], with_users: Path
) -> None:
    """pyhost_ca_file is an ordinary host variable (the sandbox sets it, so may anyone): relative to the
    workspace, and left out when the file is not there."""
    with (with_users / "host_vars" / "theviji.yml").open("a") as handle:
        handle.write("pyhost_ca_file: certs/our-ca.pem\n")
    args = ("client-config", "--host", "theviji", "--user", "alice", "--tool", "pip", "-i", str(with_users))
    assert "cert =" not in invoke(*args).stdout
    ca = with_users / "certs" / "our-ca.pem"
    ca.parent.mkdir()
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    assert f"cert = {ca}" in invoke(*args).stdout


def test_user_without_a_token_installs_with_the_password(
    invoke: Callable[..., Result], workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A users file from before read tokens: every tool gets the password."""
    users_file = UsersFile(workspace / "group_vars" / "index_servers" / "users.yml")
    users_file.save([User("carol", hash_password("pw"), "publisher")])
    out = invoke("client-config", "--host", "theviji", "--user", "carol", "-i", str(workspace)).stdout
    assert "<READ-TOKEN>" not in out
    assert "https://carol:<PASSWORD>@pypi.example.com/simple/" in out
    assert "poetry config http-basic.theviji carol '<PASSWORD>'" in out
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "pw")
    out = config(invoke, workspace, "carol", "--tool", "pip", "--ask-password").stdout
    assert "index-url = https://carol:pw@pypi.example.com/simple/" in out
