"""The engine interface, declared once: ``Engine.prepare(circuit, options) → Prepared``;
``Prepared.solve(v) → ReadResult``; optional ``warm_up``, ``for_circuit`` and
``update_conductances`` with their defaults in the base classes here.

Engines are picked by name, ``SolverOptions.engine``, from the registry
:data:`cosim.catalog.ENGINES`; each solves the same :class:`Circuit`, so "ideal vs parasitic vs
SPICE" is a one-word switch. :func:`prepare` is the one way to prepare a circuit and
:func:`prepare_again` the one way to bring a crossbar read up to date after its devices changed.
Nothing is carried between calls except what a ``Prepared`` object holds for its own circuit (a
factorisation, a compiled netlist).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from cosim.catalog import ENGINES, METHODS, NGSPICE_MODES, ORDERINGS
from cosim.circuit.model import Circuit
from cosim.errors import EngineError, SpecError
from cosim.schema import check_fields, close_match, param

EngineName = Literal["ideal", "nodal", "spice"]
Method = Literal["auto", "direct", "pcg", "transfer"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SolverOptions:
    """Numerics, kept apart from the physics in :class:`CrossbarSpec`.

    Attributes:
        engine: "ideal" (V·G), "nodal" (sparse modified nodal analysis) or "spice" (ngspice).
        method: nodal solver: "direct" (sparse LU, the reference), "pcg" (structure-aware
            iterative, crossbars only), "transfer" (precomputed effective matrix), "amg"
            (algebraic multigrid CG for large general M-matrix circuits, e.g. power grids), or
            "auto".
        rtol: target relative error of the output currents for iterative methods (unitless, >0).
        maxiter: iteration cap for iterative methods (≥ 1).
        ordering: fill-reducing ordering for the direct LU ("auto", "COLAMD", "MMD_AT_PLUS_A",
            "MMD_ATA", "NATURAL").
        check_topology: run the networkx topology checks before solving general circuits.
        ngspice: how to run ngspice: "auto" (shared library, falling back to a subprocess),
            "shared" or "subprocess".
    """

    engine: EngineName = param("nodal", type="str")  # checked against the live ENGINES registry
    method: Method = param("auto", type="str", choices=METHODS)
    rtol: float = param(1e-10, type="float", minimum=0.0, exclusive_min=True)
    maxiter: int = param(500, type="int", minimum=1)
    ordering: str = param("auto", type="str", choices=ORDERINGS)
    check_topology: bool = param(True, type="bool")
    ngspice: Literal["auto", "shared", "subprocess"] = param("auto", type="str", choices=NGSPICE_MODES)

    def __post_init__(self) -> None:
        check_fields(self, "solver")
        if self.engine not in ENGINES:
            raise SpecError.at("solver.engine", f"must be one of {', '.join(ENGINES)}, got {self.engine!r}"
                                                f"{close_match(self.engine, ENGINES)}")

    def replace(self, **changes: Any) -> SolverOptions:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What every engine returns for a batch of B input vectors.

    Attributes:
        currents: (B, n_outputs) output (sense) currents, A.
        engine: name of the engine that produced it.
        elapsed: wall time of the solve, s (excluding ``prepare``).
        branch_currents: (B, n_vsrc) currents of every voltage source, A, SPICE sign convention.
        node_voltages: (B, n_nodes) node voltages, V (ground included; NaN for unused nodes), if
            requested.
        cell_currents: (B, N, M) device currents from row to column node, A, if requested.
        residual: relative KCL residual of the solution (unitless; 0 for the ideal engine).
        info: engine details (method, iterations, ordering, ...).
    """

    currents: np.ndarray
    engine: str
    elapsed: float
    branch_currents: np.ndarray | None = None
    node_voltages: np.ndarray | None = None
    cell_currents: np.ndarray | None = None
    residual: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


class Prepared:
    """Base of every engine's prepared read: the interface the tiles use, with its defaults.

    ``solve`` is required. The rest are optional speed-ups an engine may offer; the defaults
    return None, meaning "nothing to reuse: prepare the circuit again" (:func:`prepare_again`
    does that), so an engine that only solves is complete with ``prepare`` and ``solve``.
    """

    circuit: Circuit
    #: Whether a batch of identical input vectors should be solved once and repeated (a DC read
    #: is a pure function of its inputs); False where a vector costs nothing (a matmul).
    repeat_identical: ClassVar[bool] = True

    def solve(self, inputs: np.ndarray, *, want_nodes: bool = False,
              want_cells: bool = False) -> ReadResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def solve_outputs(self, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Currents (B, len(outputs)), A, of the outputs ``outputs`` (indices) alone, for a
        caller that uses no others; an engine may compute fewer currents for them (the nodal
        crossbar read: the excitations of those outputs' ports). Default: the full read."""
        return self.solve(inputs).currents[:, outputs]

    def for_circuit(self, circuit: Circuit, *, spec: Any = None) -> Prepared | None:
        """The read of ``circuit`` (same resistors and sources, e.g. the other read direction of
        the same array) sharing this preparation; None when the engine shares nothing."""
        return None

    def update_conductances(self, g_new: np.ndarray, *, warm: bool = True,
                            share: Prepared | None = None) -> Prepared | None:
        """This read with device conductances ``g_new`` (N, M), S, warm-started from this one
        where the method allows (``share``: the already updated other read direction); None
        when the engine cannot update in place."""
        return None

    def for_cells(self, circuit: Circuit) -> Prepared | None:
        """The read of ``circuit``, this array with new nonlinear cells (``cell_law``), started
        from this read's last solution; None when the engine has nothing to reuse."""
        return None

    def update_cells(self, g_new: np.ndarray, law: Any) -> Prepared | None:
        """This read with devices of read conductance ``g_new`` (N, M), S, obeying ``law`` (the
        cells' new nonlinear law), without rebuilding the circuit; None when the engine cannot
        (then the caller builds the circuit and asks :meth:`for_cells`)."""
        return None


class Engine:
    """Base of the engines; register an instance in :data:`cosim.catalog.ENGINES`."""

    name: ClassVar[str]
    #: Whether the engine solves circuits whose cells obey nonlinear laws (``Circuit.cell_law``);
    #: :func:`prepare` refuses such a circuit for an engine that does not, never reading it ohmic.
    nonlinear_cells: ClassVar[bool] = False

    def warm_up(self) -> None:
        """One-time set-up (compiled kernels) done when an array is built, not in its first
        read; default: nothing to do."""

    def prepare(self, circuit: Circuit, options: SolverOptions, *,
                spec: Any = None) -> Prepared:  # pragma: no cover - abstract
        """``circuit`` prepared for solving (``spec``, when it was built from one)."""
        raise NotImplementedError


# The registry itself lives in cosim.catalog (name → "module:attribute", imported on first use,
# so `spice` costs nothing until asked for, and the CLI lists the names without loading engines).


def get_engine(name: str) -> Engine:
    """The engine registered under ``name``; :class:`EngineError` names the choices otherwise."""
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    module, attr = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), attr)


def prepare(circuit: Circuit, options: SolverOptions, *, spec: Any = None) -> Prepared:
    """The one way to prepare a circuit: by the engine ``options.engine`` names."""
    engine = get_engine(options.engine)
    if circuit.cell_law is not None and not engine.nonlinear_cells:
        raise EngineError(f"engine {options.engine!r} does not model nonlinear cells "
                          f"({type(circuit.cell_law).__name__} law); use engine nodal, spice or ideal")
    return engine.prepare(circuit, options, spec=spec)


def prepare_again(options: SolverOptions, g: np.ndarray, build: Callable[[], Circuit], *,
                  previous: Prepared | None = None, partner: Prepared | None = None,
                  law: Callable[[], Any] | None = None) -> Prepared:
    """A crossbar read after its devices changed to ``g`` (S): the cheapest the engine offers.

    In order: ``previous`` (this read before the change) updated in place, warm-started (with
    nonlinear cells, ``law()`` gives their new law); ``partner`` (the other read direction,
    already on ``g``) shared for ``build()``; or ``build()`` prepared from scratch. Pass
    neither to prepare from scratch (the reference).
    """
    if previous is not None:
        prep = (previous.update_conductances(g, warm=True, share=partner) if law is None
                else previous.update_cells(g, law()))
        if prep is not None:
            return prep
    circuit = build()
    if previous is not None and circuit.cell_law is not None:
        prep = previous.for_cells(circuit)
        if prep is not None:
            return prep
    if partner is not None:
        prep = partner.for_circuit(circuit)
        if prep is not None:
            return prep
    return prepare(circuit, options)


def cell_currents(circuit: Circuit, node_voltages: np.ndarray) -> np.ndarray:
    """Device currents (B, N, M) in amperes, flowing from row node to column (or mid) node."""
    lay = circuit.layout
    if lay is None:
        raise EngineError("cell currents exist only for crossbar circuits")
    n, m = lay.n_rows, lay.n_cols
    sl = slice(lay.cell_res0, lay.cell_res0 + n * m)
    a, b, g = circuit.res_a[sl], circuit.res_b[sl], circuit.res_g[sl]
    v = np.nan_to_num(node_voltages)
    return (g * (v[:, a] - v[:, b])).reshape(-1, n, m)
