"""Ready-to-paste client configuration for pip, Poetry, uv and twine.

Installing (pip, uv, a Poetry source) uses the user's read token, which the server checks in microseconds;
publishing (twine, a Poetry repository, uv publish) uses the password, which pypiserver checks. pyhost keeps
only hashes, so it knows neither: the snippets carry placeholders, `<READ-TOKEN>` and `<PASSWORD>`, unless the
user types the password (it is then checked against the stored hash before it is printed). A user without a
read token (made before tokens existed) installs with the password too.

Each tool gets this index as its one index, never an extra one: the server answers every name, the private
projects first and every other name from its upstream index (pyhost_upstream_url), so no same-named public
project can win over a private one. With the upstream off, the snippets say that public packages are not
there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyhost.errors import PyhostError
from pyhost.workspace.users import User

TOOLS = ("pip", "poetry", "uv", "twine")
PLACEHOLDER = "<PASSWORD>"
TOKEN_PLACEHOLDER = "<READ-TOKEN>"  # noqa: S105 - a placeholder, not a secret


@dataclass(frozen=True)
class Index:
    name: str  # a short name for the index in the tools' configuration (the host's name)
    domain: str
    user: User
    password: str | None = None
    ca_file: str | None = None
    upstream: str = "https://pypi.org/simple/"  # the server's pyhost_upstream_url; "" when off

    @property
    def base_url(self) -> str:
        return f"https://{self.domain}/"

    @property
    def simple_url(self) -> str:
        return f"https://{self.domain}/simple/"

    @property
    def secret(self) -> str:
        """What publishing tools send: the password."""
        return self.password if self.password is not None else PLACEHOLDER

    @property
    def read_secret(self) -> str:
        """What installing tools send: the read token, or the password for a user without one."""
        return TOKEN_PLACEHOLDER if self.user.token_hash is not None else self.secret

    @property
    def upload_name(self) -> str:
        """Poetry keys credentials by name: publishing gets its own, so it can send the password."""
        return f"{self.name}-upload"

    @property
    def publisher(self) -> bool:
        return self.user.role == "publisher"


def index_name(host: str) -> str:
    """A source/repository name that pip, Poetry, uv and twine all accept."""
    return re.sub(r"[^a-z0-9]+", "-", host.lower()).strip("-") or "pyhost"


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def _shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def _one_index(index: Index) -> str:
    if index.upstream:
        return (
            f"# The one index: the private projects, and every other name from {index.upstream} through the "
            "server.\n# No extra-index-url: with two indexes a same-named public package can win."
        )
    return (
        "# The one index: the private projects only (the server's upstream index is off), so public\n"
        "# dependencies are not found here. No extra-index-url: with two, a same-named public one can win."
    )


def pip(index: Index) -> str:
    auth = f"{index.user.name}:{index.read_secret}@"
    url = f"https://{auth}{index.domain}/simple/"
    lines = [
        "# pip: ~/.config/pip/pip.conf (or a virtualenv's pip.conf)",
        _one_index(index),
        "[global]",
        f"index-url = {url}",
    ]
    if index.ca_file:
        lines.append(f"cert = {index.ca_file}")
    return "\n".join(lines)


def poetry(index: Index) -> str:
    lines = [
        "# Poetry: in your project. A primary source replaces PyPI for every package.",
        _one_index(index),
        f"poetry source add --priority=primary {index.name} {index.simple_url}",
        f"poetry config http-basic.{index.name} {index.user.name} {_shell_quote(index.read_secret)}",
        "poetry add YOUR-PACKAGE",
    ]
    if index.ca_file:
        lines.append(f"poetry config certificates.{index.name}.cert {index.ca_file}")
    if index.publisher:
        upload = index.upload_name
        lines += [
            "# Publishing (with the password, under a repository name of its own):",
            f"poetry config repositories.{upload} {index.base_url}",
            f"poetry config http-basic.{upload} {index.user.name} {_shell_quote(index.secret)}",
        ]
        if index.ca_file:
            lines.append(f"poetry config certificates.{upload}.cert {index.ca_file}")
        lines.append(f"poetry publish --build --repository {upload}")
    return "\n".join(lines)


def uv(index: Index) -> str:
    env = _env_name(index.name)
    lines = [
        "# uv: pyproject.toml. The default index replaces PyPI for every package.",
        _one_index(index),
        "[[tool.uv.index]]",
        f'name = "{index.name}"',
        f'url = "{index.simple_url}"',
    ]
    if index.publisher:
        lines.append(f'publish-url = "{index.base_url}"')
    lines += [
        "default = true",
        "",
        "# and in your shell:",
        f"export UV_INDEX_{env}_USERNAME={index.user.name}",
        f"export UV_INDEX_{env}_PASSWORD={_shell_quote(index.read_secret)}",
    ]
    if index.ca_file:
        lines.append(f"export SSL_CERT_FILE={index.ca_file}")
    if index.publisher:
        lines += [
            "# Publishing, with the password:",
            f"UV_PUBLISH_USERNAME={index.user.name} UV_PUBLISH_PASSWORD={_shell_quote(index.secret)} \\",
            f"  uv publish --index {index.name}",
        ]
    return "\n".join(lines)


def twine(index: Index) -> str:
    if not index.publisher:
        raise PyhostError(
            f"user {index.user.name!r} is a reader and cannot upload: twine needs a publisher "
            f"(`pyhost add-user NAME --role publisher`)"
        )
    lines = [
        "# twine: ~/.pypirc",
        "[distutils]",
        "index-servers =",
        f"    {index.name}",
        "",
        f"[{index.name}]",
        f"repository = {index.base_url}",
        f"username = {index.user.name}",
        f"password = {index.secret}",
    ]
    if index.ca_file:
        lines.append(f"ca_cert = {index.ca_file}")
    lines += ["", f"# Upload: twine upload --repository {index.name} dist/*"]
    return "\n".join(lines)


RENDERERS = {"pip": pip, "poetry": poetry, "uv": uv, "twine": twine}


def render(index: Index, tools: tuple[str, ...] = TOOLS) -> str:
    """The snippets for TOOLS, blank-line separated; twine only for publishers when all tools are asked."""
    chosen = [t for t in tools if t != "twine" or index.publisher or len(tools) == 1]
    return "\n\n".join(RENDERERS[tool](index) for tool in chosen) + "\n"
