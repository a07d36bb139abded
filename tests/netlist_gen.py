"""Random linear SPICE decks built from every construct the reader accepts, and their mutants.

Shared by the property test (tests/test_netlist_properties.py) and the fuzz tests
(tests/test_fuzz_netlist.py). A deck is solvable by construction: a spanning tree of resistors
reaches ground from every node; voltage sources sit on distinct nodes; inductors are in series
with a resistor; negative resistors are in parallel with a smaller positive one (net positive);
E and H drive leaf nodes (no feedback loop whose gain could make the matrix singular); G and F
are weak against the network's conductances.
"""

from __future__ import annotations

import numpy as np

SUFFIX = [("", 1.0), ("k", 1e3), ("meg", 1e6), ("m", 1e-3), ("u", 1e-6)]


def _num(rng, x: float) -> str:
    """``x`` written in one of several SPICE forms (suffix, exponent, plain)."""
    form = int(rng.integers(3))
    if form == 0:
        return f"{x:.12g}"
    if form == 1:
        return f"{x:.12e}"
    suffix, scale = SUFFIX[int(rng.integers(len(SUFFIX)))]
    return f"{x / scale:.12g}{suffix}"


def random_deck(seed: int, n_nodes: int | None = None) -> str:
    """A solvable linear deck (see the module docstring); same seed, same text."""
    rng = np.random.default_rng(seed)
    n = int(n_nodes or rng.integers(3, 14))
    nodes = ["0"] + [f"n{k}" if k % 4 else f"N_{k}" for k in range(1, n)]
    out = [f"random deck {seed}", ".param rbase=1k gsel=2 half={rbase/2}"]
    if rng.random() < 0.5:
        out.append(f".temp {rng.uniform(-20, 120):.6g}")
    if rng.random() < 0.3:
        out.append(f".options tnom={rng.uniform(10, 40):.6g}")
    if rng.random() < 0.2:
        out.append(f".options rshunt={rng.uniform(1e5, 1e7):.12g}")
    out += [".model rgeo r (rsh=25 narrow=0.05u tc1=2e-3)",
            ".subckt cell a gnd params: rc=2k",
            ".param rin={rc/2}", "r1 a mid {rin}", "r2 mid gnd {rc}", "i1 a mid 10u", ".ends",
            ".subckt amp in out", "vs in x 0", "rx x 0 5k", "e1 out 0 x 0 -2", ".ends"]
    k_el = 0

    def name(letter: str) -> str:
        nonlocal k_el
        k_el += 1
        return f"{letter}{k_el}"

    def resistor(a: str, b: str, r: float) -> str:
        form = int(rng.integers(9))
        nm = name("r" if rng.random() < 0.8 else "R")
        if form == 0:
            return f"{nm} {a} {b} {{{r / 1e3:.12g}*rbase}}"
        if form == 1:
            return f"{nm} {a} {b} r={_num(rng, r)}"
        if form == 2:
            return f"{nm} {a} {b} {_num(rng, r)} tc1={rng.uniform(-3e-3, 3e-3):.4g} tc2={rng.uniform(0, 1e-5):.4g}"
        if form == 3:
            return f"{nm} {a} {b} {_num(rng, r)} tce={rng.uniform(-0.5, 0.5):.4g} dtemp={rng.uniform(-5, 5):.4g}"
        if form == 4:
            m = int(rng.integers(1, 4))
            return f"{nm} {a} {b} {_num(rng, r * m)} m={m} scale={rng.uniform(0.5, 2):.4g}"
        if form == 5:
            return f"{nm} {a} {b} rgeo l={r / 25 * 1e-6:.9g} w=1.1u"
        if form == 6:
            return f"{nm} {a} {b} {{gsel > 1 ? {r:.12g} : 1}}"
        if form == 7:
            return f"{nm} {a} {b} '{r:.12g}' temp={rng.uniform(0, 100):.4g} tc1=1e-3"
        return f"{nm} {a} {b} {_num(rng, r)}"

    # spanning tree to ground, then extra edges
    for k in range(1, n):
        out.append(resistor(nodes[k], nodes[int(rng.integers(0, k))], rng.uniform(100, 1e5)))
    for _ in range(int(rng.integers(0, n))):
        a, b = rng.choice(n, 2, replace=False)
        out.append(resistor(nodes[a], nodes[b], rng.uniform(100, 1e5)))
    # a negative resistor in parallel with a smaller positive one
    a, b = rng.choice(n, 2, replace=False)
    r = rng.uniform(500, 5e3)
    out += [f"{name('r')} {nodes[a]} {nodes[b]} {_num(rng, r)}",
            f"{name('r')} {nodes[a]} {nodes[b]} {_num(rng, -r * rng.uniform(2, 5))}"]
    # grounded voltage sources on distinct nodes, in every DC form
    fixed = [int(x) for x in rng.choice(np.arange(1, n), min(n - 1, int(rng.integers(1, 3))), replace=False)]
    vnames = []
    for k in fixed:
        v = rng.uniform(-2, 2)
        form = int(rng.integers(6))
        spec = [f"{v:.12g}", f"dc {v:.12g} ac 1", f"dc={v:.12g} ac=0",
                f"sin({v:.12g} 0.5 1k 0 0 0)", f"pulse({v:.12g} 1 1n 1n 1n 1u 2u)",
                f"pwl(0 {v:.12g} 1m 2)"][form]
        vnames.append(name("v"))
        out.append(f"{vnames[-1]} {nodes[k]} 0 {spec}")
    # current sources, capacitors (open), an inductor in series with a resistor
    for _ in range(int(rng.integers(0, 3))):
        a, b = rng.choice(n, 2, replace=False)
        out.append(f"{name('i')} {nodes[a]} {nodes[b]} dc {_num(rng, rng.uniform(-1e-3, 1e-3))}")
    a, b = rng.choice(n, 2, replace=False)
    out.append(f"{name('c')} {nodes[a]} {nodes[b]} 1p")
    a = nodes[int(rng.integers(n))]
    out += [f"{name('l')} {a} lmid 1u", resistor("lmid", nodes[int(rng.integers(n))], rng.uniform(100, 1e4))]
    # controlled sources: E/H on leaf nodes, weak G/F on the network
    cp, cn = rng.choice(n, 2, replace=False)
    out += [f"{name('e')} eo 0 {nodes[cp]} {nodes[cn]} {rng.uniform(-3, 3):.6g}", resistor("eo", "0", 2e3)]
    out += [f"{name('g')} {nodes[int(rng.integers(n))]} 0 {nodes[cp]} {nodes[cn]} {rng.uniform(-1e-5, 1e-5):.4g}"]
    if vnames:
        out += [f"{name('f')} {nodes[int(rng.integers(1, n))]} 0 {vnames[0]} {rng.uniform(-0.05, 0.05):.4g}",
                f"{name('h')} ho 0 {vnames[-1]} {rng.uniform(-1e3, 1e3):.6g}", resistor("ho", "0", 1e3)]
    # subcircuits: port named gnd, instance override of a body .param, m=
    a = nodes[int(rng.integers(1, n))]
    out.append(f"x{name('c')} {a} xgnd cell rc={_num(rng, rng.uniform(1e3, 1e4))}")
    out.append(resistor("xgnd", "0", 1e3))
    out.append(f"x{name('m')} {nodes[int(rng.integers(1, n))]} 0 cell rin=3k m={int(rng.integers(1, 4))}")
    out.append(f"x{name('a')} {nodes[int(rng.integers(1, n))]} ao amp")
    out.append(resistor("ao", "0", 1e3))
    # .if (islands reached by 0 A sources are left out: ngspice solves those decks by gmin and
    # source stepping, accurate only to its reltol, 1e-3; tests/test_netlist_constructs.py
    # checks one small enough for ngspice to land on the exact answer)
    out += [".if (gsel == 2)", resistor(nodes[int(rng.integers(1, n))], "0", 7e3), ".else",
            "rbad n1 0 -1", ".endif"]
    out += [".op", ".end"]
    return "\n".join(out) + "\n"


ALPHABET = "{}()'=*+-/?:,.$;0123456789abcdegkmnprtuvx \n"
VALUES = ["0", "-1", "1e999", "-1e999", "{1e200*1e200-1e200*1e200}", "{1/0}", "nan", "inf", "{(((1)}",
          "{" + "(" * 300 + "1" + ")" * 300 + "}", "{" + "-" * 3000 + "1}", "1e-320", "1e308", "''", "{}"]
LINES = [".subckt", ".ends", ".endif", ".else", ".if (1", ".lib x.lib tt", ".include nowhere.inc",
         ".param p={p}", ".options scale=2", ".temp 1 2", "x1 a b", "e1 a 0 b", "f1 a 0 vnone 1",
         "q1 a b c", "d1 a 0 dm", "+ 1", ".control", "r9 a a 1", "v9 a 0 1\nv8 a 0 2", ".global 0",
         ".model rgeo r (rsh=-1)", "r8 a 0 rgeo", "l9 n1 0 1u", "c9 z9 0 1p"]


def mutate(text: str, rng: np.random.Generator) -> str:
    """A mutant of ``text``: characters, tokens or lines changed, or hostile values swapped in."""
    lines = text.splitlines()
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(6))
        k = int(rng.integers(1, len(lines))) if len(lines) > 1 else 0
        if kind == 0 and lines[k]:  # a character deleted, replaced or inserted
            pos = int(rng.integers(len(lines[k])))
            ch = ALPHABET[int(rng.integers(len(ALPHABET)))]
            op = int(rng.integers(3))
            lines[k] = lines[k][:pos] + ("" if op == 0 else ch) + lines[k][pos + (op < 2):]
        elif kind == 1:  # a value token replaced by a hostile value
            toks = lines[k].split()
            if len(toks) > 3:
                toks[int(rng.integers(3, len(toks)))] = VALUES[int(rng.integers(len(VALUES)))]
                lines[k] = " ".join(toks)
        elif kind == 2:  # a line deleted or duplicated
            if rng.random() < 0.5:
                del lines[k]
            else:
                lines.insert(k, lines[k])
        elif kind == 3:  # a hostile line inserted
            lines.insert(k, LINES[int(rng.integers(len(LINES)))])
        elif kind == 4:  # two tokens swapped
            toks = lines[k].split()
            if len(toks) > 2:
                i, j = rng.choice(len(toks), 2, replace=False)
                toks[i], toks[j] = toks[j], toks[i]
                lines[k] = " ".join(toks)
        else:  # a node renamed (may float or join parts)
            lines[k] = lines[k].replace(" n1 ", " n99 ", 1)
        if not lines:
            lines = ["empty"]
    return "\n".join(lines) + "\n"
