"""Sneak-path report for reading one cell of a small passive (0T1R) crossbar.

The read: row ``i`` is driven at ``v_sense + v_read`` (so ``v_read`` volts fall across the
array), column ``j`` is sensed by its virtual-ground amplifier, every other line is left
floating (or biased per the ``unselected`` argument, see :class:`CrossbarSpec`). A sneak path is
a simple path from row i to column j through *other* cells: on the bipartite graph whose
vertices are the N rows and M columns and whose edges are the cells with g > 0, minus cell
(i, j). It alternates row → column → row ... so its length in cells is odd: the classic 3-cell
path row i → (i, j') → column j' → (i', j') → row i' → (i', j) → column j, then 5, 7, ...
With every cell conductive there are (N-1)(M-1) 3-cell paths and (N-1)(M-1)(N-2)(M-2) 5-cell
ones.

Paths are counted and ranked with networkx (combinatorics and device conductances only); the
currents and the read margin come from the exact nodal solve of the full circuit, wires included,
so the sneak share is exact rather than estimated from the paths.

This report reads ohmic cells against one background (every other cell at g_on). The designers'
worst-case margin (selected ON among OFF cells vs selected OFF among ON cells) for nonlinear
cells, passive or 1S1R, is :func:`cosim.circuit.margin.read_margin` (``cosim sneak``).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from cosim.circuit.build import build_circuit
from cosim.circuit.engines.base import SolverOptions, prepare
from cosim.circuit.margin import relative_margin
from cosim.circuit.spec import UNSELECTED, CrossbarSpec, Unselected
from cosim.errors import SpecError

# Enumerating more paths than this with networkx takes seconds: the array is then not "small".
MAX_PATHS = 250_000


@dataclass(frozen=True, slots=True)
class SneakPath:
    """One sneak path: its cells in order from row i to column j, and their series conductance.

    ``g_series`` (S) = 1 / Σ 1/g over the path's cells (wires ignored): the conductance the path
    would have alone, which ranks how strongly it shunts the selected cell.
    """

    cells: tuple[tuple[int, int], ...]
    g_series: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SneakReport:
    """The sneak-path figures of reading cell ``cell`` (see the module docstring for the read).

    Attributes:
        shape: (N, M) of the array.
        cell: the selected cell (i, j).
        v_read: read voltage across the array, V.
        unselected: bias of the unselected lines used for the read.
        max_cells: longest sneak path counted, in cells (odd, ≥ 3).
        path_counts: number of sneak paths by length in cells, e.g. {3: 9, 5: 36}.
        top_paths: the strongest sneak paths by series conductance, strongest first.
        i_cell: current through the selected device from row to column, A (nodal solve).
        i_sense: total current into column j's sense amplifier, A (nodal solve).
        i_ideal: g_ij · v_read, A: what the cell alone would give with no wires and no sneak.
        g_on, g_off: the two states compared by the margin, S.
        i_on, i_off: sensed current with cell (i, j) at g_on resp. g_off while every other cell
            is at g_on, A. This is the conventional worst-case background: with floating lines
            the sneak network's conductance can only grow with any cell's conductance
            (Rayleigh's monotonicity), so all-g_on maximises it; with zero wire resistance
            i_on − i_off = (g_on − g_off)·v_read exactly, so it also minimises the margin.
    """

    shape: tuple[int, int]
    cell: tuple[int, int]
    v_read: float
    unselected: str
    max_cells: int
    path_counts: dict[int, int]
    top_paths: tuple[SneakPath, ...]
    i_cell: float
    i_sense: float
    i_ideal: float
    g_on: float
    g_off: float
    i_on: float
    i_off: float

    @property
    def n_paths(self) -> int:
        """Sneak paths of up to ``max_cells`` cells."""
        return sum(self.path_counts.values())

    @property
    def i_sneak(self) -> float:
        """Current reaching column j's sense amplifier through cells other than (i, j), A.

        Exact by KCL on column j: i_sense − i_cell.
        """
        return self.i_sense - self.i_cell

    @property
    def sneak_share(self) -> float:
        """i_sneak / i_sense, unitless (NaN when nothing is sensed)."""
        return self.i_sneak / self.i_sense if self.i_sense != 0 else math.nan

    @property
    def margin(self) -> float:
        """Relative read margin (i_on − i_off) / i_on, unitless: 1 is perfect, 0 unreadable."""
        return relative_margin(self.i_on, self.i_off)

    @property
    def margin_ideal(self) -> float:
        """(g_on − g_off) / g_on, unitless: the margin with no sneak paths and no wires."""
        return (self.g_on - self.g_off) / self.g_on

    def format(self) -> str:
        """A short human-readable table."""
        (n, m), (i, j) = self.shape, self.cell
        counts = ", ".join(f"{k} cells: {v}" for k, v in sorted(self.path_counts.items()))
        lines = [
            f"sneak paths reading cell ({i}, {j}) of a {n}x{m} 0T1R array at {self.v_read:g} V, "
            f"unselected lines {self.unselected}",
            f"  paths up to {self.max_cells} cells: {self.n_paths} ({counts or 'none'})",
        ]
        if self.top_paths:
            lines.append(f"  {'rank':>4}  {'g_series (S)':>12}  cells (row, col)")
            for r, p in enumerate(self.top_paths, 1):
                cells = " -> ".join(f"({a},{b})" for a, b in p.cells)
                lines.append(f"  {r:>4}  {p.g_series:>12.4g}  {cells}")
        lines += [
            f"  {'current':<22}{'A':>12}",
            f"  {'selected cell':<22}{self.i_cell:>12.4g}",
            f"  {'sneak (other cells)':<22}{self.i_sneak:>12.4g}",
            f"  {'sensed total':<22}{self.i_sense:>12.4g}",
            f"  {'ideal g*v_read':<22}{self.i_ideal:>12.4g}",
            f"  sneak share {100 * self.sneak_share:.2f} %",
            f"  read margin, others at g_on={self.g_on:.4g} S: I_on {self.i_on:.4g} A, "
            f"I_off {self.i_off:.4g} A (g_off={self.g_off:.4g} S): {100 * self.margin:.2f} % "
            f"(ideal {100 * self.margin_ideal:.2f} %)",
        ]
        return "\n".join(lines)


def _bound(n: int, m: int, max_cells: int) -> int:
    """Number of sneak paths of up to ``max_cells`` cells when every cell conducts."""
    total, per = 0, 1
    for t in range(1, (max_cells - 1) // 2 + 1):
        per *= max(n - t, 0) * max(m - t, 0)
        total += per
    return total


def sneak_paths(g: np.ndarray, i: int, j: int, max_cells: int, top: int
                ) -> tuple[dict[int, int], tuple[SneakPath, ...]]:
    """(counts by length in cells, the ``top`` strongest paths) of cell (i, j) of conductances g.

    Vertices 0..N-1 are rows and N..N+M-1 columns; cells with g > 0 other than (i, j) are edges.
    Ties in series conductance rank by cell list, so the order is deterministic.
    """
    n, m = g.shape
    graph = nx.Graph()
    graph.add_nodes_from(range(n + m))
    on = g > 0
    on[i, j] = False
    rr, cc = np.nonzero(on)
    graph.add_edges_from(zip(rr.tolist(), (n + cc).tolist()))
    counts: dict[int, int] = {}

    def paths():
        for path in nx.all_simple_paths(graph, i, n + j, cutoff=max_cells):
            cells = tuple((a, b - n) if a < n else (b, a - n) for a, b in zip(path[:-1], path[1:]))
            counts[len(cells)] = counts.get(len(cells), 0) + 1
            yield SneakPath(cells, 1.0 / sum(1.0 / g[c] for c in cells))

    best = heapq.nsmallest(top, paths(), key=lambda p: (-p.g_series, p.cells))
    return dict(sorted(counts.items())), tuple(best)


def _sensed(spec: CrossbarSpec, i: int, j: int, v_read: float, unselected: str,
            options: SolverOptions) -> tuple[float, float]:
    """(current through cell (i, j), current sensed at column j) in A, from the nodal engine."""
    n, m = spec.shape
    rows = np.zeros(n, dtype=bool)
    cols = np.zeros(m, dtype=bool)
    rows[i] = cols[j] = True
    v_select = spec.v_select if spec.v_select is not None else v_read
    rspec = spec.replace(selected_rows=rows, selected_cols=cols, unselected=unselected, v_select=v_select)
    inputs = np.zeros(n)
    inputs[i] = spec.v_sense + v_read
    circuit = build_circuit(rspec)
    res = prepare(circuit, dataclasses.replace(options, engine="nodal")).solve(inputs, want_cells=True)
    return float(res.cell_currents[0, i, j]), float(res.currents[0, j])


def sneak_report(spec: CrossbarSpec, i: int, j: int, *, v_read: float = 0.2, top: int = 5,
                 max_cells: int = 3, g_on: float | None = None, g_off: float | None = None,
                 unselected: Unselected | None = "floating",
                 options: SolverOptions | None = None) -> SneakReport:
    """Sneak-path figures of reading cell (i, j) of a passive array; see :class:`SneakReport`.

    ``v_read`` is in V, ``g_on``/``g_off`` in S (default: the array's largest and smallest
    conductance). ``max_cells`` (odd, ≥ 3) bounds the counted path length; the number of paths
    grows like (N·M)^((max_cells−1)/2), and more than :data:`MAX_PATHS` are refused.
    ``unselected`` is the bias of the other lines ("floating", the classic sneak-path read, or
    any :class:`CrossbarSpec` scheme; None keeps ``spec.unselected``). ``options`` choose the
    nodal solver (the engine is always "nodal").
    """
    if spec.cell != "0T1R":
        raise SpecError("spec.cell must be '0T1R' for a sneak-path report; a 1T1R access transistor "
                        "blocks the sneak paths of unselected rows")
    n, m = spec.shape
    if not (isinstance(i, (int, np.integer)) and 0 <= i < n):
        raise SpecError(f"sneak_report i must be a row index in 0..{n - 1}, got {i!r}")
    if not (isinstance(j, (int, np.integer)) and 0 <= j < m):
        raise SpecError(f"sneak_report j must be a column index in 0..{m - 1}, got {j!r}")
    if not (np.isfinite(v_read) and v_read != 0):
        raise SpecError(f"sneak_report v_read must be a finite non-zero voltage, got {v_read!r}")
    if int(top) < 0:
        raise SpecError(f"sneak_report top must be ≥ 0, got {top!r}")
    if int(max_cells) < 3 or int(max_cells) % 2 == 0:
        raise SpecError(f"sneak_report max_cells must be an odd number ≥ 3, got {max_cells!r}")
    scheme = spec.unselected if unselected is None else unselected
    if scheme not in UNSELECTED:
        raise SpecError(f"sneak_report unselected must be one of {', '.join(UNSELECTED)}, got {scheme!r}")
    if _bound(n, m, int(max_cells)) > MAX_PATHS:
        raise SpecError(f"sneak_report max_cells={max_cells} would enumerate up to "
                        f"{_bound(n, m, int(max_cells))} paths on a {n}x{m} array (limit {MAX_PATHS}); "
                        "lower max_cells")
    g = spec.conductances
    g_on = float(g.max()) if g_on is None else float(g_on)
    g_off = float(g.min()) if g_off is None else float(g_off)
    if not (np.isfinite(g_on) and np.isfinite(g_off) and g_on > g_off >= 0):
        raise SpecError(f"sneak_report needs finite g_on > g_off ≥ 0 S, got g_on={g_on!r}, g_off={g_off!r}")
    options = options or SolverOptions()

    counts, best = sneak_paths(g, int(i), int(j), int(max_cells), int(top))
    i_cell, i_sense = _sensed(spec, i, j, v_read, scheme, options)
    background = np.full(spec.shape, g_on)
    _, i_on = _sensed(spec.replace(conductances=background), i, j, v_read, scheme, options)
    background[i, j] = g_off
    _, i_off = _sensed(spec.replace(conductances=background), i, j, v_read, scheme, options)
    return SneakReport(
        shape=(n, m), cell=(int(i), int(j)), v_read=float(v_read), unselected=scheme,
        max_cells=int(max_cells), path_counts=counts, top_paths=best, i_cell=i_cell,
        i_sense=i_sense, i_ideal=float(g[i, j] * v_read), g_on=g_on, g_off=g_off, i_on=i_on, i_off=i_off,
    )
