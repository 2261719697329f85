"""The layout of docs/architecture.md holds: the import rules (lint-imports, over the contracts
in pyproject.toml), modules of at most 500 lines, Redis spoken only by the store layer, one
builder per Lua script, and benchmarks that import nothing from the tests."""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = ROOT / "limiter"
STORE = LIBRARY / "store"
MAX_LINES = 500


def modules(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        yield from sorted(folder.rglob("*.py"))


def imported(path: Path) -> set[str]:
    """Every module a file imports (absolute names; relative imports are not used here)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


def test_the_import_rules_hold() -> None:
    """Layers, integrations through the public engine only, no cycles (pyproject.toml)."""
    command = shutil.which("lint-imports")
    assert command is not None, "lint-imports is missing: pip install -e '.[test]'"
    done = subprocess.run(
        [command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize("folder", ["limiter", "examples"])
def test_no_module_is_longer_than_500_lines(folder: str) -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in modules(ROOT / folder)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_only_the_store_layer_speaks_redis() -> None:
    """No module outside limiter/store imports a Redis client or builds a raw round trip."""
    offenders = []
    for path in modules(LIBRARY, ROOT / "examples"):
        if STORE in path.parents:
            continue
        clients = {name for name in imported(path) if name.split(".")[0] in ("redis", "fakeredis")}
        tree = ast.parse(path.read_text(encoding="utf-8"))
        built = {
            node.func.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("ScriptCall", "Pipeline")
        }
        if clients or built:
            offenders.append(f"{path.relative_to(ROOT)}: {sorted(clients | built)}")
    assert not offenders, offenders


def test_every_script_has_one_builder_and_every_builder_a_script() -> None:
    scripts = {path.stem for path in (STORE / "lua").glob("*.lua")} - {"lib"}
    tree = ast.parse((STORE / "scripts.py").read_text(encoding="utf-8"))
    built = [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "ScriptCall"
        and isinstance(node.args[0], ast.Constant)
    ]
    assert sorted(built) == sorted(scripts)
    builders = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert scripts <= builders, f"a builder per script, named as it: {scripts - builders}"


def test_benchmarks_import_nothing_from_the_tests() -> None:
    found = {
        str(path.relative_to(ROOT)): sorted(n for n in imported(path) if n.split(".")[0] == "tests")
        for path in modules(ROOT / "bench")
    }
    assert not {path: names for path, names in found.items() if names}
