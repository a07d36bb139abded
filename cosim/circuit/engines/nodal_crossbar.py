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
the exact transfer, computed on first use), or "auto": the transfer once it exists; else the
read through the unit excitations of just the ports the batch touches (its driven inputs, or
the outputs a caller asks for with :meth:`CrossbarPrepared.solve_outputs`; shared by both read
directions of the array, :func:`transfer.partial_read`) when the ones still missing cost fewer
solves than the batch and than the full transfer; else the transfer when the batch is larger
than the excited family (k + 1 solves build it); PCG otherwise. Every one is certified to
``options.rtol``. A read the excitations cannot certify is tried again as the batch's common
part (a bias row), solved once by PCG, plus the rest through the excitations; one that still
fails is solved by PCG, once per direction (reads are linear in the inputs without bias
sources). Node voltages and cell currents always come from PCG (the transfer holds no nodes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from cosim.circuit.engines.base import Prepared, ReadResult, SolverOptions
from cosim.circuit.model import Circuit, as_batch
from cosim.circuit.solvers import circuits, pcg
from cosim.circuit.solvers import transfer as tr
from cosim.circuit.solvers.lineblock import LineBlocks
from cosim.circuit.solvers.transfer import PortResponse, Transfer, chunk_size, transfer_for
from cosim.circuit.spec import CrossbarSpec
from cosim.errors import ConvergenceError, EngineError

log = logging.getLogger(__name__)

#: Largest number of previous solutions kept to warm-start the successor's reads.
WARM_VECTORS = 32
#: A read goes through port excitations (transfer.partial_read) when this many times the
#: excitations (and offset) it still needs costs fewer solves than its batch: an excitation is
#: converged tighter (transfer.EXCITE_MARGIN), and a few reads may fail their bound and be
#: solved by PCG.
PORT_COST = 1.5


def _bound(currents: np.ndarray, err: np.ndarray) -> np.ndarray:
    """Relative bound (B,) of reads ``currents`` (B, k), A, with ℓ1 error bound ``err`` (B,), A:
    PCG's certified bound, same rule."""
    return pcg._ratio(err, np.abs(currents).sum(axis=1) - err)


@dataclass(eq=False)
class _Shared:
    """What the two read directions of one array share: line blocks and the port response."""

    blocks: LineBlocks
    warm: PortResponse | None = None
    response: PortResponse | None = None
    excitations: tr.Excitations = field(default_factory=lambda: tr.Excitations({}, {}))
    ports_failed: bool = False  # an excitation did not converge: reads stay on PCG

    def port_response(self, options: SolverOptions, label: str) -> PortResponse:
        if self.response is None:
            self.response = PortResponse.compute(self.blocks, rtol=options.rtol * tr.EXCITE_MARGIN,
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
    _offset: tuple[np.ndarray, float] | None = field(default=None, repr=False)

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
        result = None if want_nodes or want_cells else self._solve_fast(v, np.arange(c.n_outputs))
        if result is None:
            result = self._solve_pcg(v, want_nodes, want_cells)
        info = {"prepare_time": self.prepare_time, "unknowns": self.blocks.n_free, "rtol": self.options.rtol,
                "ir_parameter": self.blocks.ir_parameter(), **result.pop("info")}
        if self.reason:
            info["auto"] = self.reason
        return ReadResult(engine="nodal", elapsed=time.perf_counter() - t0, info=info, **result)

    def solve_outputs(self, inputs, outputs) -> np.ndarray:
        """Currents (B, len(outputs)), A, of the outputs ``outputs`` (indices) alone: the method
        "auto" may then read them through the excitations of those outputs' ports
        (:func:`transfer.partial_read`), certified as every read is."""
        c = self.circuit
        v, _ = as_batch(inputs, c.n_inputs)
        outputs = np.asarray(outputs, dtype=np.int64)
        if outputs.ndim != 1 or outputs.size and (outputs.min() < 0 or outputs.max() >= c.n_outputs):
            raise EngineError(f"outputs must be indices in 0..{c.n_outputs - 1}")
        result = self._solve_fast(v, outputs)
        return self._solve_pcg(v, False, False)["currents"][:, outputs] if result is None else result["currents"]

    def _solve_fast(self, v: np.ndarray, outputs: np.ndarray) -> dict | None:
        """The read through the transfer or the port excitations where the method allows and it
        pays (module docstring); None: solve by PCG. Currents of ``outputs`` only."""
        method = self.options.method
        if method == "transfer" or (method == "auto" and self._transfer is not None):
            return self._solve_transfer(v, outputs)
        if method != "auto":
            return None
        ports = self._solve_ports(v, outputs)
        if ports is None and v.shape[0] > self._family_size() + 1:
            return self._solve_transfer(v, outputs)
        return ports

    def _family_size(self) -> int:
        """Excitations the full transfer needs (its offset solve aside): the smaller line family."""
        return min(self.blocks.n, self.blocks.m)

    def _solve_ports(self, v: np.ndarray, outputs: np.ndarray) -> dict | None:
        """The read from the excitations of the ports it touches (:func:`transfer.partial_read`)
        when the ones still missing cost fewer solves than the batch (:data:`PORT_COST`) and than
        the full transfer; None otherwise. Arrays that need a rebase are left to PCG (their
        rounding floor may not allow the excitations' tighter tolerance)."""
        c, b, o, sh = self.circuit, self.blocks, self.options, self.shared
        if sh.ports_failed or pcg._rebase_worth(b):
            return None
        ins, outs = tr.touched(c, v, outputs)
        need = min(sh.excitations.missing(ins), sh.excitations.missing(outs), key=len)
        cost = need.size + (self._offset is None and bool(c.vsrc_dc.any()))  # bias sources: an offset solve
        if PORT_COST * cost >= v.shape[0] or cost >= self._family_size():
            return None
        t0 = time.perf_counter()
        rtol = o.rtol * tr.EXCITE_MARGIN
        try:
            if need.size:
                sh.excitations.add(b, need, rtol=rtol, maxiter=o.maxiter, label=self.label)
            if self._offset is None:
                self._offset = tr.offset_solve(c, b, sh.excitations, rtol=rtol, maxiter=o.maxiter, label=self.label)
        except ConvergenceError as exc:
            log.info("%s: port excitations not certified (%s); reads stay on pcg", self.label, exc)
            sh.ports_failed = True
            return None
        currents, err = tr.partial_read(c, sh.excitations, self._offset, v, outputs)
        split = self._split_common(v, outputs, currents, err)
        bound, redo = self._certify(v, outputs, currents, err)
        log.debug("%s: %d reads from %d port excitations (%d new; %d less a common part) in %.3g s", self.label,
                  v.shape[0], len(sh.excitations.y), need.size, split, time.perf_counter() - t0)
        return {"currents": currents, "branch_currents": None, "node_voltages": None, "cell_currents": None,
                "residual": float(err.max(initial=0.0)) / max(float(np.abs(currents).max(initial=0.0)), 1e-300),
                "info": {"method": "ports", "error_bound": float(bound.max(initial=0.0)),
                         "excitations": len(sh.excitations.y), "new_excitations": int(need.size),
                         "less_common_part": split,
                         "resolved_by_pcg": redo}}

    def _split_common(self, v: np.ndarray, outputs: np.ndarray, currents: np.ndarray, err: np.ndarray) -> int:
        """Reads whose bound exceeds rtol, read again in place as the batch's common part (the
        inputs equal and non-zero in every vector: a bias row) solved once by PCG to
        rtol·EXCITE_MARGIN, plus the rest through the excitations. A convolution's patches of
        an empty background drive little beyond their bias, so the rest's bound through the
        outputs' excitations (max |input| · Σ ρ) is small against the read. Only without bias
        sources (reads linear in the inputs) and when more than one read fails (it costs a
        solve). Returns the reads it improved; ``currents`` and ``err`` are updated."""
        c, b, o = self.circuit, self.blocks, self.options
        fail = np.flatnonzero(_bound(currents, err) > o.rtol)
        if fail.size < 2 or c.vsrc_dc.any():
            return 0
        same = (v == v[:1]).all(axis=0) & (v[0] != 0.0)
        if not same.any():
            return 0
        common = np.where(same, v[0], 0.0)
        part = tr.partial_read(c, self.shared.excitations, self._offset, v[fail] - common, outputs)
        if part is None:
            return 0
        try:
            # converged against the outputs read, not every port: the read may keep a few of them
            res = pcg.solve(b, None, tr.sense_ports(c, outputs), rtol=o.rtol * tr.EXCITE_MARGIN, maxiter=o.maxiter,
                            label=f"{self.label} (common part)", shifts=b.shifts(c.source_values(common[None])),
                            keep_rows=False, keep_cols=False)
        except ConvergenceError:
            return 0
        cur, e = part
        cur += c.outputs_from_branches(res.branch)[0][outputs]
        e += float(res.kcl_l1[0])  # the ℓ1 KCL residual bounds the ℓ1 error of every port current
        better = e < err[fail]
        currents[fail[better]], err[fail[better]] = cur[better], e[better]
        return int(better.sum())

    def _certify(self, v: np.ndarray, outputs: np.ndarray, currents: np.ndarray,
                 err: np.ndarray) -> tuple[np.ndarray, int]:
        """(Relative bound (B,), number re-solved) of reads with ℓ1 error bound ``err`` (B,), A; reads over rtol (inputs
        that nearly cancel, tiny outputs) are solved again by PCG in place."""
        bound = _bound(currents, err)
        redo = np.flatnonzero(bound > self.options.rtol)
        if redo.size:
            # The reads that fail are mostly ones that drive a single port (a convolution's
            # patches at an object's edge: a loose bound through the outputs' excitations), and
            # without bias sources a read is linear in its inputs: solve each direction once.
            w = v[redo]
            scale = np.ones(redo.size)
            if not self.circuit.vsrc_dc.any():  # no bias sources: reads are linear in the inputs
                scale = w[np.arange(redo.size), np.abs(w).argmax(axis=1)]
                scale[scale == 0.0] = 1.0
                w = w / scale[:, None]
            again, where = np.unique(w, axis=0, return_inverse=True)
            log.info("%s: %d of %d reads (%d directions) re-solved by pcg", self.label, redo.size, v.shape[0],
                     again.shape[0])
            sub = self._solve_pcg(again, False, False)
            currents[redo] = sub["currents"][where.reshape(-1)][:, outputs] * scale[:, None]
            bound[redo] = sub["info"]["error_bound"]
        return bound, int(redo.size)

    def _solve_pcg(self, v: np.ndarray, want_nodes: bool, want_cells: bool) -> dict:
        c, b, o = self.circuit, self.blocks, self.options
        bsz = v.shape[0]
        branch = np.empty((bsz, b.n + b.m))
        bound, kcl_max = np.empty(bsz), 0.0
        nodes = np.empty((bsz, b.n_nodes)) if want_nodes else None
        cells = np.empty((bsz, b.n, b.m)) if want_cells else None
        iters, step = 0, chunk_size(b)
        last, warm_used = None, False
        # The drops are kept to warm-start the successor's reads, which only arrays needing many
        # iterations can use (pcg.warm_can_pay).
        keep = want_nodes or want_cells or pcg.warm_can_pay(b)
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
                            shifts=(s_r, s_c), keep_rows=want_nodes or want_cells, keep_cols=keep)
            branch[a:e], bound[a:e] = res.branch, res.bound
            iters = max(iters, res.iterations)
            kcl_max = max(kcl_max, res.max_residual(b))
            if want_nodes:
                nodes[a:e] = b.node_voltages(res.d_r, res.d_c, s_r, s_c, ports)
            if want_cells:
                cells[a:e] = b.cell_currents(res.d_r, res.d_c, b.drive(s_r, s_c) if drive is None else drive)
            last = (res.d_c, ports) if keep else None
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
            self._transfer = transfer_for(self.circuit, self.blocks, resp, rtol=o.rtol * tr.EXCITE_MARGIN,
                                          maxiter=o.maxiter, label=self.label)
        return self._transfer

    def _solve_transfer(self, v: np.ndarray, outputs: np.ndarray) -> dict:
        t_built = self._transfer is not None
        currents, err = self.transfer().read(v)
        currents = currents[:, outputs]
        # The transfer bounds the ℓ1 error of all outputs: of a part of them too.
        bound, redo = self._certify(v, outputs, currents, err)
        denom = max(float(np.abs(currents).max(initial=0.0)), 1e-300)
        return {"currents": currents, "branch_currents": None, "node_voltages": None, "cell_currents": None,
                "residual": float(err.max(initial=0.0)) / denom,
                "info": {"method": "transfer", "error_bound": float(bound.max(initial=0.0)),
                         "transfer_reused": t_built, "resolved_by_pcg": redo,
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
            # Without a spec, with_devices changed only the cells (by construction); a circuit
            # built again from a spec may have opened or closed an island.
            if self.spec is None or circuits.same_except_cells(self.circuit, circuit):
                blocks = self.blocks.with_devices(circuits.cells(circuit))
            else:  # an island opened or closed: extract again
                blocks = LineBlocks.from_circuit(circuit)
            shared = _Shared(blocks, warm=self.shared.response if warm else None)
        new = CrossbarPrepared(circuit, self.options, shared, time.perf_counter() - t0, spec, self.reason)
        if warm and self._last is not None:
            new._warm = self._last
        return new
