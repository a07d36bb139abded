"""The exact effective transfer of a parasitic crossbar, computed once and read by a matmul.

With fixed conductances the array is linear in its port potentials: the currents from the array
into the ports are ``I = Y·P`` with ``Y`` the (N+M)×(N+M) port admittance (negated), symmetric
by reciprocity. A read drives some ports with its inputs and holds the rest at fixed biases, so

    I_out = I_0 + v · T,   T[i, o] = Y[port(i), port(o)],   I_0 = (Y · P_dc)[out]

:class:`PortResponse` computes the columns of ``Y`` for every port of *one* family (rows or
columns, whichever has fewer lines) by batched PCG with unit excitations. That family holds the
inputs of one read direction and the outputs of the other, so by symmetry one response serves the
forward read and the transpose read of the same array; each read direction adds one solve for
its bias offset ``I_0``.

Error bound. Each excitation solve ``p`` reports its ℓ1 KCL residual ``ρ_p`` (A), which bounds
the ℓ1 error of all its port currents (see :mod:`pcg`). A read then has
``‖ΔI_out‖₁ ≤ ρ_0 + Σ_i |v_i| ρ_port(i)`` when the excited family holds the inputs, and
``≤ ρ_0 + ‖v‖_∞ Σ_o ρ_port(o)`` when it holds the outputs. Reads whose bound exceeds ``rtol``
are re-solved by PCG (see :mod:`prepared`), so a transfer read is never less exact than one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from cosim.circuit.model import Circuit
from cosim.circuit.solvers import kernels, multirhs, pcg
from cosim.circuit.solvers.lineblock import LineBlocks
from cosim.errors import EngineError

log = logging.getLogger(__name__)

#: Work memory a batched solve may use for its vectors, bytes (chunks the batch to fit).
WORK_BYTES = 1.5 * 2**30
#: Largest set of excitation solutions kept to warm-start the next response, bytes.
KEEP_BYTES = 0.5 * 2**30


def chunk_size(blocks: LineBlocks) -> int:
    """Right-hand sides solved together so their work arrays fit in :data:`WORK_BYTES`; for the
    compiled lanes (:mod:`multirhs`) a whole number of lane blocks per thread, up to twice the
    budget (a 10-vector chunk of a 1024² array would leave six of its sixteen lanes idle)."""
    per = pcg.VECTORS_PER_RHS * blocks.n * blocks.m * 8
    step = max(1, int(WORK_BYTES // per))
    lanes = multirhs.LANES * kernels.threads()
    if multirhs.pays(blocks, lanes):  # lanes ≥ MIN_BATCH: as pays(step) or pays(lanes)
        if step >= lanes:
            return step - step % lanes
        if lanes * per <= 2 * WORK_BYTES:
            return lanes
    return step


def solve_ports(blocks: LineBlocks, ports: np.ndarray, out_ports: np.ndarray, *, rtol: float,
                maxiter: int, label: str, x0: np.ndarray | None = None, keep: bool = False,
                atol: float = 0.0, v_float: float | None = None):
    """Solve for port potentials ``ports`` (B, N+M) in chunks.

    Returns (port currents (B, N+M) A, ℓ1 KCL residuals (B,) A, bounds (B,), iterations,
    column IR drops (B, N, M) V if ``keep`` else None).
    """
    bsz = ports.shape[0]
    step = chunk_size(blocks)
    branch = np.empty((bsz, blocks.n + blocks.m))
    kcl, bound = np.empty(bsz), np.empty(bsz)
    kept = np.empty((bsz, blocks.n, blocks.m)) if keep else None
    iters = 0
    for a in range(0, bsz, step):
        b = min(bsz, a + step)
        s_r, s_c = blocks.shifts(ports[a:b], v_float)
        res = pcg.solve(blocks, None, out_ports, rtol=rtol, maxiter=maxiter, shifts=(s_r, s_c),
                        x0=None if x0 is None else x0[a:b], atol=atol, label=label, keep_rows=False,
                        keep_cols=keep)
        branch[a:b], kcl[a:b], bound[a:b] = res.branch, res.kcl_l1, res.bound
        iters = max(iters, res.iterations)
        if keep:
            kept[a:b] = res.d_c
    return branch, kcl, bound, iters, kept


@dataclass(slots=True)
class PortResponse:
    """Columns of the port admittance for unit potentials on every port of one line family.

    Attributes:
        family: "rows" or "cols", the excited family.
        ports: (k,) excited port indices into the N+M ports (rows first, then columns).
        y: (k, N+M) currents from the array into every port per excitation, A/V = S.
        rho: (k,) ℓ1 KCL residual of each excitation solve, A (bounds its current errors).
        iterations: largest PCG iteration count over the chunks.
        solutions: (k, N, M) column IR drops per excitation, V, kept to warm-start the response
            after a conductance update (None when larger than :data:`KEEP_BYTES`).
    """

    family: str
    ports: np.ndarray
    y: np.ndarray
    rho: np.ndarray
    iterations: int
    solutions: np.ndarray | None

    @classmethod
    def compute(cls, blocks: LineBlocks, *, rtol: float, maxiter: int, label: str,
                warm: PortResponse | None = None) -> PortResponse:
        """Excite the smaller family; ``warm`` (same array, old devices) seeds every solve where
        a warm start pays: with the compiled kernels a cold solve of an array that converges in
        a few iterations costs less than the warm start's set-up (the 64 excitations of a 64×64
        tile after a 2 % update, benchmarks/bench_scale.py part "kernels"), so the warm start is
        kept where :func:`pcg.warm_can_pay`."""
        n, m = blocks.n, blocks.m
        family = "rows" if n <= m else "cols"
        ports = np.arange(n) if family == "rows" else n + np.arange(m)
        other = n + np.arange(m) if family == "rows" else np.arange(n)
        unit = np.zeros((ports.size, n + m))
        unit[np.arange(ports.size), ports] = 1.0
        x0 = None
        pays = not kernels.ENABLED or pcg.warm_can_pay(blocks)
        if warm is not None and warm.solutions is not None and warm.family == family and pays:
            x0 = warm.solutions
        keep = ports.size * n * m * 8 <= KEEP_BYTES
        y, rho, _, iters, sol = solve_ports(blocks, unit, other, rtol=rtol, maxiter=maxiter,
                                            label=f"{label} (transfer)", x0=x0, keep=keep,
                                            v_float=0.0)
        log.debug("%s: port response of %d %s in %d iterations", label, ports.size, family, iters)
        return cls(family, ports, y, rho, iters, sol)


@dataclass(frozen=True, slots=True)
class Transfer:
    """``I_out = offset + v · matrix`` for one read direction of one circuit.

    Attributes:
        matrix: (n_inputs, n_outputs) effective conductances, S (the parasitic counterpart of G).
        offset: (n_outputs,) output currents with every input at 0 V, A.
        rho_in: (n_inputs,) per-input error weights, A/V (excited family holds the inputs), or
            None.
        rho_all: total residual of the output excitations, A/V (family holds the outputs), or 0.
        rho_0: ℓ1 KCL residual of the offset solve, A.
    """

    matrix: np.ndarray
    offset: np.ndarray
    rho_in: np.ndarray | None
    rho_all: float
    rho_0: float

    def read(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(currents (B, n_out) A, certified ℓ1 error bound (B,) A) for inputs (B, n_in) V."""
        currents = v @ self.matrix + self.offset
        if self.rho_in is not None:
            err = self.rho_0 + np.abs(v) @ self.rho_in
        else:
            err = self.rho_0 + np.abs(v).max(axis=1, initial=0.0) * self.rho_all
        return currents, err


def transfer_for(circuit: Circuit, blocks: LineBlocks, resp: PortResponse, *, rtol: float,
                 maxiter: int, label: str) -> Transfer:
    """Assemble the :class:`Transfer` of ``circuit`` from a shared port response (+1 solve)."""
    c = circuit
    n_ports = blocks.n + blocks.m
    # The offset: every source at its dc value, inputs at 0 V.
    dc = c.source_values(np.zeros((1, c.n_inputs)))
    out_ports = np.unique(c.out_src)
    # The offset may be ~0 A: converge it against the current of one typical line at 1 V.
    other = np.setdiff1d(np.arange(n_ports), resp.ports)
    per_line = float(np.abs(resp.y[:, other]).sum() / max(resp.ports.size, 1))
    y0, rho0, _, _, _ = solve_ports(blocks, dc, out_ports, rtol=rtol, maxiter=maxiter,
                                    label=f"{label} (offset)", atol=rtol * per_line)
    pos = np.full(n_ports, -1)
    pos[resp.ports] = np.arange(resp.ports.size)
    driven = np.flatnonzero(c.vsrc_input >= 0)
    # Source index == port index for a built crossbar (vd rows, then vs columns).
    t_src = np.zeros((c.n_inputs, c.out_src.size))
    rho_in = np.zeros(c.n_inputs) if np.all(pos[driven] >= 0) else None
    if rho_in is not None:
        for s in driven:  # one row of T per driven source (≤ N+M, vectorised inside)
            k = pos[s]
            t_src[c.vsrc_input[s]] += c.vsrc_scale[s] * resp.y[k, c.out_src]
            rho_in[c.vsrc_input[s]] += abs(c.vsrc_scale[s]) * resp.rho[k]
        rho_all = 0.0
    else:
        k_out = pos[c.out_src]
        if np.any(k_out < 0):
            raise EngineError("the port response covers neither the inputs nor the outputs of this read")
        for s in driven:
            t_src[c.vsrc_input[s]] += c.vsrc_scale[s] * resp.y[k_out, s]
        rho_all = float(np.abs(c.vsrc_scale[driven]).max(initial=0.0) * resp.rho[np.unique(k_out)].sum())
    matrix = np.zeros((c.n_inputs, c.n_outputs))
    np.add.at(matrix.T, c.out_index, t_src.T)
    offset = c.outputs_from_branches(y0)[0]
    return Transfer(matrix, offset, rho_in, rho_all, float(rho0[0]))


# -- reads through the excitations of the few ports they touch -----------------------------------
#
# A training batch often touches few ports: the transpose read of a 10-output layer drives 10 of
# the tile's columns, the last row block of a layer drives the 17 rows it holds, and a forward
# read whose caller keeps 10 of the outputs needs those 10 alone. By reciprocity, unit
# excitations of just those ports give every current the read needs, so such a read costs one
# solve per touched port (shared by the two read directions) instead of one per input vector.

#: Excitation solves (of the full response and of single ports) are converged to this fraction of
#: the reads' rtol: a read adds their errors weighted by |input| (or by max |input|), which
#: cancelling inputs (signed backpropagated errors) make large against its own currents. Much
#: tighter is not reachable: a unit excitation's rounding floor is ~3e-12 of its currents
#: (128×128, 1 Ω, 1–100 µS). Reads whose certified bound exceeds rtol are solved by PCG.
EXCITE_MARGIN = 0.25


@dataclass(slots=True)
class Excitations:
    """Unit-potential solves of single ports of one array, added on demand and shared by its two
    read directions: ``y[port]`` the currents (N+M,) from the array into every port, A/V, and
    ``rho[port]`` the ℓ1 KCL residual of that solve, A/V (it bounds the ℓ1 error of ``y[port]``)."""

    y: dict[int, np.ndarray]
    rho: dict[int, float]

    def missing(self, ports: np.ndarray) -> np.ndarray:
        """The ports of ``ports`` not excited yet."""
        return np.array([p for p in np.unique(ports).tolist() if p not in self.y], dtype=np.int64)

    def add(self, blocks: LineBlocks, ports: np.ndarray, *, rtol: float, maxiter: int, label: str) -> None:
        """Excite ``ports`` (each alone at 1 V, every other port at 0 V, floating lines at 0 V),
        each solve certified to ``rtol`` against the currents into the other line family."""
        n, m = blocks.n, blocks.m
        for fam, other in ((ports[ports < n], n + np.arange(m)), (ports[ports >= n], np.arange(n))):
            if not fam.size:
                continue
            unit = np.zeros((fam.size, n + m))
            unit[np.arange(fam.size), fam] = 1.0
            y, rho, _, _, _ = solve_ports(blocks, unit, other, rtol=rtol, maxiter=maxiter,
                                          label=f"{label} (port excitations)", v_float=0.0)
            for k, p in enumerate(fam.tolist()):
                self.y[p], self.rho[p] = y[k], float(rho[k])


def touched(circuit: Circuit, v: np.ndarray, outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(driven ports with a non-zero input somewhere in the batch ``v`` (B, n_inputs), the sense
    ports of ``outputs``) of a built crossbar, whose port index is its source index."""
    c = circuit
    driven = np.flatnonzero(c.vsrc_input >= 0)
    live = np.any(v != 0.0, axis=0)
    return driven[live[c.vsrc_input[driven]]], sense_ports(c, outputs)


def sense_ports(circuit: Circuit, outputs: np.ndarray) -> np.ndarray:
    """The sense ports (source indices) of the outputs ``outputs`` of a built crossbar."""
    return np.unique(circuit.out_src[np.isin(circuit.out_index, outputs)])


def offset_solve(circuit: Circuit, blocks: LineBlocks, exc: Excitations, *, rtol: float, maxiter: int,
                 label: str) -> tuple[np.ndarray, float]:
    """Port currents (N+M,) A and ℓ1 KCL residual (A) with every input at 0 V (the bias
    sources alone): exactly zero without biases, else one solve converged against the current
    of one excited line at 1 V (the offset itself may be ~0 A), as :func:`transfer_for` does."""
    dc = circuit.source_values(np.zeros((1, circuit.n_inputs)))
    if not dc.any():
        return np.zeros(blocks.n + blocks.m), 0.0
    per_line = max((float(np.abs(y).sum()) / 2 for y in exc.y.values()), default=0.0)
    y0, rho0, _, _, _ = solve_ports(blocks, dc, np.unique(circuit.out_src), rtol=rtol, maxiter=maxiter,
                                    label=f"{label} (offset)", atol=rtol * per_line)
    return y0[0], float(rho0[0])


def partial_read(circuit: Circuit, exc: Excitations, offset: tuple[np.ndarray, float], v: np.ndarray,
                 outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Output currents (B, len(outputs)), A, and their certified ℓ1 error bound (B,), A, of the
    read ``v`` (B, n_inputs), V, from the excitations of the ports it touches; None when
    ``exc`` holds neither all the driven ports with a non-zero input nor all the outputs' ports.

    Bound (see :class:`Transfer`): ρ₀ + Σ_s |scale_s·v_s| ρ_s over the driven sources s when
    those are excited; ρ₀ + max_s |scale_s·v_s| · Σ_t ρ_t over the outputs' sources t when those
    are (each excitation's ℓ1 residual bounds the ℓ1 error of all its port currents).
    """
    c = circuit
    y0, rho0 = offset
    ins, outs = touched(c, v, outputs)
    pos = np.full(c.n_outputs, -1)
    pos[outputs] = np.arange(outputs.size)
    sel = np.isin(c.out_index, outputs)
    o_src, o_pos = c.out_src[sel], pos[c.out_index[sel]]  # sense sources of the outputs, and where
    vs = v[:, c.vsrc_input[ins]] * c.vsrc_scale[ins]  # (B, |ins|): each driven source's potential
    currents = np.broadcast_to(c.outputs_from_branches(y0[None])[0][outputs], (v.shape[0], outputs.size)).copy()
    if not ins.size:  # every input at 0 V: the offset alone
        return currents, np.full(v.shape[0], rho0)
    if all(p in exc.y for p in ins.tolist()):
        y = np.array([exc.y[p] for p in ins.tolist()]).reshape(ins.size, y0.size)[:, o_src]  # (|ins|, |o_src|)
        t = np.zeros((ins.size, outputs.size))
        np.add.at(t.T, o_pos, y.T)
        currents += vs @ t
        err = rho0 + np.abs(vs) @ np.array([exc.rho[p] for p in ins.tolist()])
    elif all(p in exc.y for p in outs.tolist()):
        y = np.array([exc.y[p] for p in o_src.tolist()]).reshape(o_src.size, y0.size)[:, ins]  # Y[t, s] = Y[s, t]
        t = np.zeros((ins.size, outputs.size))
        np.add.at(t.T, o_pos, y)
        currents += vs @ t
        err = rho0 + np.abs(vs).max(axis=1, initial=0.0) * sum(exc.rho[p] for p in outs.tolist())
    else:
        return None
    return currents, err
