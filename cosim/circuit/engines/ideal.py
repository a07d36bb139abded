"""The ideal engine: the intended matrix-vector product I = (V − v_sense)·G, no parasitics.

Only crossbar circuits have an intended product; unselected rows contribute nothing and
unselected columns read 0 A. For 1T1R arrays the device conductance alone is used (the access
transistor is a parasitic).
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


class IdealEngine(Engine):
    name = "ideal"

    def prepare(self, circuit: Circuit, options: SolverOptions, *, spec=None) -> IdealPrepared:
        if circuit.layout is None:
            raise EngineError("the ideal engine needs a crossbar circuit (a spec), not a general netlist")
        return IdealPrepared(circuit)


ENGINE = IdealEngine()
