"""One-call reads of a crossbar spec through any engine."""

from __future__ import annotations

import dataclasses

import numpy as np

from cosim.circuit.engines.base import ReadResult, SolverOptions, prepare
from cosim.circuit.model import Circuit
from cosim.circuit.spec import CrossbarSpec

# build (scipy.sparse) is imported by `read`: reading a netlist does not need it


def solve_circuit(circuit: Circuit, inputs: np.ndarray, options: SolverOptions, *,
                  want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
    """``circuit`` prepared by ``options.engine`` and solved for ``inputs`` (B, n_inputs), V."""
    return prepare(circuit, options).solve(inputs, want_nodes=want_nodes, want_cells=want_cells)


def read(spec: CrossbarSpec, inputs: np.ndarray, *, engine: str | None = None,
         transpose: bool = False, options: SolverOptions | None = None,
         want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
    """Column currents (B, M) in A for row inputs (B, N) in V, or row currents for a transpose read.

    ``engine="spice"`` is shorthand for ``options.replace(engine="spice")``: the options alone
    pick the engine from there on. A single input vector (N,) gives B = 1.
    """
    from cosim.circuit.build import build_circuit

    options = options or SolverOptions()
    if engine is not None:
        options = dataclasses.replace(options, engine=engine)
    return solve_circuit(build_circuit(spec, transpose=transpose), inputs, options,
                         want_nodes=want_nodes, want_cells=want_cells)
