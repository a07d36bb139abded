"""The nodal engine on a crossbar whose cells obey nonlinear laws (``Circuit.cell_law``).

The nodal engine hands such circuits here (:meth:`NodalEngine.prepare`): the line blocks of
the wires and ports are extracted once, and every solve runs damped Newton on them
(:func:`cosim.circuit.solvers.newton.solve`), each step a line-block PCG solve of the cells'
companion models. Only the structure-aware path exists for nonlinear cells, so a method other
than "auto"/"pcg" is refused rather than silently swapped.

A batch of sinh cells (Stanford–PKU devices) on arrays the compiled cold read certifies is
solved by the compiled per-vector Newton (:mod:`cosim.circuit.solvers.sinhnewton`: the fast
path for training reads, started from the drops the earlier solves predict); other laws by the
chord iteration (one shared linear system for every input vector,
:mod:`cosim.circuit.solvers.chord`); the vectors either leaves uncertified by the damped Newton.
``chord=False`` solves every vector by Newton (the reference path); ``compiled=False`` keeps
sinh cells on the chord iteration; ``predict=False`` starts the compiled Newton from zero drops.

A prepared read may carry a *warm start*: the line potentials of a previous solve
(:meth:`NewtonPrepared.for_cells` and :meth:`NewtonPrepared.update_cells`, what a tile uses
after its devices moved a little; ``update_cells`` swaps the cell block and law without
rebuilding the circuit). When the same inputs are read again, Newton starts there; other inputs
of sinh cells start from the drops the fit of the earlier solves predicts (kept across
successors: :class:`cosim.circuit.solvers.sinhnewton.DropFit`). The answer is the same fixed point,
certified the same way, only reached in fewer steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from cosim.circuit.cells import Mosfet, SeriesCell
from cosim.circuit.engines.base import Prepared, ReadResult, SolverOptions
from cosim.circuit.model import Circuit, as_batch
from cosim.circuit.solvers import chord, circuits, newton, sinhnewton
from cosim.circuit.solvers.lineblock import LineBlocks, Unsupported
from cosim.errors import EngineError, SpecError


@dataclass(slots=True)
class NewtonPrepared(Prepared):
    """A nonlinear crossbar read: its line blocks, options and an optional warm start."""

    circuit: Circuit
    options: SolverOptions
    blocks: LineBlocks
    #: (inputs (B, n_inputs), d_r (B, N, M), d_c (B, N, M)) of the last solve, for a warm start;
    #: kept only for batches whose drops fit in ``keep_bytes`` each (see there).
    last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    start: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    max_newton: int = newton.MAX_NEWTON
    #: ℓ1 KCL residual (A) also accepted as converged (a caller's rounding floor; default none).
    atol: float = 0.0
    #: Solve a batch by the chord iteration first (:mod:`cosim.circuit.solvers.chord`), Newton
    #: taking only the vectors it does not certify; False: Newton for every vector (the reference).
    chord: bool = True
    #: Sinh cells (Stanford–PKU) on arrays the compiled cold read certifies take the compiled
    #: per-vector Newton (:mod:`cosim.circuit.solvers.sinhnewton`) instead of the chord
    #: iteration; False: the chord iteration (both are exact to rtol; tests compare them).
    compiled: bool = True
    #: The compiled Newton starts each batch from the drops the earlier solves predict
    #: (:class:`cosim.circuit.solvers.sinhnewton.DropFit`); False: from zero drops.
    predict: bool = True
    #: The fit of the drops of the solves so far on these line blocks (kept by successors).
    fit: sinhnewton.DropFit | None = None
    #: Largest row (and column) drop array, bytes, a compiled-Newton solve keeps as ``last``. A
    #: warm start pays only when the same inputs come back, which in training are the few
    #: vectors of a calibration, not a batch; a larger batch's drops go to reusable memory
    #: (:func:`sinhnewton.scratch`), since fresh arrays beyond 128 KiB may fault in page by page
    #: (a tenth of a digits device epoch: see there). A read asking for node voltages keeps
    #: them whatever the size.
    keep_bytes: int = 2 ** 17

    def solve(self, inputs, *, want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
        c = self.circuit
        v, _ = as_batch(inputs, c.n_inputs)
        t0 = time.perf_counter()
        ports = c.source_values(v)
        s_r, s_c = self.blocks.shifts(ports)
        opts, label = self.options, c.title or "crossbar"
        warm = self.start is not None and np.array_equal(self.start[0], v)
        fast = self.compiled and sinhnewton.applies(self.blocks, c.cell_law)
        keep, ideal = True, None
        if fast:  # the drop fit's line currents, also what a predicted start scales
            ideal = sinhnewton.ideal_currents(self.blocks, s_r, s_c)
        if self.chord and fast:
            keep = want_nodes or s_r.shape[0] * self.blocks.n * self.blocks.m * 8 <= self.keep_bytes
            d_r, d_c, branch, cells, bound, info = self._compiled(s_r, s_c, self.start[1:] if warm else None,
                                                                  want_cells, keep, ideal)
        elif warm or not self.chord:
            res = newton.solve(self.blocks, c.cell_law, (s_r, s_c), c.out_src, rtol=opts.rtol, maxiter=opts.maxiter,
                               label=label, x0=self.start[1:] if warm else None, max_newton=self.max_newton,
                               atol=self.atol)
            d_r, d_c, branch, cells, bound = res.d_r, res.d_c, res.branch, res.cells, res.bound
            info = {"method": "newton", "newton_steps": res.steps, "iterations": res.iterations}
        else:
            d_r, d_c, branch, cells, bound, info = self._chord_then_newton(s_r, s_c, label)
        if fast:
            self.fit = sinhnewton.DropFit.of(self.blocks, (s_r, s_c), d_r, d_c, self.fit, ideal=ideal)
        self.last = (v.copy(), d_r, d_c) if keep else None
        nodes = self.blocks.node_voltages(d_r, d_c, s_r, s_c, ports) if want_nodes else None
        worst = float(np.max(bound, initial=0.0))
        return ReadResult(currents=c.outputs_from_branches(branch), engine="nodal",
                          elapsed=time.perf_counter() - t0, branch_currents=branch, node_voltages=nodes,
                          cell_currents=cells if want_cells else None, residual=worst,
                          info={**info, "error_bound": worst, "warm": warm})

    def _g_floor(self) -> float:
        scale = self.blocks.wire_max
        return newton.G_FLOOR * (scale if scale > 0 else 1.0)

    def _chord_then_newton(self, s_r, s_c, label):
        """The batch by the chord iteration; the vectors it leaves uncertified by Newton."""
        c, opts = self.circuit, self.options
        ch = chord.solve(self.blocks, c.cell_law, (s_r, s_c), c.out_src, rtol=opts.rtol, maxiter=opts.maxiter,
                         g_floor=self._g_floor(), label=label, atol=self.atol)
        return self._finish(ch, "chord", s_r, s_c, label)

    def _compiled(self, s_r, s_c, x0=None, want_cells=True, keep=True, ideal=None):
        """The batch by the compiled per-vector Newton, from ``x0`` ((d_r, d_c) of a previous
        solve of the same inputs) or else from the drops the earlier solves of other inputs
        predict (:class:`sinhnewton.DropFit`); vectors a predicted start leaves uncertified are
        solved again from zero drops, and what remains by the damped Newton of :mod:`newton`.
        Cell currents only with ``want_cells`` (else None); the drops in reusable memory unless
        ``keep`` (:func:`sinhnewton.scratch`: valid until this thread's next solve)."""
        c, opts = self.circuit, self.options
        kw = dict(rtol=opts.rtol, maxiter=opts.maxiter, g_floor=self._g_floor(), atol=self.atol, want_cells=want_cells)
        prior = self.fit.ratios() if x0 is None and self.predict and self.fit is not None else None
        out = None
        if not keep:
            shape = (s_r.shape[0], self.blocks.n, self.blocks.m)
            out = tuple(sinhnewton.scratch(name, shape) for name in ("d_r", "d_c"))
        res = sinhnewton.solve(self.blocks, c.cell_law, (s_r, s_c), c.out_src, x0=x0, prior=prior, out=out,
                               ideal=ideal, **kw)
        if prior is not None and not res.converged.all():
            bad = ~res.converged
            again = sinhnewton.solve(self.blocks, c.cell_law, (s_r[bad], s_c[bad]), c.out_src, **kw)
            for name in ("d_r", "d_c", "branch", "cells", "bound", "converged", "kcl_l1", "counts"):
                if getattr(res, name) is not None:
                    getattr(res, name)[bad] = getattr(again, name)
        return self._finish(res, "compiled-newton", s_r, s_c, c.title or "crossbar", x0)

    def _finish(self, ch, first, s_r, s_c, label, x0=None):
        """``ch`` (a chord or compiled-Newton result) with its uncertified vectors solved by the
        damped Newton of :mod:`newton` (from ``x0`` where given)."""
        c, opts = self.circuit, self.options
        info = {"method": first if ch.converged.all() else first + "+newton", f"{first}_steps": ch.steps,
                "iterations": ch.iterations, "newton_vectors": int((~ch.converged).sum())}
        if not ch.converged.all():
            bad = ~ch.converged
            nt = newton.solve(self.blocks, c.cell_law, (s_r[bad], s_c[bad]), c.out_src, rtol=opts.rtol,
                              maxiter=opts.maxiter, label=label, max_newton=self.max_newton, atol=self.atol,
                              x0=None if x0 is None else (x0[0][bad], x0[1][bad]))
            for name, part in (("d_r", nt.d_r), ("d_c", nt.d_c), ("branch", nt.branch), ("cells", nt.cells),
                               ("bound", nt.bound)):
                if getattr(ch, name) is not None:  # cell currents not asked for are not kept
                    getattr(ch, name)[bad] = part
            info["newton_steps"], info["iterations"] = nt.steps, ch.iterations + nt.iterations
        return ch.d_r, ch.d_c, ch.branch, ch.cells, ch.bound, info

    def for_circuit(self, circuit: Circuit, *, spec: Any = None) -> Prepared | None:
        return None  # the other read direction has other ports; its blocks are extracted anew

    def for_cells(self, circuit: Circuit) -> NewtonPrepared | None:
        """This read on ``circuit`` (the same array with new cell laws: its line blocks are
        kept), warm-started from the last solve; None when the wires or ports differ."""
        old = self.circuit
        same = (circuit.layout is not None and old.layout is not None
                and circuit.layout.transpose == old.layout.transpose and circuit.res_g.shape == old.res_g.shape
                and np.array_equal(circuit.vsrc_dc, old.vsrc_dc) and _same_wires(circuit, old))
        return self._successor(circuit) if same else None


    def update_cells(self, g_new: np.ndarray, law: Any) -> NewtonPrepared | None:
        """This read with device read conductances ``g_new`` (S) obeying ``law``: the circuit's
        cell block replaced (:func:`circuits.with_devices`, which refuses arrays whose islands
        depend on the devices) and its line blocks kept, warm-started as :meth:`for_cells`.
        None for laws the builder rewrites per row (1T1R-mos gating) or such arrays."""
        if isinstance(law, SeriesCell) and isinstance(law.access, Mosfet):
            return None
        try:
            circuit = circuits.with_devices(self.circuit, g_new, cell_law=law)
        except EngineError:
            return None
        return self._successor(circuit)

    def _successor(self, circuit: Circuit) -> NewtonPrepared:
        """This read's settings and line blocks on ``circuit``, warm-started from the last solve."""
        return NewtonPrepared(circuit, self.options, self.blocks, start=self.last, max_newton=self.max_newton,
                              atol=self.atol, chord=self.chord, compiled=self.compiled, predict=self.predict,
                              fit=self.fit)


def _same_wires(a: Circuit, b: Circuit) -> bool:
    """Whether every element but the cells is the same in both circuits."""
    lay = a.layout
    keep = np.ones(a.res_g.size, dtype=bool)
    keep[lay.cell_res0:lay.cell_res0 + lay.n_rows * lay.n_cols] = False
    return bool(np.array_equal(a.res_g[keep], b.res_g[keep]) and np.array_equal(a.res_a, b.res_a)
                and np.array_equal(a.res_b, b.res_b))


def prepare(circuit: Circuit, options: SolverOptions) -> NewtonPrepared:
    """``circuit`` (with ``cell_law``) prepared for Newton reads; one-line refusals otherwise."""
    if options.method not in ("auto", "pcg"):
        raise SpecError(f"solver.method {options.method!r} does not solve nonlinear cells; the nodal engine "
                        "reads them by Newton on the line-block PCG (method 'auto' or 'pcg')")
    try:
        blocks = LineBlocks.from_circuit(circuit)
    except Unsupported as exc:
        raise EngineError(f"nonlinear cells need the line-block structure: {exc}") from None
    return NewtonPrepared(circuit, options, blocks)

