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
