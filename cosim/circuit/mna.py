"""Modified nodal analysis of a :class:`Circuit`, assembled with scipy.sparse (or dense numpy).

Exact treatment of the two limits: 0 Ω resistors (``g = inf``) merge their nodes before
assembly (union by connected components), and nodes held by a voltage source to ground become
known potentials eliminated from the unknowns. What is left for a crossbar is a symmetric
positive-definite conductance matrix; a voltage source between two non-ground nodes adds the
usual MNA border (branch current unknown plus constraint row).

A *stiff* resistor, one whose conductance exceeds :data:`STIFF_RATIO` times the sum of all the
other conductances at its two nodes (a shorted cell modelled as 1e15 S among 1e-5 S devices and
1 Ω wires), is kept out of the conductance matrix: there, eliminating one of its nodes would
subtract two numbers of size g to recover the small rest, losing log10(g / rest) digits (7.7 %
wrong at 1e15 S, the sign lost at 1e20 S). It gets a branch instead, like a voltage source with
a series resistance: unknown current i, constraint v_a − v_b − i/g = 0, where only 1/g appears
and nothing large is cancelled. Resistors in parallel between the same two nodes are one element
here (two 1e15 S shorts side by side: each is not the largest at its nodes alone, and two branches
with the same ends differ only in their tiny 1/g, which makes the matrix singular at 1e20 S): the
pair's total G is what is compared, it gets one branch, and each resistor carries the share g/G of
its current.

``assemble_nodal`` is pure and solver-agnostic: direct and iterative solvers take its
``NodalSystem`` and return the unknowns; ``NodalSystem.recover`` turns them into node voltages,
source branch currents and a KCL residual.

Small circuits (up to :data:`DENSE_MAX` nodes) are assembled from the same triplets into dense
arrays instead, and scipy is never imported: `cosim solve` of a small deck is dominated by
interpreter and import time, and scipy.sparse costs more than the whole solve (issue 13).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.circuit.model import Circuit
from cosim.errors import TopologyError

if TYPE_CHECKING:
    import scipy.sparse as sp

# g / (other conductance at its two nodes) above which a resistor gets a branch: the nodal form
# loses about log10 of this ratio in digits (1e6: ≤ 1e-10 relative, inside every solver's rtol).
STIFF_RATIO = 1e6
# The same for a group of strong elements at one node (a node shorted to two others): higher, so
# that a chain of equal wires over weak cells (1 Ω over 10 MΩ: 1e7) stays in the nodal form; the
# loss below it is at most ~1e-8 relative.
GROUP_RATIO = 1e8
# the most strong elements one node may share (a node shorted to up to three others)
MAX_GROUP = 4
# nodes up to which the system is dense: a 300² LU costs ~1 ms, far below scipy's import
DENSE_MAX = 300


def components(n: int, a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
    """(count, labels) of the connected components of ``n`` vertices with edges ``a[k]–b[k]``.

    Labels are numbered by each component's smallest vertex, as scipy's connected_components
    does, so the dense and sparse paths order their unknowns alike.
    """
    if n > DENSE_MAX:
        import scipy.sparse as sp
        from scipy.sparse.csgraph import connected_components

        graph = sp.coo_matrix((np.ones(a.size, dtype=np.int8), (a, b)), shape=(n, n))
        return connected_components(graph, directed=False)
    root = list(range(n))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    for i, j in zip(a.tolist(), b.tolist()):
        ri, rj = find(i), find(j)
        if ri != rj:
            root[max(ri, rj)] = min(ri, rj)  # the smallest vertex stays the root
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    uniq, labels = np.unique(roots, return_inverse=True)
    return int(uniq.size), labels.astype(np.int32)


def _matrix(vals: np.ndarray, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int],
            dense: bool) -> Any:
    """Triplets summed into a dense array or a CSR matrix: the one assembly both paths share."""
    if dense:
        m = np.zeros(shape)
        np.add.at(m, (rows, cols), vals)
        return m
    import scipy.sparse as sp

    return sp.coo_matrix((vals, (rows, cols)), shape=shape).tocsr()


def _block(blocks: list[list[Any]], dense: bool) -> Any:
    """Block matrix (``None`` = zeros) as a dense array or CSC."""
    if not dense:
        import scipy.sparse as sp

        return sp.bmat(blocks, format="csc")
    rows = [next(b.shape[0] for b in row if b is not None) for row in blocks]
    cols = [next(row[j].shape[1] for row in blocks if row[j] is not None) for j in range(len(blocks[0]))]
    return np.block([[np.zeros((r, cols[j])) if b is None else np.asarray(b) for j, b in enumerate(row)]
                     for r, row in zip(rows, blocks)])


@dataclass(frozen=True, slots=True)
class StiffBranches:
    """The stiff resistors of a circuit and the branches they form (one per pair of nodes).

    ``res``: the stiff resistors' indices in the circuit's resistor arrays; ``of``: the branch of
    each; ``share``: the fraction g/G of its branch's current each carries, signed +1 when its
    res_a is the branch's end ``a``; ``a``, ``b``, ``g``: each branch's end labels and total
    conductance G (S). A branch current flows from ``a`` to ``b``.
    """

    res: np.ndarray
    of: np.ndarray
    share: np.ndarray
    a: np.ndarray
    b: np.ndarray
    g: np.ndarray


def _stiff_branches(idx: np.ndarray, la: np.ndarray, lb: np.ndarray, g: np.ndarray) -> StiffBranches:
    """Group stiff resistors (indices ``idx``, end labels, conductances) into one branch per pair."""
    lo, hi = np.minimum(la, lb), np.maximum(la, lb)
    pairs, first, of = np.unique(np.stack([lo, hi], axis=1), axis=0, return_index=True, return_inverse=True)
    of = of.ravel()
    total = np.bincount(of, weights=g, minlength=pairs.shape[0])
    a, b = la[first], lb[first]
    sign = np.where(la == a[of], 1.0, -1.0)
    return StiffBranches(res=idx, of=of, share=sign * g / total[of], a=a, b=b, g=total)


@dataclass(frozen=True, slots=True)
class NodalSystem:
    """The reduced linear system ``A x = rhs(values)`` of a circuit and how to undo the reduction.

    Unknown ordering: free node potentials (``n_free``), then branch currents of floating
    voltage sources (``n_fsrc``), then currents of the stiff branches (``stiff``, one per pair
    of nodes joined by stiff resistors; see :class:`StiffBranches`).
    """

    circuit: Circuit
    labels: np.ndarray  # node → merged-node label
    n_labels: int
    ground: int  # label of ground
    lap: sp.csr_matrix | np.ndarray  # (n_labels, n_labels) conductance Laplacian over labels
    free: np.ndarray  # labels that are unknowns
    free_pos: np.ndarray  # label → position among unknowns, -1 otherwise
    known: np.ndarray  # labels with a known potential (excluding ground)
    known_src: np.ndarray  # for each known label, the source index fixing it
    known_sign: np.ndarray  # +1 when the source's + terminal is the known label, else -1
    fsrc: np.ndarray  # indices of floating voltage sources
    a: sp.csc_matrix | np.ndarray  # the system matrix (dense for small circuits)
    l_fk: sp.csr_matrix | np.ndarray  # coupling of free labels to known labels
    inj: np.ndarray  # (n_labels,) current injected by current sources, A
    spd: bool  # True when ``a`` is symmetric positive definite (no floating sources)
    defined: np.ndarray  # (n_labels,) bool: label has a potential (free, known or ground)
    # controlled sources (empty without them): E/H node terms moved to the constraint rhs
    # (row among fsrc, label, coef) and F terms added to KCL (label a, label b, fsrc pos, coef)
    e_terms: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    f_terms: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    stiff: StiffBranches | None = None
    dense: bool = False  # lap, a, l_fk are numpy arrays

    @property
    def n_free(self) -> int:
        return self.free.size

    def stiff_currents(self, x: np.ndarray) -> np.ndarray:
        """(B, n_stiff) currents of the stiff resistors (``stiff.res``, from res_a to res_b) in the
        solution ``x``, A: each its share of its branch's current."""
        s = self.stiff
        if s is None:
            return np.zeros((x.shape[1], 0))
        return x[x.shape[0] - s.a.size:][s.of].T * s.share

    def rhs(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rhs (n_unknowns, B), known label potentials (n_known, B)) for source values (B, n_vsrc)."""
        vk = (values[:, self.known_src] * self.known_sign).T
        rhs_free = self.inj[self.free][:, None] - self.l_fk @ vk
        if self.fsrc.size:
            c = self.circuit
            rows = values[:, self.fsrc].T.copy()
            # A constraint v_p - v_n = V with a known terminal moves that potential to the rhs.
            pot = np.zeros((self.n_labels, values.shape[0]))
            pot[self.known] = vk
            rows -= pot[self.labels[c.vsrc_p[self.fsrc]]] - pot[self.labels[c.vsrc_n[self.fsrc]]]
            if self.e_terms is not None:  # known control potentials of E sources
                er, elab, ecoef = self.e_terms
                np.add.at(rows, er, ecoef[:, None] * pot[elab])
            rhs_free = np.vstack([rhs_free, rows])
        if self.stiff is not None:  # v_a − v_b − i/G = 0 with known terminals on the rhs
            pot = np.zeros((self.n_labels, values.shape[0]))
            pot[self.known] = vk
            rhs_free = np.vstack([rhs_free, -(pot[self.stiff.a] - pot[self.stiff.b])])
        return rhs_free, vk

    def recover(self, x: np.ndarray, vk: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(label potentials (n_labels, B), branch currents (B, n_vsrc), relative KCL residual)."""
        c = self.circuit
        bsz = x.shape[1]
        pot = np.zeros((self.n_labels, bsz))
        pot[self.free] = x[: self.n_free]
        pot[self.known] = vk
        i_f = x[self.n_free:self.n_free + self.fsrc.size]
        # Current leaving each label through resistors, current sources and floating sources.
        leave = self.lap @ pot - self.inj[:, None]
        if self.fsrc.size:
            np.add.at(leave, self.labels[c.vsrc_p[self.fsrc]], i_f)
            np.add.at(leave, self.labels[c.vsrc_n[self.fsrc]], -i_f)
        if self.stiff is not None:
            i_s = x[x.shape[0] - self.stiff.a.size:]
            np.add.at(leave, self.stiff.a, i_s)
            np.add.at(leave, self.stiff.b, -i_s)
        if self.f_terms is not None:
            fa, fb, fpos, fcoef = self.f_terms
            np.add.at(leave, fa, fcoef[:, None] * i_f[fpos])
            np.add.at(leave, fb, -fcoef[:, None] * i_f[fpos])
        branch = np.zeros((c.vsrc_p.size, bsz))
        branch[self.fsrc] = i_f
        # A grounded source supplies what its known node sends away.
        branch[self.known_src] = -self.known_sign[:, None] * leave[self.known]
        resid = leave[self.free]
        scale = np.asarray(np.abs(self.lap).sum(axis=1)).ravel()[self.free, None] * np.abs(pot[self.free]).max(initial=0)
        denom = max(float(np.abs(branch).max(initial=0)), float(scale.max(initial=0)), 1e-300)
        return pot, branch.T, float(np.abs(resid).max(initial=0) / denom)


def _merge_shorts(circuit: Circuit) -> tuple[np.ndarray, int]:
    short = np.isinf(circuit.res_g)
    n = circuit.n_nodes
    if not short.any():
        return np.arange(n), n
    n_lab, labels = components(n, circuit.res_a[short], circuit.res_b[short])
    return labels, n_lab


def inert_nodes(circuit: Circuit) -> np.ndarray:
    """(n_nodes,) bool: nodes of parts with no DC path to ground that nothing excites.

    A part joined to the rest only by current sources of 0 A (and holding no voltage source)
    carries no current; ngspice puts it at 0 V (its gmin stepping converges there), and so
    does cosim instead of refusing the deck as floating. An island no current source reaches
    is still reported as floating (a likely wiring mistake).
    """
    c = circuit
    n = c.n_nodes
    live = c.res_g != 0  # NaN is refused by the reader; negative conductances conduct
    a = np.concatenate([c.res_a[live], c.vsrc_p])
    b = np.concatenate([c.res_b[live], c.vsrc_n])
    _, lab = components(n, a, b)
    bad = np.zeros(lab.max() + 1 if n else 0, dtype=bool)
    bad[lab[0]] = True
    bad[lab[c.vsrc_p]] = True
    excited = c.isrc_dc != 0
    if c.controls is not None:
        excited[c.controls.i_node_src] = True
        excited[c.controls.i_curr_src] = True
        bad[lab[c.controls.v_node]] = True
        bad[lab[c.controls.i_node]] = True
    bad[lab[c.isrc_a[excited]]] = True
    bad[lab[c.isrc_b[excited]]] = True
    # only parts a (0 A) current source reaches: an island of resistors alone stays a defect
    reached = np.zeros_like(bad)
    reached[lab[c.isrc_a]] = True
    reached[lab[c.isrc_b]] = True
    touched = np.zeros(n, dtype=bool)
    for arr in (c.res_a[live], c.res_b[live], c.isrc_a, c.isrc_b):
        touched[arr] = True
    return touched & ~bad[lab] & reached[lab]


def _controls(c: Circuit, labels: np.ndarray, n_lab: int):
    """(extra Y entries (rows, cols, vals), forced-floating source mask) of controlled sources."""
    forced = np.zeros(c.vsrc_p.size, dtype=bool)
    ctl = c.controls
    if ctl is None:
        return None, forced
    forced[ctl.controlling()] = True
    forced[ctl.constrained()] = True
    k, q, g = ctl.i_node_src, labels[ctl.i_node], ctl.i_node_coef
    rows = np.concatenate([labels[c.isrc_a[k]], labels[c.isrc_b[k]]])
    return (rows, np.concatenate([q, q]), np.concatenate([g, -g])), forced


def assemble_nodal(circuit: Circuit, *, dense: bool | None = None) -> NodalSystem:
    """Assemble the reduced nodal system; raises :class:`TopologyError` on shorted sources.

    ``dense`` (default: up to :data:`DENSE_MAX` nodes) gives numpy arrays instead of scipy.sparse.
    """
    c = circuit
    if dense is None:
        dense = c.n_nodes <= DENSE_MAX
    labels, n_lab = _merge_shorts(c)
    ground = int(labels[0])
    finite = (c.res_g != 0) & np.isfinite(c.res_g)  # negative resistors are legal elements
    idx = np.flatnonzero(finite)
    la, lb, g = labels[c.res_a[idx]], labels[c.res_b[idx]], c.res_g[idx]
    keep = la != lb
    la, lb, g, idx = la[keep], lb[keep], g[keep], idx[keep]
    stiff = _stiff(la, lb, g, n_lab)
    s_idx, sa, sb = idx[stiff], la[stiff], lb[stiff]
    la, lb, g = la[~stiff], lb[~stiff], g[~stiff]
    deg = np.bincount(la, weights=g, minlength=n_lab) + np.bincount(lb, weights=g, minlength=n_lab)
    extra, forced = _controls(c, labels, n_lab)
    er, ec, ev = extra if extra is not None else (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    lap = _matrix(np.concatenate([-g, -g, deg, ev]), np.concatenate([la, lb, np.arange(n_lab), er]),
                  np.concatenate([lb, la, np.arange(n_lab), ec]), (n_lab, n_lab), dense)

    pl, nl = labels[c.vsrc_p], labels[c.vsrc_n]
    bad = pl == nl
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise TopologyError(f"voltage source {c.vsrc_names[k]} is shorted (both terminals on one node)")
    to_ground = ((nl == ground) | (pl == ground)) & ~forced
    known_lab = np.where(nl == ground, pl, nl)[to_ground]
    known_src = np.flatnonzero(to_ground)
    known_sign = np.where(nl[to_ground] == ground, 1.0, -1.0)
    uniq, counts = np.unique(known_lab, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1][0]
        names = [c.vsrc_names[k] for k in known_src[known_lab == dup]]
        raise TopologyError(f"voltage sources {', '.join(names)} form a loop (they fix the same node)")
    fsrc = np.flatnonzero(~to_ground)

    inj = np.zeros(n_lab)
    if c.isrc_dc.size:
        np.add.at(inj, labels[c.isrc_b], c.isrc_dc)
        np.add.at(inj, labels[c.isrc_a], -c.isrc_dc)

    used = np.zeros(n_lab, dtype=bool)
    used[la] = True
    used[lb] = True
    used[sa] = True
    used[sb] = True
    used[labels[c.isrc_a]] = True
    used[labels[c.isrc_b]] = True
    used[pl[fsrc]] = True
    used[nl[fsrc]] = True
    is_known = np.zeros(n_lab, dtype=bool)
    is_known[known_lab] = True
    is_known[ground] = True
    inert = np.zeros(n_lab, dtype=bool)
    inert[labels[inert_nodes(c)]] = True  # held at 0 V like ground, no source
    is_known |= inert
    if c.controls is not None:
        ctl_lab = labels[np.concatenate([c.controls.v_node, c.controls.i_node])]
        lost = ctl_lab[~(used[ctl_lab] | is_known[ctl_lab])]
        if lost.size:
            k = int(np.flatnonzero(labels == lost[0])[0])
            raise TopologyError(f"node {c.node_names[k]} controls a source but no element connects it")
    free = np.flatnonzero(used & ~is_known)
    free_pos = np.full(n_lab, -1)
    free_pos[free] = np.arange(free.size)

    a_ff = lap[free][:, free]
    l_fk = lap[free][:, known_lab]
    e_terms = f_terms = None
    if fsrc.size:
        nf = fsrc.size
        rows, cols, vals = [], [], []
        for lab_arr, sign in ((pl[fsrc], 1.0), (nl[fsrc], -1.0)):
            pos = free_pos[lab_arr]
            ok = pos >= 0
            rows.append(pos[ok])
            cols.append(np.arange(nf)[ok])
            vals.append(np.full(ok.sum(), sign))
        bmat = _matrix(np.concatenate(vals), np.concatenate(rows), np.concatenate(cols),
                       (free.size, nf), dense)
        if c.controls is None:
            a = _block([[a_ff, bmat], [bmat.T, None]], dense)
        else:
            a, e_terms, f_terms = _bordered(c, labels, free_pos, fsrc, a_ff, bmat, dense)
    else:
        a = a_ff if dense else a_ff.tocsc()
    branches = _stiff_branches(s_idx, sa, sb, c.res_g[s_idx]) if s_idx.size else None
    if branches is not None:
        a = _with_stiff(a, free_pos, branches.a, branches.b, branches.g, dense)
    return NodalSystem(
        circuit=c, labels=labels, n_labels=n_lab, ground=ground, lap=lap, free=free,
        free_pos=free_pos, known=known_lab, known_src=known_src, known_sign=known_sign,
        fsrc=fsrc, a=a, l_fk=l_fk if dense else l_fk.tocsr(), inj=inj,
        spd=fsrc.size == 0 and bool((g > 0).all()) and c.controls is None and not s_idx.size,
        defined=used | is_known, e_terms=e_terms, f_terms=f_terms, stiff=branches,
        dense=dense,
    )


def _with_stiff(a: Any, free_pos: np.ndarray, sa: np.ndarray, sb: np.ndarray,
                g: np.ndarray, dense: bool) -> Any:
    """``a`` bordered by one branch per stiff pair of nodes: ±1 incidence on its free nodes, −1/G."""
    ns = g.size
    rows, cols, vals = [], [], []
    for lab, sign in ((sa, 1.0), (sb, -1.0)):
        pos = free_pos[lab]
        ok = pos >= 0
        rows.append(pos[ok])
        cols.append(np.arange(ns)[ok])
        vals.append(np.full(ok.sum(), sign))
    inc = _matrix(np.concatenate(vals), np.concatenate(rows), np.concatenate(cols), (a.shape[0], ns), dense)
    corner = _matrix(-1.0 / g, np.arange(ns), np.arange(ns), (ns, ns), dense)
    return _block([[a, inc], [inc.T, corner]], dense)


def has_stiff(circuit: Circuit) -> bool:
    """True when a resistor of ``circuit`` is stiff (see the module docstring)."""
    c = circuit
    ok = (c.res_g != 0) & np.isfinite(c.res_g)
    ag = np.abs(c.res_g[ok])
    # A rest > 0 is at least the smallest conductance, so within this spread nothing is stiff.
    # (ratio × g overflows only for g > 1.8e302 S, where the answer "not above" is right anyway)
    with np.errstate(over="ignore"):
        spread = ag.size and ag.max() > STIFF_RATIO * ag.min()
    if not spread:
        return False
    labels, n_lab = _merge_shorts(c)
    la, lb, g = labels[c.res_a[ok]], labels[c.res_b[ok]], c.res_g[ok]
    keep = la != lb
    return bool(_stiff(la[keep], lb[keep], g[keep], n_lab).any())


@np.errstate(over="ignore")  # a ratio × a conductance above 1.8e302 S is inf: "not above", as it should be
def _stiff(la: np.ndarray, lb: np.ndarray, g: np.ndarray, n_lab: int) -> np.ndarray:
    """Mask of resistors (between labels la, lb; conductance g) that are stiff.

    Resistors in parallel count as one element of their total conductance (|Σg|; each of two
    equal shorts alone is neither the largest at its nodes nor much larger than the other). At
    each node the elements are ranked by size; the node's *strong* ones are the largest down to
    the first that exceeds everything smaller at the node by :data:`STIFF_RATIO` (the largest
    alone), or by :data:`GROUP_RATIO` (a group: a node shorted to two others). The rest is
    summed without the strong ones (subtracting them from the full sum would cancel the very
    digits in question). An element is stiff where it is strong at both ends; one alone between
    its nodes (nothing smaller there) has nothing to lose and is not.
    """
    out = np.zeros(g.size, dtype=bool)
    ag = np.abs(g)
    # Any cut needs an element over STIFF_RATIO × the smallest at its node: only such nodes,
    # and the elements touching them, are ranked (a crossbar of 1 Ω wires over ≥ 1 µS cells has
    # none, and is done after four cheap passes).
    mx, mn = np.zeros(n_lab), np.full(n_lab, np.inf)
    for ends in (la, lb):
        np.maximum.at(mx, ends, ag)
        np.minimum.at(mn, ends, ag)
    cand = mx > STIFF_RATIO * mn
    near = np.flatnonzero(cand[la] | cand[lb])
    if not near.size:
        return out
    la, lb, g = la[near], lb[near], g[near]
    lo, hi = np.minimum(la, lb), np.maximum(la, lb)
    uniq, of = np.unique(lo.astype(np.int64) * n_lab + hi, return_inverse=True)
    of = of.ravel()
    pa, pb = uniq // n_lab, uniq % n_lab
    total = np.abs(np.bincount(of, weights=g, minlength=uniq.size))  # the pair's |Σg|
    spread = np.bincount(of, weights=np.abs(g), minlength=uniq.size)  # what its entries add up
    m = uniq.size
    node = np.concatenate([pa, pb])
    w = np.concatenate([spread, spread])
    order = np.argsort(-w, kind="stable")
    order = order[np.argsort(node[order], kind="stable")]  # by node, then largest first
    nd = node[order]
    start = np.flatnonzero(np.r_[True, nd[1:] != nd[:-1]])
    rank = np.empty(2 * m, dtype=np.int64)
    rank[order] = np.arange(nd.size) - np.repeat(start, np.diff(np.r_[start, nd.size]))
    # The top MAX_GROUP elements of each node, and the sum of the others (small ones only, so
    # no digit of it is lost; a running sum past a large element would lose them all).
    top = np.zeros((MAX_GROUP, n_lab))
    sel = rank < MAX_GROUP
    top[rank[sel], node[sel]] = w[sel]
    below = np.bincount(node[~sel], weights=w[~sel], minlength=n_lab)
    strong_to = np.full(n_lab, -1)  # the lowest rank that is still strong at each node
    for j in range(MAX_GROUP - 1, -1, -1):  # small first; a cut at a lower rank wins
        cut = (below > 0) & (top[j] > (STIFF_RATIO if j == 0 else GROUP_RATIO) * below)
        strong_to[cut] = j
        below = below + top[j]
    strong = rank <= strong_to[node]
    stiff = strong[:m] & strong[m:] & (total > 0)
    out[near] = stiff[of]
    return out


def _bordered(c: Circuit, labels, free_pos, fsrc, a_ff, bmat, dense: bool):
    """The MNA matrix with controlled sources (no longer symmetric) and their rhs/KCL terms."""
    ctl = c.controls
    nf, n_free = fsrc.size, a_ff.shape[0]
    pos_f = np.full(c.vsrc_p.size, -1)
    pos_f[fsrc] = np.arange(nf)
    # F: current gain·i(ctrl) leaves label a and enters label b
    fa, fb = labels[c.isrc_a[ctl.i_curr_src]], labels[c.isrc_b[ctl.i_curr_src]]
    fpos, fcoef = pos_f[ctl.i_curr], ctl.i_curr_coef
    r_top = np.concatenate([free_pos[fa], free_pos[fb]])
    c_top = np.concatenate([fpos, fpos])
    v_top = np.concatenate([fcoef, -fcoef])
    ok = r_top >= 0
    top = bmat + _matrix(v_top[ok], r_top[ok], c_top[ok], (n_free, nf), dense)
    # E: −gain·v(node) in the constraint row; known nodes go to the rhs
    er, eq = pos_f[ctl.v_node_src], free_pos[labels[ctl.v_node]]
    ok = eq >= 0
    left = bmat.T + _matrix(-ctl.v_node_coef[ok], er[ok], eq[ok], (nf, n_free), dense)
    # H: −r·i(ctrl) in the constraint row
    corner = _matrix(-ctl.v_curr_coef, pos_f[ctl.v_curr_src], pos_f[ctl.v_curr], (nf, nf), dense)
    a = _block([[a_ff, top], [left, corner]], dense)
    e_terms = (er[~ok], labels[ctl.v_node][~ok], ctl.v_node_coef[~ok])
    return a, e_terms, (fa, fb, fpos, fcoef)
