"""One-call reads of a crossbar spec through any engine."""

from __future__ import annotations

import numpy as np

from cosim.circuit.build import build_circuit
from cosim.circuit.engines.base import ReadResult, SolverOptions, get_engine
from cosim.circuit.spec import CrossbarSpec


def read(spec: CrossbarSpec, inputs: np.ndarray, *, engine: str | None = None,
         transpose: bool = False, options: SolverOptions | None = None,
         want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
    """Column currents (B, M) in A for row inputs (B, N) in V, or row currents for a transpose read.

    ``engine`` overrides ``options.engine``; a single input vector (N,) gives B = 1.
    """
    options = options or SolverOptions()
    name = engine or options.engine
    circuit = build_circuit(spec, transpose=transpose)
    prepared = get_engine(name).prepare(circuit, options)
    return prepared.solve(inputs, want_nodes=want_nodes, want_cells=want_cells)
