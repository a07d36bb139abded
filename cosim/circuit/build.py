"""Turn a :class:`CrossbarSpec` into the :class:`Circuit` every engine solves (DESIGN.md §2).

Nodes, in blocks: ground ``0``; rows ``r{i}_{j}``; columns ``c{i}_{j}``; 1T1R mid nodes
``m{i}_{j}`` (device ↔ access transistor); row ports ``d{i}`` (driver outputs); column ports
``s{j}`` (sense-amplifier inputs). Resistors, in blocks: cells ``rg{i}_{j}``, access transistors
``ra{i}_{j}``, row segments ``rw{i}_{j}`` (r{i}_{j}–r{i}_{j+1}), column segments ``rc{i}_{j}``
(c{i}_{j}–c{i+1}_{j}), drivers ``rdl{i}``/``rdr{i}`` (left/right end) and sense resistors
``rsb{j}``/``rst{j}`` (bottom/top end). Sources ``vd{i}`` at the row ports and ``vs{j}`` at the
column ports.

A forward read drives the selected rows' ports with the inputs and reads the selected columns'
port currents (unselected lines are biased, not sensed: their outputs read 0 A, and the bias
sources' currents stay available as branch currents); the transpose read (backpropagation) drives column ports and reads row ports on
the very same resistors, which is what makes the two reciprocal.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cosim.circuit.cells import Mosfet, SeriesCell
from cosim.circuit.model import Circuit, CrossbarLayout, GridNames
from cosim.circuit.spec import CrossbarSpec


def _g(r: np.ndarray) -> np.ndarray:
    """Conductance of resistances, with 0 Ω an exact short (inf S)."""
    with np.errstate(divide="ignore"):
        return 1.0 / np.asarray(r, dtype=float)


def _bias(spec: CrossbarSpec, role: str) -> tuple[float, float]:
    """(dc volts, port conductance factor) for unselected lines of a role ("drive"/"sense")."""
    scheme = spec.unselected
    if scheme == "floating":
        return 0.0, 0.0
    if scheme == "grounded":
        return 0.0, np.inf
    if scheme == "driven":
        return (0.0 if role == "drive" else spec.v_sense), 1.0
    vsel = 0.0 if spec.v_select is None else spec.v_select
    if scheme == "v/2":
        return vsel / 2.0, 1.0
    return (vsel / 3.0 if role == "drive" else 2.0 * vsel / 3.0), 1.0  # v/3


def _port_g(r: np.ndarray, factor: float) -> np.ndarray:
    """Port conductance of unselected lines: open (0), hard short (inf) or through ``r``."""
    if factor == 0.0 or factor == np.inf:
        return np.full(np.shape(r), factor)
    return _g(r)


def build_circuit(spec: CrossbarSpec, *, transpose: bool = False) -> Circuit:
    """Build the circuit of ``spec`` for a forward read (inputs on rows) or a transpose read.

    Vectorised over cells: no Python loop runs over rows, columns or cells.
    """
    n, m = spec.shape
    nm = n * m
    one_t = spec.cell == "1T1R"
    r0 = 1
    c0 = r0 + nm
    m0 = c0 + nm if one_t else -1
    d0 = c0 + nm * (2 if one_t else 1)
    s0 = d0 + n
    blocks = [("0", ()), ("r", (n, m)), ("c", (n, m))]
    if one_t:
        blocks.append(("m", (n, m)))
    blocks += [("d", (n,)), ("s", (m,))]
    node_names = GridNames(blocks)

    rid = r0 + np.arange(nm).reshape(n, m)
    cid = c0 + np.arange(nm).reshape(n, m)
    rows_on, cols_on = spec.selected_rows, spec.selected_cols
    drive_on, sense_on = (cols_on, rows_on) if transpose else (rows_on, cols_on)

    a, b, g, res_blocks = [], [], [], []

    def add(prefix, shape, na, nb, gg):
        a.append(np.ravel(na))
        b.append(np.ravel(nb))
        g.append(np.broadcast_to(gg, np.shape(na)).ravel())
        res_blocks.append((prefix, shape))

    cell_res0 = 0
    if one_t:
        mid = m0 + np.arange(nm).reshape(n, m)
        add("rg", (n, m), rid, mid, spec.conductances)
        g_acc = np.where(rows_on[:, None], _g(spec.r_access), 0.0)
        add("ra", (n, m), mid, cid, np.broadcast_to(g_acc, (n, m)))
        access_res0 = nm
    else:
        add("rg", (n, m), rid, cid, spec.conductances)
        access_res0 = -1
    if m > 1:
        add("rw", (n, m - 1), rid[:, :-1], rid[:, 1:], _g(spec.r_row))
    if n > 1:
        add("rc", (n - 1, m), cid[:-1, :], cid[1:, :], _g(spec.r_col))

    # Port resistors: selected lines connect through their periphery resistance; unselected
    # ones per the bias scheme (open when floating, a hard short when grounded).
    row_role, col_role = ("sense", "drive") if transpose else ("drive", "sense")
    row_dc, row_fac = _bias(spec, row_role)
    col_dc, col_fac = _bias(spec, col_role)
    g_drv = np.where(rows_on, _g(spec.r_driver), _port_g(spec.r_driver, row_fac))
    g_sen = np.where(cols_on, _g(spec.r_sense), _port_g(spec.r_sense, col_fac))
    did = d0 + np.arange(n)
    sid = s0 + np.arange(m)
    if spec.drive in ("left", "both"):
        add("rdl", (n,), did, rid[:, 0], g_drv)
    if spec.drive in ("right", "both"):
        add("rdr", (n,), did, rid[:, -1], g_drv)
    if spec.sense in ("bottom", "both"):
        add("rsb", (m,), sid, cid[-1, :], g_sen)
    if spec.sense in ("top", "both"):
        add("rst", (m,), sid, cid[0, :], g_sen)

    res_a = np.concatenate(a)
    res_b = np.concatenate(b)
    res_g = np.concatenate(g).astype(float)

    # Sources: vd{i} at row ports, vs{j} at column ports. Inputs go to the driving role's
    # selected lines; outputs are the sensing role's port currents.
    vsrc_p = np.concatenate([did, sid])
    vsrc_n = np.zeros(n + m, dtype=np.int64)
    if transpose:
        dc = np.concatenate([np.where(rows_on, spec.v_sense, row_dc), np.where(cols_on, 0.0, col_dc)])
        inp = np.concatenate([np.full(n, -1), np.where(cols_on, np.arange(m), -1)])
        out_line, n_in, n_out = np.flatnonzero(rows_on), m, n
        out_src = out_line
    else:
        dc = np.concatenate([np.where(rows_on, 0.0, row_dc), np.where(cols_on, spec.v_sense, col_dc)])
        inp = np.concatenate([np.where(rows_on, np.arange(n), -1), np.full(m, -1)])
        out_line, n_in, n_out = np.flatnonzero(cols_on), n, m
        out_src = n + out_line
    scale = (inp >= 0).astype(float)

    if spec.unselected == "floating" and not (rows_on.all() and cols_on.all()) or (one_t and not rows_on.all()):
        res_g = _open_islands(len(node_names), res_a, res_b, res_g, vsrc_p)

    mask = rows_on[:, None] & cols_on[None, :]
    ideal = spec.conductances * mask
    if transpose:
        ideal, mask = ideal.T, mask.T
    layout = CrossbarLayout(
        n_rows=n, n_cols=m, transpose=transpose, row_node0=r0, col_node0=c0, mid_node0=m0,
        cell_res0=cell_res0, access_res0=access_res0, ideal_g=ideal, ideal_offset=spec.v_sense,
        ideal_mask=mask,
    )
    kind = "transpose" if transpose else "forward"
    return Circuit(
        node_names=node_names,
        res_a=res_a, res_b=res_b, res_g=res_g, res_names=GridNames(res_blocks),
        vsrc_p=vsrc_p, vsrc_n=vsrc_n, vsrc_dc=dc, vsrc_input=inp, vsrc_scale=scale,
        vsrc_names=GridNames([("vd", (n,)), ("vs", (m,))]),
        n_inputs=n_in, out_src=out_src, out_index=out_line, n_outputs=n_out,
        title=f"{n}x{m} {spec.cell} crossbar, {kind} read", layout=layout,
        key=f"{spec.key()}-{kind}", cell_law=_gated(spec),
    )


def _gated(spec: CrossbarSpec):
    """The spec's cell law with the access transistors of unselected rows off (gate at 0 V)."""
    law = spec.law
    if isinstance(law, SeriesCell) and isinstance(law.access, Mosfet):
        on = np.broadcast_to(spec.selected_rows[:, None], spec.shape)
        law = dataclasses.replace(law, access=law.access.gated(on))
    return law


def _open_islands(n_nodes, res_a, res_b, res_g, src_nodes) -> np.ndarray:
    """Zero the elements of sub-networks with no DC path to ground or a source.

    Such islands (a floating line whose access transistors are all off, say) carry no current
    and have no defined potential; dropping them keeps the nodal matrix non-singular and the
    netlist runnable, and changes no current anywhere.
    """
    live = res_g > 0
    graph = coo_matrix((np.ones(live.sum()), (res_a[live], res_b[live])), shape=(n_nodes, n_nodes))
    _, labels = connected_components(graph, directed=False)
    anchored = np.zeros(labels.max() + 1, dtype=bool)
    anchored[labels[0]] = True
    anchored[labels[src_nodes]] = True
    keep = anchored[labels[res_a]]
    return np.where(keep, res_g, 0.0)
