"""Layering (DESIGN.md §1), proven in fresh interpreters by reading ``sys.modules``.

Each check imports a layer *and every module under it* in a new Python process, then lists the
cosim packages and heavy third-party modules that got loaded. A module importing a forbidden
layer lazily (inside a function) is not caught here; the review rules cover that.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import cosim

ROOT = Path(cosim.__file__).parent
LAYERS = ["devices", "circuit", "array", "train", "study", "cli"]

# For each layer: the cosim layers it must never load (DESIGN.md §1).
FORBIDDEN = {
    "devices": {"circuit", "array", "train", "study", "cli"},
    "circuit": {"devices", "array", "train", "study", "cli"},
    "array": {"train", "study", "cli"},
    "train": {"study", "cli"},
    "study": {"cli"},
}

PROBE = """
import importlib, json, pkgutil, sys
name = sys.argv[1]
pkg = importlib.import_module(name)
mods = [name]
if hasattr(pkg, "__path__"):
    for info in pkgutil.walk_packages(pkg.__path__, name + "."):
        importlib.import_module(info.name)
        mods.append(info.name)
print(json.dumps({"imported": mods, "loaded": sorted(sys.modules)}))
"""


def probe(module: str) -> tuple[list[str], set[str]]:
    """(modules imported on purpose, every module loaded) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True, text=True,
                         timeout=120, cwd=ROOT.parent)
    assert out.returncode == 0, f"importing {module} failed:\n{out.stderr}"
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return data["imported"], set(data["loaded"])


def loaded_layers(loaded: set[str]) -> set[str]:
    return {name.split(".")[1] for name in loaded if name.startswith("cosim.") and name.split(".")[1] in LAYERS}


def has_modules(layer: str) -> bool:
    return any(True for _ in pkgutil.iter_modules([str(ROOT / layer)]))


@pytest.mark.parametrize("layer", ["devices", "circuit"])
def test_bottom_layers_stand_alone(layer):
    imported, loaded = probe(f"cosim.{layer}")
    assert f"cosim.{layer}" in imported
    bad = loaded_layers(loaded) & FORBIDDEN[layer]
    assert not bad, f"cosim.{layer} pulls in cosim.{', cosim.'.join(sorted(bad))}"


def test_circuit_probe_sees_its_modules():
    # Guard against a vacuous pass: the walk really imports the circuit modules.
    imported, loaded = probe("cosim.circuit")
    for mod in ("cosim.circuit.spec", "cosim.circuit.mna", "cosim.circuit.engines.nodal",
                "cosim.circuit.topology", "cosim.circuit.sneak"):
        assert mod in imported and mod in loaded


@pytest.mark.parametrize("layer", ["array", "train", "study"])
def test_upper_layers_import_only_downwards(layer):
    if not has_modules(layer):
        pytest.skip(f"cosim.{layer} has no modules yet (only its package __init__)")
    _, loaded = probe(f"cosim.{layer}")
    bad = loaded_layers(loaded) & FORBIDDEN[layer]
    assert not bad, f"cosim.{layer} pulls in cosim.{', cosim.'.join(sorted(bad))}"


HEAVY = ["scipy", "matplotlib", "PySpice", "dask", "distributed", "networkx", "sklearn", "verilogae"]


def test_import_cosim_is_light():
    imported_alone = subprocess.run(
        [sys.executable, "-c", "import cosim, json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, timeout=60, cwd=ROOT.parent)
    assert imported_alone.returncode == 0, imported_alone.stderr
    mods = set(json.loads(imported_alone.stdout))
    assert "cosim" in mods
    sub = sorted(m for m in mods if m.startswith("cosim.") and m != "cosim.errors")
    assert not sub, f"import cosim loads {sub}"
    heavy = sorted(h for h in HEAVY if h in mods)
    assert not heavy, f"import cosim loads {heavy}"
