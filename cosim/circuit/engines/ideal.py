"""The ideal engine: the intended matrix-vector product I = (V − v_sense)·G, no parasitics.

Only crossbar circuits have an intended product; unselected rows contribute nothing and
unselected columns read 0 A. For 1T1R arrays the device conductance alone is used (the access
transistor is a parasitic).

Nonlinear cells (``Circuit.cell_law``) have no matrix; their ideal read is the same idea without
wires: every selected cell sees exactly its driven line's input against the sense potential and
conducts its own law's current there (selector or access transistor included, since those are
part of the cell, not parasitics), and each output sums its line's cells.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cosim.circuit.engines.base import Engine, Prepared, ReadResult, SolverOptions
from cosim.circuit.model import Circuit, as_batch
from cosim.errors import EngineError


@dataclass(frozen=True, slots=True)
class IdealPrepared(Prepared):
    circuit: Circuit
    repeat_identical = False  # a matmul: repeating one vector's answer saves nothing

    def solve(self, inputs, *, want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
        lay = self.circuit.layout
        v, _ = as_batch(inputs, self.circuit.n_inputs)
        t0 = time.perf_counter()
        if self.circuit.cell_law is not None:
            return self._solve_law(v, t0, want_nodes, want_cells)
        with np.errstate(over="ignore", invalid="ignore"):  # absurd inputs: refused below, not warned
            currents = (v - lay.ideal_offset) @ lay.ideal_g
        if not np.isfinite(currents).all():
            raise EngineError(f"the ideal read overflows: inputs up to {np.abs(v).max():.3g} V on conductances up to "
                              f"{np.abs(lay.ideal_g).max():.3g} S give currents beyond floating point")
        cells = None
        if want_cells:
            g = lay.ideal_g.T if lay.transpose else lay.ideal_g
            drive = v - lay.ideal_offset
            cells = drive[:, None, :] * g.T[None] if lay.transpose else drive[:, :, None] * g[None]
        if want_nodes:
            raise EngineError("the ideal engine has no node voltages; use engine 'nodal'")
        return ReadResult(currents=currents, engine="ideal", elapsed=time.perf_counter() - t0,
                          cell_currents=cells, info={"method": "matmul"})


    def _solve_law(self, v, t0, want_nodes, want_cells) -> ReadResult:
        lay = self.circuit.layout
        if want_nodes:
            raise EngineError("the ideal engine has no node voltages; use engine 'nodal'")
        mask = lay.ideal_mask.T if lay.transpose else lay.ideal_mask  # (N, M)
        full = (v.shape[0], *mask.shape)
        sense = np.full(full, lay.ideal_offset)
        with np.errstate(over="ignore", invalid="ignore"):
            if lay.transpose:  # columns at the inputs, rows at the sense potential
                i = self.circuit.cell_law.branch(sense, np.broadcast_to(v[:, None, :], full))[0]
                cells = np.where(mask, i, 0.0)
                currents = -cells.sum(axis=2)  # into the row's sense amplifier
            else:
                i = self.circuit.cell_law.branch(np.broadcast_to(v[:, :, None], full), sense)[0]
                cells = np.where(mask, i, 0.0)
                currents = cells.sum(axis=1)
        if not np.isfinite(currents).all():
            raise EngineError(f"the ideal read overflows: inputs up to {np.abs(v).max():.3g} V give cell "
                              "currents beyond floating point")
        return ReadResult(currents=currents, engine="ideal", elapsed=time.perf_counter() - t0,
                          cell_currents=cells if want_cells else None, info={"method": "cell law"})


class IdealEngine(Engine):
    name = "ideal"
    nonlinear_cells = True  # each cell at its applied voltage, no wires (see the module docstring)

    def prepare(self, circuit: Circuit, options: SolverOptions, *, spec=None) -> IdealPrepared:
        if circuit.layout is None:
            raise EngineError("the ideal engine needs a crossbar circuit (a spec), not a general netlist")
        return IdealPrepared(circuit)


ENGINE = IdealEngine()
