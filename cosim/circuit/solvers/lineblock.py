"""The canonical crossbar as two families of tridiagonal line blocks coupled only by the cells.

Ordered line by line, the nodal matrix of a crossbar (DESIGN.md §5) is

    A = [[A_R, -G], [-G, A_C]]

with ``A_R`` the N row blocks (wire segments, driver ports, cell conductances on the diagonal),
``A_C`` the M column blocks and ``G`` the diagonal of cell conductances. :class:`LineBlocks` reads
these arrays straight out of a :class:`Circuit` built by :func:`build_circuit` (through its
resistor blocks ``rg``, ``ra``, ``rw``, ``rc``, ``rdl``, ``rdr``, ``rsb``, ``rst``), never forming
a sparse matrix, and factors both families of line blocks.

Exact reductions made here:

- A 1T1R mid node joins exactly two resistors (device ``g``, access ``g_a``); eliminating it
  leaves one cell conductance ``g·g_a/(g+g_a)`` between row and column node; its potential is
  recovered afterwards.
- Nodes joined to a port by 0 Ω (``r_driver = 0``, ``r_sense = 0``, grounded unselected lines and
  any 0 Ω wire segments continuing from such an end) are *pinned* to the port potential.
- Nodes with no conducting element at all (islands opened by the builder) are *dead*: they carry
  no current and get NaN potentials, as in the direct path.
- Unknowns are IR drops ``δ = u − s`` with ``s`` the potential of the line's own port (so every
  pinned node has δ = 0): the right-hand side becomes the ideal cell currents and KCL residuals
  are computed from small differences, free of the cancellation of ~1 V potentials.

A 0 Ω wire segment between two unpinned nodes (a merged node inside a line) is not handled here:
:class:`Unsupported` carries the reason and the engine uses the direct path.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from cosim.circuit.model import Circuit
from cosim.circuit.solvers import kernels
from cosim.circuit.solvers.tridiag import ColLines, RowLines

_KNOWN_BLOCKS = {"rg", "ra", "rw", "rc", "rdl", "rdr", "rsb", "rst"}


class Unsupported(Exception):
    """The circuit is outside what the line-block solvers handle; ``str(exc)`` is the reason."""


def _blocks(names) -> dict[str, tuple[int, tuple[int, ...]]]:
    if not hasattr(names, "blocks") or not hasattr(names, "starts"):
        raise Unsupported("the circuit has explicit element names (not a built crossbar)")
    return {p: (int(names.starts[k]), tuple(s)) for k, (p, s) in enumerate(names.blocks)}


def _pins(end_a: np.ndarray, end_b: np.ndarray, seg_inf: np.ndarray) -> np.ndarray:
    """Nodes joined by 0 Ω to a pinned line end; lines along axis 1 of ``seg_inf`` (L, K-1)."""
    lines, k = seg_inf.shape[0], seg_inf.shape[1] + 1
    if not seg_inf.any():  # the usual case: only the end nodes themselves
        pin = np.zeros((lines, k), dtype=bool)
        pin[:, 0] = end_a
        pin[:, -1] |= end_b
        return pin
    from_a = np.logical_and.accumulate(np.concatenate([end_a[:, None], seg_inf], axis=1), axis=1)
    from_b = np.logical_and.accumulate(np.concatenate([end_b[:, None], seg_inf[:, ::-1]], axis=1),
                                       axis=1)[:, ::-1]
    return from_a | from_b


class LineBlocks:
    """Line-block form of one crossbar circuit; see the module docstring.

    Conductances in S, arrays (N, M) with ``i`` the row and ``j`` the column. Built with
    :meth:`from_circuit`; :meth:`with_devices` gives the same array with new device conductances.
    """

    n: int
    m: int

    @classmethod
    def from_circuit(cls, circuit: Circuit) -> LineBlocks:
        """Extract the line blocks of ``circuit``; raises :class:`Unsupported` with the reason."""
        c = circuit
        lay = c.layout
        if lay is None:
            raise Unsupported("the circuit is not a crossbar (no layout)")
        if c.isrc_dc.size:
            raise Unsupported("the circuit has current sources")
        n, m = lay.n_rows, lay.n_cols
        res = _blocks(c.res_names)
        nodes = _blocks(c.node_names)
        extra = set(res) - _KNOWN_BLOCKS
        if extra:
            raise Unsupported(f"unexpected resistor blocks {sorted(extra)}")
        one_t = lay.mid_node0 >= 0
        if "d" not in nodes or "s" not in nodes:
            raise Unsupported("the circuit has no row/column port nodes")
        d0, s0 = nodes["d"][0], nodes["s"][0]
        rid = lay.row_node0 + np.arange(n * m).reshape(n, m)
        cid = lay.col_node0 + np.arange(n * m).reshape(n, m)
        mid = lay.mid_node0 + np.arange(n * m).reshape(n, m) if one_t else None

        def take(prefix, shape, a, b):
            if prefix not in res:
                return None
            start, sh = res[prefix]
            if sh != shape:
                raise Unsupported(f"resistor block {prefix} has shape {sh}, expected {shape}")
            sl = slice(start, start + int(np.prod(shape)))
            if not (np.array_equal(c.res_a[sl], np.ravel(a)) and np.array_equal(c.res_b[sl], np.ravel(b))):
                raise Unsupported(f"resistor block {prefix} does not join the canonical nodes")
            return c.res_g[sl].reshape(shape)

        g_dev = take("rg", (n, m), rid, mid if one_t else cid)
        g_acc = take("ra", (n, m), mid, cid) if one_t else None
        if g_dev is None or (one_t and g_acc is None):
            raise Unsupported("the circuit has no cell resistors")
        zeros_r, zeros_c = np.zeros((n, m - 1)), np.zeros((n - 1, m))
        gw = take("rw", (n, m - 1), rid[:, :-1], rid[:, 1:]) if m > 1 else zeros_r
        gc = take("rc", (n - 1, m), cid[:-1, :], cid[1:, :]) if n > 1 else zeros_c
        if gw is None or gc is None:
            raise Unsupported("the circuit lacks wire segments")
        did, sid = d0 + np.arange(n), s0 + np.arange(m)
        ports = {}
        for prefix, size, a, b in (("rdl", n, did, rid[:, 0]), ("rdr", n, did, rid[:, -1]),
                                   ("rst", m, sid, cid[0, :]), ("rsb", m, sid, cid[-1, :])):
            got = take(prefix, (size,), a, b)
            ports[prefix] = np.zeros(size) if got is None else got
        if not (np.array_equal(c.vsrc_p, np.concatenate([did, sid]))
                and not np.any(c.vsrc_n)):
            raise Unsupported("the sources are not the canonical row/column ports")
        if not np.isfinite(g_dev).all():
            raise Unsupported("a cell has an infinite conductance")

        self = cls()
        self.n, self.m, self.one_t = n, m, one_t
        self.node0 = {"r": lay.row_node0, "c": lay.col_node0, "m": lay.mid_node0, "d": d0, "s": s0}
        self.n_nodes = c.n_nodes
        self.v_ref = float(lay.ideal_offset)
        # Pinning depends on wires and ports only, never on the devices.
        gpl, gpr, gpt, gpb = ports["rdl"], ports["rdr"], ports["rst"], ports["rsb"]
        inf_w, inf_c = np.isinf(gw), np.isinf(gc)
        self.pin_r = _pins(np.isinf(gpl), np.isinf(gpr), inf_w)
        self.pin_c = np.ascontiguousarray(_pins(np.isinf(gpt), np.isinf(gpb), inf_c.T).T)
        for name, inf, pin, axis in (("row", inf_w, self.pin_r, 1), ("column", inf_c, self.pin_c, 0)):
            if not inf.any():
                continue
            lo = pin[:, :-1] if axis == 1 else pin[:-1, :]
            hi = pin[:, 1:] if axis == 1 else pin[1:, :]
            inner = inf & ~(lo & hi)
            if inner.any():
                i, j = np.argwhere(inner)[0]
                raise Unsupported(f"0 Ω {name} wire segment at ({i}, {j}) merges nodes inside a line")
        self._r_mean = None  # mean wire-segment resistance (ir_parameter), set on first use
        self.gw = np.where(inf_w, 0.0, gw) if inf_w.any() else gw
        self.gc = np.where(inf_c, 0.0, gc) if inf_c.any() else gc
        self.gpl, self.gpr = np.where(np.isinf(gpl), 0.0, gpl), np.where(np.isinf(gpr), 0.0, gpr)
        self.gpt, self.gpb = np.where(np.isinf(gpt), 0.0, gpt), np.where(np.isinf(gpb), 0.0, gpb)
        self.row_port = (gpl > 0) | (gpr > 0)
        self.col_port = (gpt > 0) | (gpb > 0)
        # Views into the circuit's arrays (never written): no copies of N·M arrays.
        self.g_acc = g_acc
        self._set_devices(g_dev)
        return self

    def with_devices(self, g_dev: np.ndarray) -> LineBlocks:
        """The same array with device conductances ``g_dev`` (N, M), S; wires and pins shared."""
        new = object.__new__(LineBlocks)
        new.__dict__.update({k: v for k, v in self.__dict__.items()})
        new._set_devices(np.array(g_dev, dtype=float))
        if (self._lines is not None and np.array_equal(new.free_r, self.free_r)
                and np.array_equal(new.free_c, self.free_c)):
            new._lines = self._lines  # wires and free nodes only: unchanged by devices that leave none dead
        return new

    @cached_property
    def wire_max(self) -> float:
        """The largest finite wire conductance, S (0 without wires); kept in the instance, so
        that :meth:`with_devices`, which shares the wires, hands it on."""
        return max(float(np.max(a[np.isfinite(a)], initial=0.0)) for a in (self.gw, self.gc))

    # -- device-dependent part ---------------------------------------------------------------
    def _set_devices(self, g_dev: np.ndarray) -> None:
        # In place wherever possible: at 4096² every full-array copy is 134 MB.
        self.g_dev = g_dev
        if self.g_acc is None:
            g_cell = g_dev
        else:
            ga = self.g_acc
            with np.errstate(invalid="ignore", divide="ignore"):
                series = g_dev * ga / (g_dev + ga)
            g_cell = np.where(np.isinf(ga), g_dev, np.where(g_dev + ga > 0, series, 0.0))
        self.g_cell = g_cell
        self._ir = None
        # derived (kernel_args, multirhs, sinhnewton's line constants and law arrays)
        self._kargs = self._stencil = self._lines = self._law = None
        if kernels.ENABLED and self.n * self.m > 1:
            self._set_devices_compiled(g_cell)
            return
        d_r = g_cell.copy()
        d_r[:, :-1] += self.gw
        d_r[:, 1:] += self.gw
        d_r[:, 0] += self.gpl
        d_r[:, -1] += self.gpr
        d_c = g_cell.copy()
        d_c[:-1, :] += self.gc
        d_c[1:, :] += self.gc
        d_c[0, :] += self.gpt
        d_c[-1, :] += self.gpb
        self.dead_r = np.logical_and(d_r == 0, ~self.pin_r)
        self.dead_c = np.logical_and(d_c == 0, ~self.pin_c)
        self.free_r = fr = ~(self.pin_r | self.dead_r)
        self.free_c = fc = ~(self.pin_c | self.dead_c)
        np.putmask(d_r, ~fr, 1.0)
        np.putmask(d_c, ~fc, 1.0)
        off_r = np.negative(self.gw)
        np.putmask(off_r, ~(fr[:, :-1] & fr[:, 1:]), 0.0)
        off_c = np.negative(self.gc)
        np.putmask(off_c, ~(fc[:-1, :] & fc[1:, :]), 0.0)
        self.couple = g_cell * (fr & fc)
        self.rows = RowLines(d_r, off_r, overwrite=True)
        self.cols = ColLines(d_c, off_c)
        self.n_free = int(fr.sum() + fc.sum())

    def _set_devices_compiled(self, g_cell: np.ndarray) -> None:
        # The same arrays as the numpy lines above, in two compiled passes (kernels.line_blocks):
        # the numpy version's temporaries and transposes cost a large share of a training
        # update's preparation at 256×256 (benchmarks/results/docstring_figures.md).
        n, m = self.n, self.m
        g = np.ascontiguousarray(g_cell, dtype=float)
        self.free_r, self.free_c = np.empty((n, m), dtype=bool), np.empty((n, m), dtype=bool)
        self.couple = np.empty((n, m))
        l_r, dinv_r, l_c, dinv_c = (np.empty((n, m)) for _ in range(4))
        count, bad_r, bad_c = kernels.line_blocks(g, self.gw, self.gc, self.gpl, self.gpr, self.gpt, self.gpb,
                                                  self.pin_r, self.pin_c, self.free_r, self.free_c, self.couple,
                                                  l_r, dinv_r, l_c, dinv_c)
        self.dead_r, self.dead_c = ~(self.free_r | self.pin_r), ~(self.free_c | self.pin_c)
        self.rows, self.cols = RowLines.factored(l_r, dinv_r), ColLines.factored(l_c, dinv_c)
        self.n_free = int(count)
        if bad_r or bad_c:  # the first singular node in row-major order, as the numpy path reports it
            self.rows.check()
            self.cols.check()

    # -- operators (all batched over a leading axis B) ---------------------------------------
    def shifts(self, ports: np.ndarray, v_float: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Line reference potentials (B, N), (B, M) in V from port potentials (B, N+M).

        A line tied to its port uses the port potential; a floating line ``v_float`` (default
        the read's offset, v_sense).
        """
        n = self.n
        v_f = self.v_ref if v_float is None else v_float
        s_r = np.where(self.row_port, ports[:, :n], v_f)
        s_c = np.where(self.col_port, ports[:, n:], v_f)
        return s_r, s_c

    def drive(self, s_r: np.ndarray, s_c: np.ndarray) -> np.ndarray:
        """Cell currents (B, N, M) in A at zero IR drop: g_cell·(s_row − s_col)."""
        return self.g_cell * (s_r[:, :, None] - s_c[:, None, :])

    def leave(self, d_r: np.ndarray, d_c: np.ndarray, drive: np.ndarray | None):
        """Current leaving every row and column node (B, N, M) through resistors, A."""
        # In place where possible: at small sizes fresh temporaries cost as much as the arithmetic.
        cell = np.subtract(d_r, d_c)
        cell *= self.g_cell
        if drive is not None:
            cell += drive
        l_r, l_c = cell, np.negative(cell)
        if self.m > 1:
            w = np.subtract(d_r[:, :, :-1], d_r[:, :, 1:])
            w *= self.gw
            l_r[:, :, :-1] += w
            l_r[:, :, 1:] -= w
        l_r[:, :, 0] += self.gpl * d_r[:, :, 0]
        l_r[:, :, -1] += self.gpr * d_r[:, :, -1]
        if self.n > 1:
            w = np.subtract(d_c[:, :-1, :], d_c[:, 1:, :])
            w *= self.gc
            l_c[:, :-1, :] += w
            l_c[:, 1:, :] -= w
        l_c[:, 0, :] += self.gpt * d_c[:, 0, :]
        l_c[:, -1, :] += self.gpb * d_c[:, -1, :]
        return l_r, l_c

    def kernel_args(self) -> tuple:
        """The array's element arrays in the order the compiled kernels take them, C-contiguous
        (one compiled signature for every array): g_cell, gw, gc, gpl, gpr, gpt, gpb (float64),
        and the boolean masks pin_r, pin_c, free_r, free_c (no copies where already C-ordered)."""
        if self._kargs is None:
            floats = (self.g_cell, self.gw, self.gc, self.gpl, self.gpr, self.gpt, self.gpb)
            masks = (self.pin_r, self.pin_c, self.free_r, self.free_c)
            self._kargs = (tuple(np.ascontiguousarray(a, dtype=np.float64) for a in floats)
                           + tuple(np.ascontiguousarray(a, dtype=np.bool_) for a in masks))
        return self._kargs

    def leave_branch(self, d_r: np.ndarray, d_c: np.ndarray, drive: np.ndarray | None):
        """:meth:`leave`, :meth:`branch_currents` and the ℓ1 KCL residual (B,) over the free nodes,
        A, in one pass per input vector where the compiled kernels are available."""
        bsz = d_r.shape[0]
        if kernels.ENABLED and all(a.flags.c_contiguous for a in (d_r, d_c)) and (
                drive is None or drive.flags.c_contiguous):
            l_r, l_c = np.empty_like(d_r), np.empty_like(d_c)
            branch, kcl, kmax = np.empty((bsz, self.n + self.m)), np.empty(bsz), np.empty(bsz)
            kernels.leave_branch(d_r, d_c, d_r if drive is None else drive, drive is not None,
                                 *self.kernel_args(), l_r, l_c, branch, kcl, kmax)
            return l_r, l_c, branch, kcl
        l_r, l_c = self.leave(d_r, d_c, drive)
        branch = self.branch_currents(d_r, d_c, l_r, l_c)
        kcl = np.abs(l_r * self.free_r).sum(axis=(1, 2)) + np.abs(l_c * self.free_c).sum(axis=(1, 2))
        return l_r, l_c, branch, kcl

    def col_operator(self, x: np.ndarray) -> np.ndarray:
        """A_C·x for column-space vectors (B, N, M) (zero outside the free column nodes)."""
        out = self.g_cell * x
        if self.n > 1:
            w = self.gc * (x[:, :-1, :] - x[:, 1:, :])
            out[:, :-1, :] += w
            out[:, 1:, :] -= w
        out[:, 0, :] += self.gpt * x[:, 0, :]
        out[:, -1, :] += self.gpb * x[:, -1, :]
        out *= self.free_c
        return out

    def branch_currents(self, d_r, d_c, l_r, l_c) -> np.ndarray:
        """Port currents (B, N+M) in A from the array into each port (SPICE branch sign)."""
        i_row = self.gpl * d_r[:, :, 0] + self.gpr * d_r[:, :, -1] - (l_r * self.pin_r).sum(axis=2)
        i_col = self.gpt * d_c[:, 0, :] + self.gpb * d_c[:, -1, :] - (l_c * self.pin_c).sum(axis=1)
        return np.concatenate([i_row, i_col], axis=1)

    def node_voltages(self, d_r, d_c, s_r, s_c, ports) -> np.ndarray:
        """Node voltages (B, n_nodes) in V in the circuit's node order (NaN for dead nodes)."""
        bsz, n, m = d_r.shape
        out = np.full((bsz, self.n_nodes), np.nan)
        out[:, 0] = 0.0
        u_r = np.where(self.dead_r, np.nan, s_r[:, :, None] + d_r)
        u_c = np.where(self.dead_c, np.nan, s_c[:, None, :] + d_c)
        r0, c0 = self.node0["r"], self.node0["c"]
        out[:, r0:r0 + n * m] = u_r.reshape(bsz, -1)
        out[:, c0:c0 + n * m] = u_c.reshape(bsz, -1)
        if self.one_t:
            g, ga = self.g_dev, self.g_acc
            with np.errstate(invalid="ignore", divide="ignore"):
                u_m = (g * u_r + ga * u_c) / (g + ga)
            u_m = np.where(np.isinf(ga), u_c, np.where(g + ga > 0, u_m, np.nan))
            m0 = self.node0["m"]
            out[:, m0:m0 + n * m] = u_m.reshape(bsz, -1)
        out[:, self.node0["d"]:self.node0["d"] + n] = ports[:, :n]
        out[:, self.node0["s"]:self.node0["s"] + m] = ports[:, n:]
        return out

    def cell_currents(self, d_r, d_c, drive) -> np.ndarray:
        """Device currents (B, N, M) in A from row node to column (or mid) node."""
        return drive + self.g_cell * (d_r - d_c)

    def ir_parameter(self) -> float:
        """N·M·r·g: cells × mean segment resistance × mean cell conductance (unitless)."""
        if self._ir is None:
            if self._r_mean is None:  # the wires' part, kept across with_devices (wires are shared)
                seg = np.concatenate([self.gw.ravel(), self.gc.ravel()])
                seg = seg[seg > 0]
                self._r_mean = float(np.mean(1.0 / seg)) if seg.size else 0.0
            self._ir = self.n * self.m * self._r_mean * float(self.g_cell.mean())
        return self._ir
