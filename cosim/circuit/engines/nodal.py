"""The nodal engine: exact DC solution of the circuit by sparse modified nodal analysis.

``prepare`` assembles and factorises once; ``solve`` reuses the factorisation for a whole batch
of input vectors (one triangular solve per vector). Structure-aware solvers for large crossbars
register in :data:`METHODS` and are chosen by ``SolverOptions.method``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse.linalg as spla

from cosim.circuit.engines.base import ReadResult, SolverOptions, cell_currents
from cosim.circuit.mna import NodalSystem, assemble_nodal
from cosim.circuit.model import Circuit, as_batch
from cosim.errors import EngineError, TopologyError

log = logging.getLogger(__name__)


class DirectSolver:
    """Sparse LU (SuperLU) of the reduced system; the reference every other path must match."""

    name = "direct"

    def __init__(self, system: NodalSystem, options: SolverOptions):
        ordering = options.ordering
        if ordering == "auto":
            # A symmetric pattern orders best on A+Aᵀ (minimum degree); COLAMD for MNA borders.
            ordering = "MMD_AT_PLUS_A" if system.spd else "COLAMD"
        self.ordering = ordering
        try:
            kw: dict[str, Any] = {"permc_spec": ordering}
            if system.spd:
                kw.update(diag_pivot_thresh=0.0, options={"SymmetricMode": True})
            self.lu = spla.splu(system.a, **kw) if system.a.shape[0] else None
        except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
            raise TopologyError(
                f"the circuit's nodal matrix is singular ({exc}); look for floating nodes or "
                "voltage-source loops with `cosim solve --check`"
            ) from None

    def solve(self, rhs: np.ndarray, system: NodalSystem) -> tuple[np.ndarray, dict]:
        if self.lu is None:
            return rhs, {}
        x = self.lu.solve(np.asfortranarray(rhs))
        if not np.isfinite(x).all():
            raise TopologyError("the nodal solve produced non-finite potentials; the circuit is singular")
        return x, {"ordering": self.ordering, "lu_nnz": int(self.lu.L.nnz + self.lu.U.nnz)}


# method name → factory(system, options) returning an object with .name and .solve(rhs, system)
METHODS: dict[str, Callable[[NodalSystem, SolverOptions], Any]] = {"direct": DirectSolver}


def choose_method(system: NodalSystem, options: SolverOptions) -> str:
    """The solver for ``options.method == "auto"``: direct unless a faster exact path is registered."""
    if options.method != "auto":
        if options.method not in METHODS:
            raise EngineError(f"nodal method {options.method!r} is not available; choose from {', '.join(METHODS)}")
        return options.method
    picker = METHODS.get("_auto")
    return picker(system, options) if picker else "direct"


@dataclass(slots=True)
class NodalPrepared:
    circuit: Circuit
    system: NodalSystem
    solver: Any
    prepare_time: float

    def solve(self, inputs, *, want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
        c = self.circuit
        v, _ = as_batch(inputs, c.n_inputs)
        t0 = time.perf_counter()
        rhs, vk = self.system.rhs(c.source_values(v))
        x, info = self.solver.solve(rhs, self.system)
        pot, branch, resid = self.system.recover(x, vk)
        currents = c.outputs_from_branches(branch)
        nodes = cells = None
        if want_nodes or want_cells:
            lab_v = np.where(self.system.defined[:, None], pot, np.nan)
            nodes = lab_v[self.system.labels].T
            if want_cells:
                cells = cell_currents(c, nodes)
        info = {"method": self.solver.name, "prepare_time": self.prepare_time,
                "unknowns": int(self.system.a.shape[0]), **info}
        return ReadResult(
            currents=currents, engine="nodal", elapsed=time.perf_counter() - t0,
            branch_currents=branch, node_voltages=nodes if want_nodes else None,
            cell_currents=cells, residual=resid, info=info,
        )


class NodalEngine:
    name = "nodal"

    def prepare(self, circuit: Circuit, options: SolverOptions) -> NodalPrepared:
        t0 = time.perf_counter()
        if options.check_topology and circuit.layout is None:
            from cosim.circuit.topology import check_topology

            check_topology(circuit)
        system = assemble_nodal(circuit)
        solver = METHODS[choose_method(system, options)](system, options)
        return NodalPrepared(circuit, system, solver, time.perf_counter() - t0)


ENGINE = NodalEngine()
