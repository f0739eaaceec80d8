"""The layout holds: libraries without Django, arrows pointing one way, files one can read."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "medserver_site", "lifecycle", "api", "exports", "reviews", "chat", "audit", "inference",
    "imaging",
)  # fmt: skip
LONG = 350  # lines: past this, a module says in its docstring why it is long


def test_the_libraries_import_without_django_configured():
    """`import inference, imaging` (every module) in a Python where Django is not set up."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import inference, imaging\n"
        "for package in (inference, imaging):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(module.name)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        f"    {set(PACKAGES) - {'inference', 'imaging'} | {'django', 'channels'}!r})\n"
        "print(loaded)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_import_contracts_hold():
    """pyproject.toml's [tool.importlinter]: libraries import no app, the site sits over the
    apps over the libraries, and no package's modules import each other in a cycle."""
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint)], cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


def test_a_long_module_says_why():
    too_long = []
    for package in PACKAGES:
        for path in sorted((PROJECT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            if source.count("\n") <= LONG:
                continue
            docstring = ast.get_docstring(ast.parse(source)) or ""
            if "long" not in docstring:
                too_long.append(str(path.relative_to(PROJECT)))
    assert too_long == []


def test_no_module_imports_itself_back_through_others():
    """No import cycle between any two of the project's modules (package __init__
    files included), not only between the modules of one package."""
    import grimp

    graph = grimp.build_graph(*PACKAGES)
    edges = {
        module: {m for m in graph.find_modules_directly_imported_by(module) if m in graph.modules}
        for module in graph.modules
    }
    cycles = []
    state: dict[str, int] = {}  # 1: on the path being walked, 2: done

    def walk(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(edges[module]):
            if state.get(imported) == 1:
                cycles.append(path[path.index(imported) :] + [imported])
            elif imported not in state:
                walk(imported, [*path, imported])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            walk(module, [module])
    assert cycles == []
