"""The dense MNA path (small circuits, no scipy) equals the sparse direct path it replaces.

Truth: the scipy.sparse assembly + SuperLU path, forced with ``mna.DENSE_MAX = 0`` on the same
decks (random linear decks with subcircuits, controlled sources and negative resistors; the
repo's netlists). Both are exact direct solves of one assembly, so they agree to rounding:
node voltages to 1e-12 relative. A grounded source's current is a KCL sum of wire currents up to
~1e5x larger than it (1 ohm wires, uA cells), so it carries ~1e-16 x 1e5 of either solve's
rounding: branch currents to 1e-10 relative (measured 2.5e-12 on tiny_2x3.cir).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cosim.circuit import mna
from cosim.cli import main
from tests.netlist_gen import random_deck

NETLISTS = sorted((Path(__file__).parent.parent / "netlists").glob("*.cir"))


def run(tmp_path, capsys, monkeypatch, text: str, dense_max: int, *extra):
    monkeypatch.setattr(mna, "DENSE_MAX", dense_max)
    deck = tmp_path / "d.cir"
    deck.write_text(text)
    out = tmp_path / f"op{dense_max}.json"
    try:
        rc = main(["solve", str(deck), "-o", str(out), *extra])
    except SystemExit as exc:
        rc = exc.code
    _, err = capsys.readouterr()
    op = json.loads(out.read_text()) if out.exists() else None
    return rc, err, op


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for part in ("nodes", "branches"):
        assert a[part].keys() == b[part].keys()
        scale = max([abs(v) for v in b[part].values()] + [1e-300])
        for k, v in b[part].items():
            tol = 1e-12 if part == "nodes" else 1e-10
            assert a[part][k] == pytest.approx(v, rel=tol, abs=tol * scale), (part, k)


def both(tmp_path, capsys, monkeypatch, text: str):
    dense = run(tmp_path, capsys, monkeypatch, text, 10**9, "--engine", "nodal")
    sparse = run(tmp_path, capsys, monkeypatch, text, 0, "--engine", "nodal")
    assert dense[0] == sparse[0], (dense[1], sparse[1])
    assert dense[1] == sparse[1]  # same one-line refusal, or none
    if sparse[2] is not None:
        assert_same(dense[2], sparse[2])
    return sparse


@pytest.mark.parametrize("seed", range(25))
def test_random_decks_dense_equals_sparse(tmp_path, capsys, monkeypatch, seed):
    rc, err, op = both(tmp_path, capsys, monkeypatch, random_deck(seed))
    assert rc == 0, err


@pytest.mark.parametrize("deck", NETLISTS, ids=lambda p: p.name)
def test_repo_netlists_dense_equals_sparse(tmp_path, capsys, monkeypatch, deck):
    rc, err, _ = both(tmp_path, capsys, monkeypatch, deck.read_text())
    assert rc in (0, 2), err  # solved or refused in one line, never an internal error


CONTROLLED = """controlled sources: a non-symmetric MNA matrix
v1 a 0 2
r1 a b 1k
r2 b 0 3k
e1 c 0 b 0 -2.5
r3 c d 2k
r4 d 0 -7k
vs d e 0
re e 0 4k
f1 0 b vs 0.3
g1 0 d a b 1m
h1 h 0 vs 500
rh h 0 1k
i1 0 b 1m
rs1 d x 0
rs2 x 0 1e-12
.end
"""


def test_controlled_sources_and_shorts_dense_equals_sparse(tmp_path, capsys, monkeypatch):
    rc, err, op = both(tmp_path, capsys, monkeypatch, CONTROLLED)
    assert rc == 0, err
    assert op["nodes"]["c"] == pytest.approx(-2.5 * op["nodes"]["b"], rel=1e-12)


@pytest.mark.parametrize("text", [
    "t\nv1 a 0 1\nr1 a 0 1k\ne1 b 0 b 0 1\nr2 b 0 1k\n.end\n",  # v_b − v_b = 0: exactly singular
    "t\nv1 a 0 1\nr1 a 0 1k\nr2 b c 1k\ni1 b c 1m\n.end\n",  # a floating island
    "t\nv1 a 0 1\nv2 a 0 2\nr1 a 0 1k\n.end\n",  # a source loop
], ids=["singular", "floating", "loop"])
def test_singular_circuits_are_refused_alike(tmp_path, capsys, monkeypatch, text):
    rc, err, op = both(tmp_path, capsys, monkeypatch, text)
    assert rc == 2 and op is None and len(err.strip().splitlines()) == 1, err


def test_components_match_scipy():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(1, 40))
        k = int(rng.integers(0, 2 * n))
        a, b = rng.integers(0, n, k), rng.integers(0, n, k)
        count, labels = mna.components(n, a, b)
        ref = connected_components(coo_matrix((np.ones(k), (a, b)), shape=(n, n)), directed=False)
        assert count == ref[0] and (labels == ref[1]).all()


def test_small_deck_does_not_import_scipy(tmp_path):
    """Latency (issue 13): scipy's import costs more than the whole solve of a small deck."""
    (tmp_path / "d.cir").write_text("t\nv1 a 0 1\n" + "".join(f"r{k} a n{k} 1k\nr{k}b n{k} 0 2k\n" for k in range(4))
                                   + "i1 0 a 1m\ne1 e 0 a 0 2\nre e 0 1k\n.end\n")
    code = ("import sys; from cosim.cli import main; rc = main(['solve', sys.argv[1]]); "
            "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] == 'scipy')); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d.cir")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout
