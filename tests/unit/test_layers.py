"""The import contract of pyproject.toml ([tool.importlinter]): layers that import one way."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from ticklake.config import PROJECT_ROOT

CONTRACTS = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def test_the_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_every_module_is_in_a_layer():
    """A module outside every layer would escape the contract; packages that import nothing are no code."""
    (layers,) = [c for c in CONTRACTS["contracts"] if c["type"] == "layers"]
    listed = [name.strip() for layer in layers["layers"] for name in layer.replace("|", ":").split(":")]
    assert len(listed) == len(set(listed)), "a module is in two layers"
    graph = grimp.build_graph(*CONTRACTS["root_packages"])
    outside = [module for module in sorted(graph.modules)
               if not any(module == name or module.startswith(name + ".") for name in listed)
               and graph.find_modules_directly_imported_by(module)]
    assert not outside, f"modules in no layer of pyproject.toml: {outside}"


def test_the_producer_process_loads_neither_spark_nor_the_lake():
    """What a producer process imports (schemas.derive loads pyspark and pyiceberg only when called)."""
    probe = ("import sys, producers.producer, producers.replay; "
             "print(' '.join(m for m in ('pyspark', 'pyiceberg', 'pandas', 'ticklake.lake') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
