"""Topology checks that catch unsolvable DC circuits before a solver meets a singular matrix.

The DC graph of a :class:`Circuit` has the nodes as vertices and, as edges, every resistor with
``g ≠ 0`` (shorts, ``g = inf``, and negative resistors included) and every voltage source. Current sources are *not* DC
paths (they fix a current, not a potential) and ``g = 0`` elements are absent. Ground is node 0.

Three defects make the nodal matrix singular or the equations inconsistent:

- floating nodes: a node touched by a live element (resistor with g > 0, voltage or current
  source) with no DC path to ground. Nodes touched by nothing live (all their elements have
  g = 0) carry no current, are left out of the solve and are not reported. Parts reached only
  through 0 A current sources and holding no voltage source are not floating either: they sit
  at 0 V, as ngspice puts them (:func:`cosim.circuit.mna.inert_nodes`).
- voltage-source loops: a cycle made only of voltage sources and 0 Ω shorts (two sources in
  parallel, a source across a short). Loops of shorts alone are harmless (the nodes merge).
- current-source cut sets: a floating group of nodes reached from the rest only through current
  sources (current sources in series with no other path); KCL then fixes their sum.

Components and loop counts are computed vectorised with scipy's csgraph, so a 100k-element
netlist checks in milliseconds; networkx walks only the (small) source forest when loops exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from cosim.circuit.mna import components, inert_nodes
from cosim.circuit.model import Circuit
from cosim.errors import TopologyError

log = logging.getLogger(__name__)


def _labels(n: int, a: np.ndarray, b: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of ``n`` vertices joined by edges ``a[k]–b[k]``."""
    return components(n, a, b)  # scipy only for large circuits


def _dc_labels(circuit: Circuit) -> np.ndarray:
    c = circuit
    live = c.res_g != 0  # negative resistors conduct too
    a = np.concatenate([c.res_a[live], c.vsrc_p])
    b = np.concatenate([c.res_b[live], c.vsrc_n])
    return _labels(c.n_nodes, a, b)[1]


def _touched(circuit: Circuit) -> np.ndarray:
    c = circuit
    touched = np.zeros(c.n_nodes, dtype=bool)
    live = c.res_g != 0
    for arr in (c.res_a[live], c.res_b[live], c.vsrc_p, c.vsrc_n, c.isrc_a, c.isrc_b):
        touched[arr] = True
    if c.controls is not None:  # a control input with nothing else attached floats too
        touched[c.controls.v_node] = True
        touched[c.controls.i_node] = True
    return touched


def _floating_mask(circuit: Circuit) -> tuple[np.ndarray, np.ndarray]:
    labels = _dc_labels(circuit)
    mask = _touched(circuit) & (labels != labels[0]) & ~inert_nodes(circuit)
    return mask, labels


def floating_nodes(circuit: Circuit) -> list[str]:
    """Names of the nodes that have no DC path to ground, in node order.

    Only nodes touched by a live element count (see the module docstring).
    """
    mask, _ = _floating_mask(circuit)
    return [circuit.node_names[k] for k in np.flatnonzero(mask)]


def current_source_cutsets(circuit: Circuit) -> list[list[str]]:
    """Current sources that alone join a floating group of nodes to the rest of the circuit.

    One list per floating DC component that current sources reach (names in source order);
    a floating component reached by no current source is reported by :func:`floating_nodes`
    only.
    """
    c = circuit
    if not c.isrc_a.size:
        return []
    mask, labels = _floating_mask(c)
    la, lb = labels[c.isrc_a], labels[c.isrc_b]
    crossing = la != lb
    floating_lab = np.zeros(labels.max() + 1, dtype=bool)
    floating_lab[labels[mask]] = True
    cuts: dict[int, list[int]] = {}
    for k in np.flatnonzero(crossing):
        for lab in (int(la[k]), int(lb[k])):
            if floating_lab[lab]:
                cuts.setdefault(lab, []).append(int(k))
    return [[c.isrc_names[k] for k in ks] for _, ks in sorted(cuts.items())]


def _short_path(shorts, circuit: Circuit, u: int, v: int) -> list[str]:
    """Names of the 0 Ω resistors on a path from node u to node v (same merged node)."""
    import networkx as nx

    if u == v:
        return []
    nodes = nx.shortest_path(shorts, u, v)
    return [circuit.res_names[shorts[p][q]["res"]] for p, q in zip(nodes[:-1], nodes[1:])]


def source_loops(circuit: Circuit) -> list[list[str]]:
    """Independent loops made only of voltage sources and 0 Ω shorts (a cycle basis).

    Each loop lists the element names met walking round it: the voltage sources and the shorts
    between them. A loop of shorts alone is not reported (it merely merges nodes).
    """
    c = circuit
    n_src = c.vsrc_p.size
    if not n_src:
        return []
    short = np.isinf(c.res_g) & (c.res_g > 0)
    _, merged = _labels(c.n_nodes, c.res_a[short], c.res_b[short])
    pl, nl = merged[c.vsrc_p], merged[c.vsrc_n]
    # Independent loops among source edges = E − V + C over the merged nodes they touch.
    used, compact = np.unique(np.concatenate([pl, nl]), return_inverse=True)
    n_comp, _ = _labels(used.size, compact[:n_src], compact[n_src:])
    if n_src - used.size + n_comp == 0:
        return []
    import networkx as nx  # only when loops exist: a plain deck does not pay for it

    # Spanning forest of the source graph; each non-tree source closes one loop.
    uf = nx.utils.UnionFind()
    forest = nx.Graph()
    closing = []
    for k in range(n_src):
        u, v = int(pl[k]), int(nl[k])
        if u != v and uf[u] != uf[v]:
            uf.union(u, v)
            forest.add_edge(u, v, src=k)
        else:
            closing.append(k)
    parent: dict[int, int] = {}
    depth: dict[int, int] = {}
    for comp in nx.connected_components(forest):
        root = min(comp)
        depth[root] = 0
        for p, q in nx.bfs_edges(forest, root):
            parent[q], depth[q] = p, depth[p] + 1

    def tree_path(u: int, v: int) -> list[int]:
        """Sources on the forest path from merged node u to v, in walking order."""
        up, down = [], []
        while u != v:
            if depth[u] >= depth[v]:
                up.append(forest[u][parent[u]]["src"])
                u = parent[u]
            else:
                down.append(forest[v][parent[v]]["src"])
                v = parent[v]
        return up + down[::-1]

    walks = [(k, tree_path(int(pl[k]), int(nl[k]))) for k in closing]
    on_loops = np.unique(np.concatenate([merged[c.vsrc_p[[k, *path]]] for k, path in walks]
                                        + [merged[c.vsrc_n[[k, *path]]] for k, path in walks]))
    shorts = nx.Graph()
    for r in np.flatnonzero(short & np.isin(merged[c.res_a], on_loops)):
        shorts.add_edge(int(c.res_a[r]), int(c.res_b[r]), res=int(r))

    loops = []
    for k, path in walks:
        names = [c.vsrc_names[k]]
        at = int(c.vsrc_p[k])  # the walk leaves source k at its + terminal
        for s in path:
            # Enter source s at whichever terminal lies on the current merged node.
            enter, leave = (c.vsrc_p[s], c.vsrc_n[s]) if merged[c.vsrc_p[s]] == merged[at] else (
                c.vsrc_n[s], c.vsrc_p[s])
            names += _short_path(shorts, c, at, int(enter))
            names.append(c.vsrc_names[s])
            at = int(leave)
        names += _short_path(shorts, c, at, int(c.vsrc_n[k]))
        loops.append(names)
    return loops


def _some(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_topology(circuit: Circuit) -> None:
    """Raise :class:`TopologyError` naming every kind of defect found; return None if solvable.

    The message is one line and names up to five offenders per kind ("and N more" after).
    """
    problems = []
    floating = floating_nodes(circuit)
    if floating:
        problems.append(f"{len(floating)} floating node(s) with no DC path to ground: {_some(floating)}")
    cuts = current_source_cutsets(circuit)
    if cuts:
        problems.append("current sources with no other path (series cut sets): "
                        + _some(["{" + _some(cut) + "}" for cut in cuts]))
    loops = source_loops(circuit)
    if loops:
        problems.append(f"{len(loops)} loop(s) of voltage sources and 0 Ω shorts: "
                        + _some(["{" + _some(loop) + "}" for loop in loops]))
    if problems:
        where = f"circuit {circuit.title!r}" if circuit.title else "circuit"
        raise TopologyError(f"{where} cannot be solved: " + "; ".join(problems))
    log.debug("topology of %s: %d nodes, no defects", circuit.title or "circuit", circuit.n_nodes)
