"""Modified nodal analysis of a :class:`Circuit`, assembled with scipy.sparse.

Exact treatment of the two limits: 0 Ω resistors (``g = inf``) merge their nodes before
assembly (union by connected components), and nodes held by a voltage source to ground become
known potentials eliminated from the unknowns. What is left for a crossbar is a symmetric
positive-definite conductance matrix; a voltage source between two non-ground nodes adds the
usual MNA border (branch current unknown plus constraint row).

``assemble_nodal`` is pure and solver-agnostic: direct and iterative solvers take its
``NodalSystem`` and return the unknowns; ``NodalSystem.recover`` turns them into node voltages,
source branch currents and a KCL residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from cosim.circuit.model import Circuit
from cosim.errors import TopologyError


@dataclass(frozen=True, slots=True)
class NodalSystem:
    """The reduced linear system ``A x = rhs(values)`` of a circuit and how to undo the reduction.

    Unknown ordering: free node potentials (``n_free``), then branch currents of floating
    voltage sources (``n_fsrc``).
    """

    circuit: Circuit
    labels: np.ndarray  # node → merged-node label
    n_labels: int
    ground: int  # label of ground
    lap: sp.csr_matrix  # (n_labels, n_labels) conductance Laplacian over labels
    free: np.ndarray  # labels that are unknowns
    free_pos: np.ndarray  # label → position among unknowns, -1 otherwise
    known: np.ndarray  # labels with a known potential (excluding ground)
    known_src: np.ndarray  # for each known label, the source index fixing it
    known_sign: np.ndarray  # +1 when the source's + terminal is the known label, else -1
    fsrc: np.ndarray  # indices of floating voltage sources
    a: sp.csc_matrix  # the system matrix
    l_fk: sp.csr_matrix  # coupling of free labels to known labels
    inj: np.ndarray  # (n_labels,) current injected by current sources, A
    spd: bool  # True when ``a`` is symmetric positive definite (no floating sources)
    defined: np.ndarray  # (n_labels,) bool: label has a potential (free, known or ground)

    @property
    def n_free(self) -> int:
        return self.free.size

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
            rhs_free = np.vstack([rhs_free, rows])
        return rhs_free, vk

    def recover(self, x: np.ndarray, vk: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(label potentials (n_labels, B), branch currents (B, n_vsrc), relative KCL residual)."""
        c = self.circuit
        bsz = x.shape[1]
        pot = np.zeros((self.n_labels, bsz))
        pot[self.free] = x[: self.n_free]
        pot[self.known] = vk
        i_f = x[self.n_free:]
        # Current leaving each label through resistors, current sources and floating sources.
        leave = self.lap @ pot - self.inj[:, None]
        if self.fsrc.size:
            np.add.at(leave, self.labels[c.vsrc_p[self.fsrc]], i_f)
            np.add.at(leave, self.labels[c.vsrc_n[self.fsrc]], -i_f)
        branch = np.zeros((c.vsrc_p.size, bsz))
        branch[self.fsrc] = i_f
        # A grounded source supplies what its known node sends away.
        branch[self.known_src] = -self.known_sign[:, None] * leave[self.known]
        resid = leave[self.free]
        scale = np.abs(self.lap).sum(axis=1).A1[self.free, None] * np.abs(pot[self.free]).max(initial=0)
        denom = max(float(np.abs(branch).max(initial=0)), float(scale.max(initial=0)), 1e-300)
        return pot, branch.T, float(np.abs(resid).max(initial=0) / denom)


def _merge_shorts(circuit: Circuit) -> tuple[np.ndarray, int]:
    short = np.isinf(circuit.res_g)
    n = circuit.n_nodes
    if not short.any():
        return np.arange(n), n
    graph = sp.coo_matrix((np.ones(short.sum()), (circuit.res_a[short], circuit.res_b[short])), shape=(n, n))
    n_lab, labels = connected_components(graph, directed=False)
    return labels, n_lab


def assemble_nodal(circuit: Circuit) -> NodalSystem:
    """Assemble the reduced nodal system; raises :class:`TopologyError` on shorted sources."""
    c = circuit
    labels, n_lab = _merge_shorts(c)
    ground = int(labels[0])
    finite = (c.res_g > 0) & np.isfinite(c.res_g)
    la, lb, g = labels[c.res_a[finite]], labels[c.res_b[finite]], c.res_g[finite]
    keep = la != lb
    la, lb, g = la[keep], lb[keep], g[keep]
    deg = np.bincount(la, weights=g, minlength=n_lab) + np.bincount(lb, weights=g, minlength=n_lab)
    lap = sp.coo_matrix(
        (np.concatenate([-g, -g, deg]),
         (np.concatenate([la, lb, np.arange(n_lab)]), np.concatenate([lb, la, np.arange(n_lab)]))),
        shape=(n_lab, n_lab),
    ).tocsr()

    pl, nl = labels[c.vsrc_p], labels[c.vsrc_n]
    bad = pl == nl
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise TopologyError(f"voltage source {c.vsrc_names[k]} is shorted (both terminals on one node)")
    to_ground = (nl == ground) | (pl == ground)
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

    used = deg > 0
    used[labels[c.isrc_a]] = True
    used[labels[c.isrc_b]] = True
    used[pl[fsrc]] = True
    used[nl[fsrc]] = True
    is_known = np.zeros(n_lab, dtype=bool)
    is_known[known_lab] = True
    is_known[ground] = True
    free = np.flatnonzero(used & ~is_known)
    free_pos = np.full(n_lab, -1)
    free_pos[free] = np.arange(free.size)

    a_ff = lap[free][:, free]
    l_fk = lap[free][:, known_lab]
    if fsrc.size:
        nf = fsrc.size
        rows, cols, vals = [], [], []
        for lab_arr, sign in ((pl[fsrc], 1.0), (nl[fsrc], -1.0)):
            pos = free_pos[lab_arr]
            ok = pos >= 0
            rows.append(pos[ok])
            cols.append(np.arange(nf)[ok])
            vals.append(np.full(ok.sum(), sign))
        bmat = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(free.size, nf)).tocsr()
        a = sp.bmat([[a_ff, bmat], [bmat.T, None]], format="csc")
    else:
        a = a_ff.tocsc()
    return NodalSystem(
        circuit=c, labels=labels, n_labels=n_lab, ground=ground, lap=lap, free=free,
        free_pos=free_pos, known=known_lab, known_src=known_src, known_sign=known_sign,
        fsrc=fsrc, a=a, l_fk=l_fk.tocsr(), inj=inj, spd=fsrc.size == 0,
        defined=used | is_known,
    )
