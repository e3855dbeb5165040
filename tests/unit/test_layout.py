"""The package's parts import only downwards (README, "How the code is organised"), read from the code itself.

Each module of src/pyhost belongs to a part: its subpackage, or the root for the few modules every part may
use. A part may import only the parts listed for it; the files that also run on a server import nothing of
pyhost at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "pyhost"

ROOT_MODULES = {"__init__", "__main__", "errors", "content"}
# Lowest first. The root is below every part; the cli is the product's top; dev sits beside it.
MAY_IMPORT = {
    "root": {"root"},
    "workspace": {"root", "workspace"},
    "ansible": {"root", "workspace", "ansible"},
    "index": {"root", "workspace", "ansible", "index"},
    "server": {"root", "workspace", "ansible", "index", "server"},
    "sandbox": {"root", "workspace", "ansible", "sandbox"},
    "cli": {"root", "workspace", "ansible", "index", "server", "sandbox", "cli"},
    "dev": {"root", "workspace", "ansible", "index", "server", "sandbox", "dev"},
}
# `python -m pyhost` runs the command line.
EXCEPTIONS = {("pyhost.__main__", "cli")}
# The product reaches the sandbox only through its command group and the docker connection preflight.
SANDBOX_DOORS = {"pyhost.cli.sandbox", "pyhost.cli.options"}
# Copied to the server and run there as single files (roles/*/files links, playbooks/stats.yml): their top
# level imports nothing of pyhost.
STANDALONE = {
    "pyhost.index.indexgen",
    "pyhost.index.distcheck",
    "pyhost.index.browse",
    "pyhost.ansible.files_module",
    "pyhost.server.stats",
}


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def part_of(name: str) -> str | None:
    """The part of module NAME (pyhost.x, pyhost.x.y, ...), None when it sits in no part."""
    pieces = name.split(".")
    if len(pieces) == 1 or pieces[1] in ROOT_MODULES or pieces[1] == "__version__":
        return "root"
    return pieces[1] if pieces[1] in MAY_IMPORT else None


def imports(tree: ast.Module, module: str, *, top_level_only: bool = False) -> list[str]:
    """The pyhost modules (or packages) that a module's import statements name."""
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found += [f"{base}.{alias.name}" for alias in node.names]
    return [name for name in found if name == "pyhost" or name.startswith("pyhost.")]


def modules() -> dict[str, ast.Module]:
    return {module_name(path): ast.parse(path.read_text()) for path in sorted(PACKAGE.rglob("*.py"))}


def layout_problems(found: dict[str, ast.Module]) -> list[str]:
    problems = []
    for module, tree in found.items():
        part = part_of(module)
        if part is None:
            subpackages = sorted(set(MAY_IMPORT) - {"root"})
            problems.append(f"{module} belongs to no part: move it into one of {subpackages}")
            continue
        for target in imports(tree, module):
            # `from pyhost.index import indexgen` names pyhost.index.indexgen; a name that is not a module
            # (from pyhost.cli.main import main) falls back to its module's part, which is the same.
            target_part = part_of(target)
            if target_part is None:
                problems.append(f"{module} imports {target}, which belongs to no part")
            elif target_part not in MAY_IMPORT[part] and (module, target_part) not in EXCEPTIONS:
                problems.append(f"{module} ({part}) imports {target} ({target_part})")
            elif target_part == "sandbox" and part == "cli" and module not in SANDBOX_DOORS:
                problems.append(f"{module} imports {target}: only {sorted(SANDBOX_DOORS)} may")
        if module in STANDALONE:
            problems += [
                f"{module} runs on the server alone but imports {target} at its top level"
                for target in imports(tree, module, top_level_only=True)
            ]
    return problems


def test_every_module_is_in_a_part_and_imports_only_downwards() -> None:
    found = modules()
    assert {"pyhost.cli.main", "pyhost.index.indexgen", "pyhost.sandbox.sandbox"} <= set(found)
    assert layout_problems(found) == []


# One wrong import per rule, put into a module (by name), and the problem it must be reported as.
WRONG_IMPORTS = {
    "pyhost.index.targets": ("from pyhost.cli import options", "pyhost.index.targets (index) imports"),
    "pyhost.server.status": ("from pyhost.sandbox import sandbox", "(server) imports pyhost.sandbox"),
    "pyhost.cli.users": ("from pyhost.sandbox import docker", "only ['pyhost.cli.options'"),
    "pyhost.cli.main": ("from pyhost.dev import demo", "pyhost.cli.main (cli) imports pyhost.dev.demo"),
    "pyhost.workspace.inventory": ("from pyhost.ansible import runner", "(workspace) imports"),
    "pyhost.index.indexgen": ("from pyhost import errors", "runs on the server alone"),
    "pyhost.stray": ("import os", "pyhost.stray belongs to no part"),
}


@pytest.mark.parametrize("module", WRONG_IMPORTS)
def test_a_wrong_import_is_reported(module: str) -> None:
    source, problem = WRONG_IMPORTS[module]
    found = modules()
    found[module] = ast.parse(source)
    assert any(problem in line for line in layout_problems(found)), layout_problems(found)
