"""Fuzzing `cosim solve` with generated netlists, valid and mutated (issue 15, netlist part).

Asserted for every case: exit status 0 or 2 (never a traceback, never the internal-error
status 3); on 2, one ``cosim: error:`` line and no output file; on 0, a JSON file of finite
numbers that agrees with ngspice's own ``.op`` of the same file to 1e-6 (relative to the
largest voltage / current), whenever ngspice solves the deck at all. Where the deck's values
span more than 1e10 (a 1e308 S controlled source beside 1 kΩ resistors) ngspice's own
double-precision answer drifts (at gain 1e12 already 0.7 % off the limit, at 1e20 the sign
wrong), and there the truth is the same circuit in exact rational MNA (tests/exact_mna.py). Valid decks come from
tests/netlist_gen.py (every accepted construct); mutants change characters, tokens and lines
and swap in hostile values (NaN/inf expressions, 1e999, 3,000 unary minuses, 300 nested
parentheses, unclosed blocks, nonlinear elements).

Sizes follow the hypothesis profile (tests/conftest.py): the suite's default runs the profile's
max_examples (100) valid decks and 3x that many mutants; `make fuzz` (HYPOTHESIS_PROFILE=fuzz)
runs 10,000+ each.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from exact_mna import Singular, exact_mna
from hypothesis import given, settings
from hypothesis import strategies as st
from netlist_gen import mutate, random_deck

from cosim.circuit.netlist_read import read_netlist
from cosim.circuit.spice_deck import run_deck
from cosim.cli import main
from cosim.errors import EngineError

pytestmark = [pytest.mark.fuzz, pytest.mark.ngspice]
EXAMPLES = settings().max_examples
# element values spanning more than this many times: ngspice's double-precision LU (pivot
# threshold 1e-13) can lose the 1e-6 the comparison asks, and exact arithmetic is the truth
SPREAD = 1e10


def solve(text: str) -> tuple[int, str, dict | None, Path, Path]:
    """(status, stderr, op or None, deck path, tmp folder) of `cosim solve` on ``text``."""
    tmp = Path(tempfile.mkdtemp(prefix="cosim-fuzz-"))
    deck, out = tmp / "deck.cir", tmp / "op.json"
    deck.write_text(text)
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            rc = main(["solve", str(deck), "-o", str(out), "--engine", "nodal"])
        except SystemExit as exc:
            rc = exc.code
    op = json.loads(out.read_text()) if out.exists() else None
    return rc, err.getvalue(), op, deck, tmp


def check(text: str, *, must_accept: bool) -> None:
    rc, err, op, deck, tmp = solve(text)
    try:
        assert rc in (0, 2), f"exit {rc}: {err}"
        assert "Traceback" not in err
        if rc == 2:
            lines = [ln for ln in err.splitlines() if ln.startswith("cosim:")]
            assert len(lines) == 1 and lines[0].startswith("cosim: error: "), err
            assert op is None, "output written on error"
            assert not must_accept, f"valid deck refused: {err}"
            return
        values = [*op["nodes"].values(), *op["branches"].values()]
        assert all(math.isfinite(v) for v in values)
        try:
            nodes, branches = run_deck(deck, text)
        except EngineError:
            assert not must_accept, "ngspice failed on a valid deck"
            return  # ngspice refuses what cosim read: not a wrong answer
        bad = disagreements(op, nodes, branches)
        if bad and value_spread(text, deck) > SPREAD:
            # ngspice's double-precision LU is not the truth here: compare with exact arithmetic
            exact = exact_op(text, deck)
            if exact is not None:  # the values ngspice reports, exactly
                bad = disagreements(op, {n: exact[0][n] for n in nodes}, {n: exact[1][n] for n in branches})
        assert not bad, bad
    finally:
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()


def disagreements(op: dict, nodes: dict, branches: dict) -> list:
    """(name, cosim, truth) of every value of ``op`` off the truth ``nodes``/``branches``.

    1e-6 of the deck's largest value, and never below 1 fV / 1 fA: ngspice's own absolute
    tolerances (vntol 1 µV, abstol 1 pA) and LU rounding put noise of that order on values that
    are all tiny (a mutated deck of 1e-20 A currents differed by 4e-20 A).
    """
    bad = []
    for got, truth in ((op["nodes"], nodes), (op["branches"], branches)):
        scale = max([abs(v) for v in truth.values()] + [1e-9])
        for name, v in truth.items():
            if name not in got or not abs(got[name] - v) <= 1e-6 * scale:
                bad.append((name, got.get(name), v))
    return bad


def value_spread(text: str, deck: Path) -> float:
    """Largest over smallest magnitude of the deck's conductances and control gains."""
    c = read_netlist(deck, text=text)
    vals = [c.res_g]
    if c.controls is not None:
        vals += [getattr(c.controls, f) for f in c.controls.__dataclass_fields__ if f.endswith("coef")]
    mag = np.abs(np.concatenate(vals))
    mag = mag[(mag > 0) & np.isfinite(mag)]
    with np.errstate(over="ignore"):  # 1e308 / 1e-5 is inf, which is "above" as it should be
        return float(mag.max() / mag.min()) if mag.size else 1.0


def exact_op(text: str, deck: Path) -> tuple[dict, dict] | None:
    """The deck's operating point in exact arithmetic (tests/exact_mna.py), named as ngspice names
    it; None when the exact system is singular (a floating part: no truth to compare with)."""
    c = read_netlist(deck, text=text)
    try:
        pot, cur = exact_mna(c)
    except Singular:
        return None
    nodes = {name: float(v) for name, v in zip(c.node_names[1:], pot)}
    return nodes, {name: float(i) for name, i in zip(c.vsrc_names, cur)}


@settings(max_examples=EXAMPLES)
@given(seed=st.integers(0, 2**31 - 1))
def test_valid_decks_are_solved_like_ngspice(seed):
    check(random_deck(seed), must_accept=True)


@settings(max_examples=3 * EXAMPLES)
@given(seed=st.integers(0, 2**31 - 1), mutation=st.integers(0, 2**31 - 1))
def test_mutated_decks_are_answered_right_or_refused_in_one_line(seed, mutation):
    check(mutate(random_deck(seed, n_nodes=4), np.random.default_rng(mutation)), must_accept=False)
