"""The nodal engine: exact DC solution of the circuit by modified nodal analysis.

Methods (``SolverOptions.method``), registered in :data:`METHODS`:

- "direct": assemble the reduced system and factor it once (SuperLU); ``solve`` reuses the
  factorisation for a whole batch. Works for every circuit; the reference every other path
  must equal.
- "amg": for large general circuits whose reduced matrix is an M-matrix (power grids): CG
  preconditioned by smoothed-aggregation AMG (pyamg), certified by a bound on the node-voltage
  error (cosim.circuit.amg). "auto" picks it for such circuits from
  ``amg.AMG_MIN_UNKNOWNS`` unknowns up, SuperLU below.
- "pcg": for crossbars, conjugate gradients on the line-block structure (cosim.circuit.solvers),
  certified to ``rtol`` in the relative ℓ1 error of the output currents, batched.
- "transfer": for crossbars, the exact effective transfer matrix computed once (batched PCG),
  then every read is a matmul.
- "auto": direct for small arrays and for circuits the line-block path does not handle (the
  reason is in ``info["auto"]``), else the cheaper of direct and pcg by a cost model calibrated
  with benchmarks/bench_scale.py; for a large batch the crossbar path switches to the transfer by itself.

Forward and transpose reads of one array share one preparation: :func:`prepare_pair`, or
``prepared.for_circuit(build_circuit(spec, transpose=True))``. After a training update,
``prepared.update_conductances(g_new)`` (or ``pair.update_conductances``) gives the array with
new devices, warm-started from the old one where the method allows it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.circuit.engines.base import Engine, Prepared, ReadResult, SolverOptions, cell_currents
from cosim.circuit.mna import NodalSystem, assemble_nodal, has_stiff
from cosim.circuit.model import Circuit, as_batch
from cosim.errors import EngineError, TopologyError

if TYPE_CHECKING:
    from cosim.circuit.solvers.lineblock import LineBlocks
    from cosim.circuit.spec import CrossbarSpec

# The crossbar solvers (and numba's compiled kernels behind them) are imported where a crossbar
# needs them, so a general circuit (`cosim solve` on a small deck) never loads them.

log = logging.getLogger(__name__)


class DirectSolver:
    """Sparse LU (SuperLU) of the reduced system; the reference every other path must match.

    A small system assembled dense is solved by LAPACK (numpy.linalg) instead: same refusal of an
    exactly singular matrix, same results to rounding, and no scipy import.
    """

    name = "direct"

    def __init__(self, system: NodalSystem, options: SolverOptions):
        self.dense = system.dense
        if self.dense:
            self.ordering, self.lu = "dense", None
            # LAPACK's LU meets an exactly zero pivot where SuperLU does; slogdet exposes it
            if system.a.shape[0] and np.linalg.slogdet(system.a)[0] == 0:
                raise TopologyError(
                    "the circuit's nodal matrix is singular (Factor is exactly singular); look for "
                    "floating nodes or voltage-source loops with `cosim solve --check`")
            return
        import scipy.sparse.linalg as spla

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
        if self.dense and system.a.shape[0]:
            try:
                x = np.linalg.solve(system.a, rhs)
            except np.linalg.LinAlgError:
                x = np.full_like(rhs, np.nan)
            info: dict = {"ordering": "dense"}
        elif self.lu is None:
            return rhs, {}
        else:
            x = self.lu.solve(np.asfortranarray(rhs))
            info = {"ordering": self.ordering, "lu_nnz": int(self.lu.L.nnz + self.lu.U.nnz)}
        if not np.isfinite(x).all():
            raise TopologyError("the nodal solve produced non-finite potentials: the circuit is singular "
                                "or its values overflow double precision")
        return x, info


@dataclass(slots=True)
class NodalPrepared(Prepared):
    """The direct path: reduced system plus its LU factorisation."""

    circuit: Circuit
    system: NodalSystem
    solver: Any
    prepare_time: float
    spec: CrossbarSpec | None = None
    reason: str = ""
    options: SolverOptions | None = None

    def solve(self, inputs, *, want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
        c = self.circuit
        v, _ = as_batch(inputs, c.n_inputs)
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):  # absurd inputs: refused below, not warned
            rhs, vk = self.system.rhs(c.source_values(v))
            x, info = self.solver.solve(rhs, self.system)
            pot, branch, resid = self.system.recover(x, vk)
        if not np.isfinite(branch).all():
            raise EngineError(f"the nodal solve overflows: a source current is beyond ±1.8e308 A (inputs up to "
                              f"{np.abs(v).max(initial=0):.3g} V); check the values of the sources and resistors")
        currents = c.outputs_from_branches(branch)
        nodes = cells = None
        if want_nodes or want_cells:
            lab_v = np.where(self.system.defined[:, None], pot, np.nan)
            nodes = lab_v[self.system.labels].T
            if want_cells:
                cells = cell_currents(c, nodes)
                self._stiff_cells(cells, x)
        info = {"method": self.solver.name, "prepare_time": self.prepare_time,
                "unknowns": int(self.system.a.shape[0]), **info}
        if self.reason:
            info["auto"] = self.reason
        return ReadResult(
            currents=currents, engine="nodal", elapsed=time.perf_counter() - t0,
            branch_currents=branch, node_voltages=nodes if want_nodes else None,
            cell_currents=cells, residual=resid, info=info,
        )

    def _stiff_cells(self, cells: np.ndarray, x: np.ndarray) -> None:
        """A stiff cell's current is its branch unknown, not g·Δv (which cancels to noise)."""
        stiff = self.system.stiff
        lay = self.circuit.layout
        if stiff is None or lay is None:
            return
        k = stiff.res - lay.cell_res0
        inside = (k >= 0) & (k < lay.n_rows * lay.n_cols)
        flat = cells.reshape(cells.shape[0], -1)
        flat[:, k[inside]] = self.system.stiff_currents(x)[:, inside]

    def for_circuit(self, circuit: Circuit, *, spec: CrossbarSpec | None = None) -> NodalPrepared:
        """The prepared read of ``circuit`` (same resistors and sources) sharing this LU."""
        from cosim.circuit.solvers import circuits

        if not circuits.same_network(circuit, self.circuit):
            raise EngineError("for_circuit needs a circuit with the same resistors and sources "
                              "(the other read direction of the same array)")
        system = dataclasses.replace(self.system, circuit=circuit)
        return NodalPrepared(circuit, system, self.solver, 0.0, spec or self.spec, self.reason, self.options)

    def update_conductances(self, g_new, *, warm: bool = True,
                            share: Prepared | None = None) -> NodalPrepared:
        """This read with device conductances ``g_new`` (N, M), S: assembled and factored again
        (an LU has nothing to warm-start; ``warm`` is accepted for a uniform interface). ``share``,
        the already updated other read direction, lends its factorisation."""
        from cosim.circuit.solvers import circuits

        t0 = time.perf_counter()
        circuit = circuits.with_devices(self.circuit, g_new, self.spec)
        spec = None if self.spec is None else self.spec.replace(
            conductances=circuits.check_devices(circuit, g_new))
        if isinstance(share, NodalPrepared) and circuits.same_network(circuit, share.circuit):
            return share.for_circuit(circuit, spec=spec)
        options = self.options or SolverOptions(method="direct")
        system = assemble_nodal(circuit)
        solver = DirectSolver(system, options)
        return NodalPrepared(circuit, system, solver, time.perf_counter() - t0, spec, self.reason, options)


# -- method registry and the automatic choice ---------------------------------------------------

#: Arrays with at most this many cells always use the direct path (exact to round-off, and
#: cheap). With the compiled kernels the PCG read beats SuperLU above 8×8 (preparation and one
#: 32-input read, benchmarks/bench_scale.py part "kernels"), so only arrays up to 8×8 keep that
#: rule (SMALL_CELLS_COMPILED) and the cost model below decides the rest.
SMALL_CELLS, SMALL_CELLS_COMPILED = 48 * 48, 8 * 8
# Cost model (s); its constants are calibrated with benchmarks/bench_scale.py (parts "ir" and
# "kernels"; results in benchmarks/results/bench_scale.txt): SuperLU (minimum degree) on u
# unknowns ≈ T_LU0 + C_LU·u^1.5; one PCG iteration ≈ C_IT·u + C_STEP·(N+M) (vector passes plus,
# on the numpy path, the per-step overhead of the column sweeps); iterations to 1e-9 ≈
# 2 + 2.2·sqrt(N·M·r·g), plus about 3 iterations' worth of extraction, checks and refinement.
# Compiled kernels: C_IT_COMPILED per unknown where the compiled one-stage read runs (up to
# pcg.NO_REBASE_MAX_CELLS cells), the numpy path's per-element cost above it (memory bound).
C_LU, T_LU0, T_PCG0 = 2.0e-8, 1.0e-3, 2.0e-4
C_IT, C_STEP = 1.2e-8, 2.0e-6
C_IT_COMPILED = 6.0e-9


def estimate_times(blocks: LineBlocks) -> tuple[float, float, float]:
    """(direct s, pcg s, estimated pcg iterations) for one read of ``blocks``."""
    from cosim.circuit.solvers import kernels, pcg

    u = 2 * blocks.n * blocks.m
    its = pcg.estimated_iterations(blocks)
    if kernels.ENABLED:
        per_it = (C_IT_COMPILED if blocks.n * blocks.m <= pcg.NO_REBASE_MAX_CELLS else C_IT) * u
    else:
        per_it = C_IT * u + C_STEP * (blocks.n + blocks.m)
    return T_LU0 + C_LU * u ** 1.5, T_PCG0 + (its + 3) * per_it, its


def choose_method(circuit: Circuit, options: SolverOptions) -> tuple[str, str, LineBlocks | None]:
    """(method, reason, extracted line blocks or None) for ``options.method``.

    An explicit "pcg"/"transfer" still goes to "direct" when the circuit is outside the
    line-block path (the reason says why).
    """
    method = options.method
    if method not in METHODS:
        raise EngineError(f"nodal method {method!r} is not available; choose from "
                          f"{', '.join(k for k in METHODS if not k.startswith('_'))}")
    if method in ("direct", "amg"):
        return method, "", None
    if has_stiff(circuit):  # CG on such a matrix crawls and cannot certify; the branch form is exact
        return "direct", "a conductance over 1e6× its neighbours' (stiff branch): direct", None
    if method == "auto":
        lay = circuit.layout
        if lay is None:
            return "_general", "not a crossbar", None
        from cosim.circuit.solvers import kernels

        small = SMALL_CELLS_COMPILED if kernels.ENABLED else SMALL_CELLS
        if lay.n_rows * lay.n_cols <= small:
            return "direct", f"small array ({lay.n_rows}x{lay.n_cols} ≤ {small} cells): direct", None
    from cosim.circuit.solvers.lineblock import LineBlocks, Unsupported

    try:
        blocks = LineBlocks.from_circuit(circuit)
    except (Unsupported, TopologyError) as exc:
        reason = f"routed to direct: {exc}"
        log.info("%s: %s", circuit.title or "circuit", reason)
        return "direct", reason, None
    if method != "auto":
        return method, "", blocks
    name, reason = METHODS["_auto"](blocks, options)
    return name, reason, blocks


def _auto(blocks: LineBlocks, options: SolverOptions) -> tuple[str, str]:
    t_lu, t_pcg, its = estimate_times(blocks)
    name = "pcg" if t_pcg < t_lu else "direct"
    return name, (f"{name}: est. pcg {t_pcg:.3g} s ({its:.0f} iterations, N·M·r·g = "
                  f"{blocks.ir_parameter():.3g}) vs direct {t_lu:.3g} s")


def _prepare_direct(circuit: Circuit, options: SolverOptions, *, spec=None, reason="", blocks=None):
    t0 = time.perf_counter()
    system = assemble_nodal(circuit)
    solver = DirectSolver(system, options)
    return NodalPrepared(circuit, system, solver, time.perf_counter() - t0, spec, reason, options)


def _prepare_general(circuit: Circuit, options: SolverOptions, *, spec=None, reason="", blocks=None):
    """A circuit that is not a crossbar: SuperLU, or AMG-CG for a large M-matrix (power grids)."""
    from cosim.circuit import amg

    t0 = time.perf_counter()
    system = assemble_nodal(circuit, dense=False if options.method == "amg" else None)
    n = system.a.shape[0]
    if options.method == "amg" and not system.spd:
        raise EngineError("method 'amg' needs a circuit of positive resistors whose sources all "
                          "reach ground (an M-matrix); this one has negative resistors, "
                          "floating or controlled sources: use 'direct'")
    if options.method == "amg" or (system.spd and n >= amg.AMG_MIN_UNKNOWNS):
        solver: Any = amg.AmgSolver(system, options)
        reason = f"{reason}: amg ({n} unknowns, M-matrix)" if reason else ""
    else:
        solver = DirectSolver(system, options)
        reason = f"{reason}: direct ({n} unknowns)" if reason else ""
    return NodalPrepared(circuit, system, solver, time.perf_counter() - t0, spec, reason, options)


def _prepare_crossbar(circuit: Circuit, options: SolverOptions, *, spec=None, reason="", blocks=None):
    from cosim.circuit.engines.nodal_crossbar import CrossbarPrepared

    return CrossbarPrepared.prepare(circuit, options, spec=spec, blocks=blocks, reason=reason)


# method name → preparer(circuit, options, *, spec, reason, blocks) → Prepared; "_auto" is the
# picker (blocks, options) → (method, reason).
METHODS: dict[str, Callable[..., Any]] = {
    "direct": _prepare_direct,
    "amg": _prepare_general,
    "_general": _prepare_general,
    "pcg": _prepare_crossbar,
    "transfer": _prepare_crossbar,
    "auto": _prepare_crossbar,
    "_auto": _auto,
}


class NodalEngine(Engine):
    name = "nodal"
    nonlinear_cells = True  # by Newton on the line blocks (engines/nodal_cells.py)

    def warm_up(self) -> None:
        """Load the compiled solver kernels now (once per process, from numba's on-disk cache)
        instead of in the first read; callers that time their reads call this at set-up."""
        from cosim.circuit.solvers import kernels

        kernels.load()

    def prepare(self, circuit: Circuit, options: SolverOptions, *,
                spec: CrossbarSpec | None = None) -> Prepared:
        """Prepare ``circuit`` by the method ``options`` asks for (see the module docstring).

        ``spec``, when the circuit was built from one, lets ``update_conductances`` rebuild it.
        """
        if circuit.cell_law is not None:
            from cosim.circuit.engines import nodal_cells

            return nodal_cells.prepare(circuit, options)
        if options.check_topology and circuit.layout is None:
            from cosim.circuit.topology import check_topology

            check_topology(circuit)
        name, reason, blocks = choose_method(circuit, options)
        if name not in ("direct", "amg", "_general") and options.method == "auto":
            # The crossbar path keeps "auto" so it may switch to the transfer for big batches.
            name = "auto"
        return METHODS[name](circuit, options, spec=spec, reason=reason, blocks=blocks)


ENGINE = NodalEngine()


@dataclass(frozen=True, slots=True)
class PreparedPair:
    """Forward and transpose reads of one array sharing one preparation."""

    forward: Any
    transpose: Any

    def update_conductances(self, g_new, *, warm: bool = True) -> PreparedPair:
        """Both reads with device conductances ``g_new`` (N, M), S, prepared once."""
        fwd = self.forward.update_conductances(g_new, warm=warm)
        return PreparedPair(fwd, self.transpose.update_conductances(g_new, warm=warm, share=fwd))


def prepare_spec(spec: CrossbarSpec, options: SolverOptions | None = None, *,
                 transpose: bool = False) -> Prepared:
    """Build and prepare one read of ``spec`` through the nodal engine (keeps the spec)."""
    from cosim.circuit.build import build_circuit

    options = options or SolverOptions()
    return ENGINE.prepare(build_circuit(spec, transpose=transpose), options, spec=spec)


def prepare_pair(spec: CrossbarSpec, options: SolverOptions | None = None) -> PreparedPair:
    """Forward and transpose reads of ``spec`` with one shared factorisation / line blocks."""
    from cosim.circuit.build import build_circuit

    fwd = prepare_spec(spec, options)
    return PreparedPair(fwd, fwd.for_circuit(build_circuit(spec, transpose=True), spec=spec))
