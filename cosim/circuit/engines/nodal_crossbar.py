"""The nodal engine's crossbar read: the line-block solvers behind the engine interface.

One object per read direction of one array. It holds the line-block factorisations and, once
computed, the exact transfer of its read (like a factorisation: computed once, reused). The
forward and transpose reads of an array share one :class:`LineBlocks` and one port response
(:meth:`CrossbarPrepared.for_circuit`). After a training update, :meth:`update_conductances`
returns the prepared array for the new devices, warm-started from this one: PCG reads start
from the Galerkin projection onto this object's last solutions when that pays (the new inputs
lie near the span of the old ones and the array needs many iterations, :func:`pcg.warm_pays`),
the transfer's excitation solves from their previous solutions when the array needs many
iterations (:meth:`PortResponse.compute`). Results are certified to ``options.rtol`` either way.

Per solve the path is chosen by ``options.method``: "pcg" (batched PCG), "transfer" (matmul on
the exact transfer, computed on first use), or "auto": the transfer once it exists or when the
batch is larger than the excited family (k + 1 solves build it), PCG otherwise. Node voltages and
cell currents always come from PCG (the transfer holds no nodes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from cosim.circuit.engines.base import Prepared, ReadResult, SolverOptions
from cosim.circuit.model import Circuit, as_batch
from cosim.circuit.solvers import circuits, pcg
from cosim.circuit.solvers.lineblock import LineBlocks
from cosim.circuit.solvers.transfer import PortResponse, Transfer, chunk_size, transfer_for
from cosim.circuit.spec import CrossbarSpec
from cosim.errors import EngineError

log = logging.getLogger(__name__)

#: Largest number of previous solutions kept to warm-start the successor's reads.
WARM_VECTORS = 32


@dataclass(eq=False)
class _Shared:
    """What the two read directions of one array share: line blocks and the port response."""

    blocks: LineBlocks
    warm: PortResponse | None = None
    response: PortResponse | None = None

    def port_response(self, options: SolverOptions, label: str) -> PortResponse:
        if self.response is None:
            self.response = PortResponse.compute(self.blocks, rtol=options.rtol / 4,
                                                 maxiter=options.maxiter, label=label, warm=self.warm)
            self.warm = None
        return self.response


@dataclass(eq=False)
class CrossbarPrepared(Prepared):
    """A crossbar read prepared for the line-block solvers (see the module docstring)."""

    circuit: Circuit
    options: SolverOptions
    shared: _Shared
    prepare_time: float
    spec: CrossbarSpec | None = None
    reason: str = ""
    _transfer: Transfer | None = field(default=None, repr=False)
    _warm: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _last: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def prepare(cls, circuit: Circuit, options: SolverOptions, *, spec: CrossbarSpec | None = None,
                blocks: LineBlocks | None = None, reason: str = "") -> CrossbarPrepared:
        """Extract and factor the line blocks (raises lineblock.Unsupported with the reason)."""
        t0 = time.perf_counter()
        blocks = blocks if blocks is not None else LineBlocks.from_circuit(circuit)
        return cls(circuit, options, _Shared(blocks), time.perf_counter() - t0, spec, reason)

    @property
    def blocks(self) -> LineBlocks:
        return self.shared.blocks

    @property
    def label(self) -> str:
        return self.circuit.title or "crossbar"

    # -- reads -------------------------------------------------------------------------------
    def solve(self, inputs, *, want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
        """Output currents (B, n_outputs) in A for inputs (B, n_inputs) in V; see ReadResult."""
        c = self.circuit
        v, _ = as_batch(inputs, c.n_inputs)
        t0 = time.perf_counter()
        k = min(self.blocks.n, self.blocks.m)
        method = self.options.method
        use_t = not (want_nodes or want_cells) and (
            method == "transfer" or (method == "auto" and (self._transfer is not None or v.shape[0] > k + 1)))
        if use_t:
            result = self._solve_transfer(v)
        else:
            result = self._solve_pcg(v, want_nodes, want_cells)
        info = {"prepare_time": self.prepare_time, "unknowns": self.blocks.n_free, "rtol": self.options.rtol,
                "ir_parameter": self.blocks.ir_parameter(), **result.pop("info")}
        if self.reason:
            info["auto"] = self.reason
        return ReadResult(engine="nodal", elapsed=time.perf_counter() - t0, info=info, **result)

    def _solve_pcg(self, v: np.ndarray, want_nodes: bool, want_cells: bool) -> dict:
        c, b, o = self.circuit, self.blocks, self.options
        bsz = v.shape[0]
        branch = np.empty((bsz, b.n + b.m))
        bound, kcl_max = np.empty(bsz), 0.0
        nodes = np.empty((bsz, b.n_nodes)) if want_nodes else None
        cells = np.empty((bsz, b.n, b.m)) if want_cells else None
        iters, step = 0, chunk_size(b)
        last, warm_used = None, False
        for a in range(0, bsz, step):
            e = min(bsz, a + step)
            ports = c.source_values(v[a:e])
            s_r, s_c = b.shifts(ports)
            drive = None  # formed only where needed (the compiled cold solve forms it per vector)
            x0 = None
            if self._warm is not None and pcg.warm_pays(b, self._warm[1], ports):
                drive = b.drive(s_r, s_c)
                x0 = pcg.galerkin_guess(b, self._warm[0], drive)
                warm_used = warm_used or x0 is not None
            res = pcg.solve(b, drive, c.out_src, rtol=o.rtol, maxiter=o.maxiter, x0=x0, label=self.label,
                            shifts=(s_r, s_c), keep_rows=want_nodes or want_cells)
            branch[a:e], bound[a:e] = res.branch, res.bound
            iters = max(iters, res.iterations)
            kcl_max = max(kcl_max, res.max_residual(b))
            if want_nodes:
                nodes[a:e] = b.node_voltages(res.d_r, res.d_c, s_r, s_c, ports)
            if want_cells:
                cells[a:e] = b.cell_currents(res.d_r, res.d_c, b.drive(s_r, s_c) if drive is None else drive)
            last = (res.d_c, ports)
        self._last = None if last is None else tuple(np.ascontiguousarray(a[-WARM_VECTORS:]) for a in last)
        denom = max(float(np.abs(branch).max(initial=0.0)), 1e-300)
        return {"currents": c.outputs_from_branches(branch), "branch_currents": branch,
                "node_voltages": nodes, "cell_currents": cells, "residual": kcl_max / denom,
                "info": {"method": "pcg", "iterations": iters, "error_bound": float(bound.max(initial=0.0)),
                         "warm_start": warm_used}}

    def transfer(self) -> Transfer:
        """The exact transfer ``I = offset + v·matrix`` of this read (computed once)."""
        if self._transfer is None:
            o = self.options
            resp = self.shared.port_response(o, self.label)
            self._transfer = transfer_for(self.circuit, self.blocks, resp, rtol=o.rtol / 4,
                                          maxiter=o.maxiter, label=self.label)
        return self._transfer

    def _solve_transfer(self, v: np.ndarray) -> dict:
        t_built = self._transfer is not None
        tr = self.transfer()
        currents, err = tr.read(v)
        total = np.abs(currents).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = np.where(err == 0, 0.0, err / (total - err))
        bound[(total - err <= 0) & (err > 0)] = np.inf
        redo = np.flatnonzero(bound > self.options.rtol)
        if redo.size:
            # Inputs that nearly cancel (tiny outputs) are not certified by the transfer: solve them.
            log.info("%s: %d of %d transfer reads re-solved by pcg", self.label, redo.size, v.shape[0])
            sub = self._solve_pcg(v[redo], False, False)
            currents[redo] = sub["currents"]
            bound[redo] = sub["info"]["error_bound"]
        denom = max(float(np.abs(currents).max(initial=0.0)), 1e-300)
        return {"currents": currents, "branch_currents": None, "node_voltages": None, "cell_currents": None,
                "residual": float(err.max(initial=0.0)) / denom,
                "info": {"method": "transfer", "error_bound": float(bound.max(initial=0.0)),
                         "transfer_reused": t_built, "resolved_by_pcg": int(redo.size),
                         "iterations": self.shared.response.iterations if self.shared.response else 0}}

    # -- sharing and updates -----------------------------------------------------------------
    def for_circuit(self, circuit: Circuit, *, spec: CrossbarSpec | None = None) -> CrossbarPrepared:
        """The prepared read of ``circuit`` (e.g. the transpose read) on the same array.

        Shares the line-block factorisations and the port response; ``circuit`` must have the
        very same resistors and sources (same matrix), which is checked.
        """
        if not circuits.same_network(circuit, self.circuit):
            raise EngineError("for_circuit needs a circuit with the same resistors and sources "
                              "(the other read direction of the same array)")
        return CrossbarPrepared(circuit, self.options, self.shared, 0.0, spec or self.spec, self.reason)

    def update_conductances(self, g_new, *, warm: bool = True,
                            share: CrossbarPrepared | None = None) -> CrossbarPrepared:
        """This read on the same array with device conductances ``g_new`` (N, M), S.

        ``warm`` seeds the new object's solves from this one's; ``share`` (the already updated
        other read direction) reuses its line blocks and port response instead of refactoring.
        """
        t0 = time.perf_counter()
        circuit = circuits.with_devices(self.circuit, g_new, self.spec)
        spec = None if self.spec is None else self.spec.replace(conductances=circuits.check_devices(circuit, g_new))
        if isinstance(share, CrossbarPrepared) and circuits.same_network(circuit, share.circuit):
            shared = share.shared
        else:
            if circuits.same_except_cells(self.circuit, circuit):
                blocks = self.blocks.with_devices(circuits.cells(circuit))
            else:  # an island opened or closed: extract again
                blocks = LineBlocks.from_circuit(circuit)
            shared = _Shared(blocks, warm=self.shared.response if warm else None)
        new = CrossbarPrepared(circuit, self.options, shared, time.perf_counter() - t0, spec, self.reason)
        if warm and self._last is not None:
            new._warm = self._last
        return new
