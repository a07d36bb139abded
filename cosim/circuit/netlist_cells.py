"""ngspice decks of crossbars whose cells obey nonlinear laws (:mod:`cosim.circuit.cells`).

The same circuit :func:`cosim.circuit.solvers.newton.read_nonlinear` solves, written so that
ngspice runs it as is (``ngspice -b``): wires, ports and sources exactly as the ohmic writer
makes them (resistors by value, 0 Ω as 0 V sources); each cell as

- :class:`Ohmic`: a resistor ``rg{i}_{j}`` (open when g = 0);
- :class:`Sinh`: a behavioural current source ``bg{i}_{j} a b I = g_lin*V(a,b) + a*sinh(V(a,b)/v0)``;
- :class:`SeriesCell`: its device from the row node to an internal node ``m{i}_{j}``, then its
  access element to the column node: a ``Sinh`` selector as a B-source ``bs{i}_{j}``, the
  access transistor as a level-1 MOSFET ``mt{i}_{j} m{i}_{j} <gate> c{i}_{j} 0`` whose gate is a
  word-line node ``wl{k}`` held by ``vwl{k}`` (one per distinct gate voltage).

The MOSFET model has no body effect (gamma = 0) and no junction currents (is = js = 0), so its
channel is exactly the law's; ``.options gmin`` is lowered to 1e-18 S because ngspice puts gmin
across the junctions, which at ~1 V would add 1e-12 A per cell.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from cosim.circuit.cells import Cell, Mosfet, Ohmic, SeriesCell, Sinh
from cosim.circuit.model import Circuit
from cosim.circuit.units import format_value as fv
from cosim.errors import EngineError, NetlistError

_MODEL = "cosim_nacc"


def _scalar(x, what: str) -> float:
    a = np.unique(np.asarray(x, dtype=float))
    if a.size != 1:
        raise NetlistError(f"the netlist writer needs one {what} for every access transistor, got {a.size}")
    return float(a[0])


def _two_terminal(prefix: str, ij: tuple[int, int], a: str, b: str, law) -> str:
    i, j = ij
    if isinstance(law, Ohmic):
        g = float(law.g if np.ndim(law.g) == 0 else law.g[i, j])
        return f"r{prefix}{i}_{j} {a} {b} {fv(1.0 / g)}" if g > 0 else ""
    if isinstance(law, Sinh):
        pick = lambda x: float(x if np.ndim(x) == 0 else x[i, j])  # noqa: E731
        g_lin, amp, v0 = pick(law.g_lin), pick(law.a), pick(law.v0)
        expr = f"{fv(amp)}*sinh(V({a},{b})/{fv(v0)})"
        if g_lin:
            expr = f"{fv(g_lin)}*V({a},{b}) + " + expr
        return f"b{prefix}{i}_{j} {a} {b} I = {expr}"
    raise NetlistError(f"no two-terminal netlist form for {type(law).__name__}")


#: Simulator options every deck with nonlinear cells carries: gmin off the MOSFET junctions (see
#: the module docstring) and tolerances tight enough that ngspice's own Newton stops within 1e-8
#: relative (its defaults, reltol 1e-3, would leave errors far above cosim's certified bound).
OPTIONS = ".options gmin=1e-18 reltol=1e-8 abstol=1e-18 vntol=1e-12 itl1=500"


def cell_lines(cell: Cell, shape: tuple[int, int], row_node, col_node) -> tuple[list[str], list[str]]:
    """The netlist text of an array's nonlinear cells, the one place each cell kind is written.

    ``row_node(i, j)`` / ``col_node(i, j)`` give the names of cell (i, j)'s terminals. Returns
    (preamble: the access transistor's ``.model`` and the word-line sources ``vwl{k}``, one per
    distinct gate voltage; elements: one line per cell, two for a series cell).
    """
    n, m = shape
    pre: list[str] = []
    gates: dict[float, str] = {}
    mos = cell.access if isinstance(cell, SeriesCell) and isinstance(cell.access, Mosfet) else None
    if mos is not None:
        pre.append(f".model {_MODEL} nmos level=1 vto={fv(_scalar(mos.vt, 'vt'))} kp={fv(_scalar(mos.beta, 'beta'))} "
                   f"lambda={fv(_scalar(mos.lam, 'lambda'))} gamma=0 is=0 js=0")
        v_gate = np.broadcast_to(np.asarray(mos.v_gate, dtype=float), (n, m))
        for k, v in enumerate(np.unique(v_gate)):
            gates[float(v)] = f"wl{k}"
            pre.append(f"vwl{k} wl{k} 0 {fv(v)}")
    lines = []
    for i in range(n):
        for j in range(m):
            a, b = row_node(i, j), col_node(i, j)
            if isinstance(cell, SeriesCell):
                mid = f"m{i}_{j}"
                lines.append(_two_terminal("g", (i, j), a, mid, cell.device))
                if mos is not None:
                    lines.append(f"mt{i}_{j} {mid} {gates[float(v_gate[i, j])]} {b} 0 {_MODEL} w=1u l=1u")
                else:
                    lines.append(_two_terminal("s", (i, j), mid, b, cell.access))
            else:
                lines.append(_two_terminal("g", (i, j), a, b, cell))
    return pre, [ln for ln in lines if ln]


def cells_deck(circuit: Circuit, cell: Cell, values: np.ndarray, *, raw: str = "op.raw") -> str:
    """A flat deck of ``circuit`` (a 0T1R crossbar from build_circuit) with ``cell``'s laws as
    its cells and its sources at ``values`` (n_vsrc,) V; the control block runs ``op`` and
    writes every node voltage and source current to the binary raw file ``raw``."""
    lay = circuit.layout
    if lay is None or lay.mid_node0 >= 0:
        raise NetlistError("cells_deck writes 0T1R crossbar circuits (series elements come with the cell law)")
    n, m = lay.n_rows, lay.n_cols
    names = circuit.node_names

    def node(k: int) -> str:
        return "0" if k == 0 else str(names[k])

    pre, cells = cell_lines(cell, (n, m), lambda i, j: f"r{i}_{j}", lambda i, j: f"c{i}_{j}")
    lines = [f"* {circuit.title}, nonlinear cells ({type(cell).__name__})", *pre, *cells]
    cell_range = range(lay.cell_res0, lay.cell_res0 + n * m)
    for k in range(circuit.res_g.size):
        if k in cell_range:
            continue
        a, b, g = node(circuit.res_a[k]), node(circuit.res_b[k]), circuit.res_g[k]
        if np.isinf(g):
            lines.append(f"v{circuit.res_names[k]} {a} {b} 0")
        elif g > 0:
            lines.append(f"r{circuit.res_names[k]} {a} {b} {fv(1.0 / g)}")
    for k in range(circuit.vsrc_p.size):
        lines.append(f"{circuit.vsrc_names[k]} {node(circuit.vsrc_p[k])} {node(circuit.vsrc_n[k])} "
                     f"{fv(float(values[k]))}")
    lines += [OPTIONS, ".control", "set filetype=binary", "op", f"write {raw}", "quit 0", ".endc", ".end", ""]
    return "\n".join(ln for ln in lines if ln)


def ngspice_read(circuit: Circuit, cell: Cell, inputs: np.ndarray, *, keep: str | Path | None = None) -> np.ndarray:
    """Output currents (B, n_outputs) in A of ``circuit`` with ``cell``'s laws, solved by ngspice
    (one ``ngspice -b`` run per input vector). EngineError names the deck when ngspice fails."""
    from cosim.circuit.engines.spice import MISSING, ngspice_binary, read_raw  # noqa: PLC0415

    binary = ngspice_binary()
    if binary is None:
        raise EngineError(MISSING)
    v = np.atleast_2d(np.asarray(inputs, dtype=float))
    out = np.empty((v.shape[0], circuit.n_outputs))
    with tempfile.TemporaryDirectory(prefix="cosim-cells-") as tmp:
        work = Path(keep) if keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for b, values in enumerate(circuit.source_values(v)):
            deck = work / f"cells{b}.cir"
            deck.write_text(cells_deck(circuit, cell, values, raw=f"op{b}.raw"))
            proc = subprocess.run([binary, "-b", deck.name], cwd=work, capture_output=True, text=True,
                                  errors="replace")
            raw = work / f"op{b}.raw"
            text = proc.stdout + proc.stderr
            if proc.returncode != 0 or not raw.exists() or "aborted" in text:
                tail = "\n".join(ln for ln in text.splitlines() if ln.strip())[-1500:]
                raise EngineError(f"ngspice failed on {deck} (exit status {proc.returncode}):\n{tail}")
            op = {k.lower(): val for k, val in read_raw(raw).items()}
            branch = np.array([[op[f"i({name})"] for name in circuit.vsrc_names]])
            out[b] = circuit.outputs_from_branches(branch)[0]
    return out
