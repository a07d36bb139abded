"""Small circuit edits shared by every nodal path: new device conductances, same-network checks.

A training step changes only the device conductances of an array; the wires, ports and sources
stay. :func:`with_devices` gives the circuit of the same array with new devices, either by
rebuilding it from the spec (always exact) or, without a spec, by replacing the cell block of a
circuit in which no island can open or close (no floating port, no switched-off 1T1R access).
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np

from cosim.circuit.build import build_circuit
from cosim.circuit.model import Circuit
from cosim.circuit.spec import CrossbarSpec
from cosim.errors import EngineError, InputError


def check_devices(circuit: Circuit, g_new) -> np.ndarray:
    """``g_new`` as an (N, M) float array of finite conductances ≥ 0 S, or :class:`InputError`."""
    lay = circuit.layout
    g = np.asarray(g_new, dtype=float)
    shape = (lay.n_rows, lay.n_cols)
    if g.shape != shape:
        raise InputError(f"conductances must have shape {shape} (rows, cols), got {g.shape}")
    bad = ~np.isfinite(g) | (g < 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(f"conductances[{i},{j}] must be a finite conductance ≥ 0 S, got {g[i, j]!r}")
    return g


def same_network(a: Circuit, b: Circuit) -> bool:
    """True when ``a`` and ``b`` have the same resistors and source terminals (one matrix)."""
    return (a.n_nodes == b.n_nodes and a.res_g.size == b.res_g.size
            and np.array_equal(a.res_a, b.res_a) and np.array_equal(a.res_b, b.res_b)
            and np.array_equal(a.res_g, b.res_g) and np.array_equal(a.vsrc_p, b.vsrc_p)
            and np.array_equal(a.vsrc_n, b.vsrc_n) and np.array_equal(a.isrc_a, b.isrc_a)
            and np.array_equal(a.isrc_b, b.isrc_b) and np.array_equal(a.isrc_dc, b.isrc_dc))


def same_except_cells(a: Circuit, b: Circuit) -> bool:
    """True when ``a`` and ``b`` differ at most in their device (cell) conductances."""
    if a.layout is None or b.layout is None or a.res_g.size != b.res_g.size:
        return False
    keep = np.ones(a.res_g.size, dtype=bool)
    keep[_cell_block(a)] = False
    return (np.array_equal(a.res_a, b.res_a) and np.array_equal(a.res_b, b.res_b)
            and np.array_equal(a.res_g[keep], b.res_g[keep]) and np.array_equal(a.vsrc_p, b.vsrc_p)
            and np.array_equal(a.vsrc_n, b.vsrc_n))


def cells(circuit: Circuit) -> np.ndarray:
    """Device conductances (N, M) in S as the circuit holds them (islands opened to 0)."""
    lay = circuit.layout
    return circuit.res_g[_cell_block(circuit)].reshape(lay.n_rows, lay.n_cols)


def _cell_block(circuit: Circuit) -> slice:
    lay = circuit.layout
    return slice(lay.cell_res0, lay.cell_res0 + lay.n_rows * lay.n_cols)


def with_devices(circuit: Circuit, g_new, spec: CrossbarSpec | None = None, **changes: Any) -> Circuit:
    """The circuit of the same crossbar read with device conductances ``g_new`` (N, M), S, and the
    other :class:`Circuit` fields in ``changes`` (e.g. ``cell_law``) replaced in the same step: a
    circuit's construction validates its arrays, which a second ``dataclasses.replace`` repeated
    (after every write of a device-cell tile: benchmarks/results/docstring_figures.md)."""
    lay = circuit.layout
    if lay is None:
        raise EngineError("new device conductances apply only to crossbar circuits (a spec)")
    g = check_devices(circuit, g_new)
    if spec is not None:
        built = build_circuit(spec.replace(conductances=g), transpose=lay.transpose)
        return dataclasses.replace(built, **changes) if changes else built
    n, m = lay.n_rows, lay.n_cols
    names = dict(circuit.res_names.blocks) if hasattr(circuit.res_names, "blocks") else {}
    ports = [p for p in ("rdl", "rdr", "rsb", "rst") if p in names]
    starts = {p: int(circuit.res_names.starts[k]) for k, (p, _) in enumerate(circuit.res_names.blocks)}
    floating = any(np.any(circuit.res_g[starts[p]:starts[p] + int(np.prod(names[p]))] == 0) for p in ports)
    off_access = lay.access_res0 >= 0 and np.any(circuit.res_g[lay.access_res0:lay.access_res0 + n * m] == 0)
    if floating or off_access:
        raise EngineError("this array has floating lines or switched-off 1T1R rows, whose islands "
                          "depend on the devices; prepare it from its spec (prepare_spec/prepare_pair) "
                          "to update conductances")
    res_g = circuit.res_g.copy()
    res_g[_cell_block(circuit)] = g.ravel()
    # Unselected lines are biased, not sensed: recover the selection from sources and outputs.
    n_drive = m if lay.transpose else n
    base = n if lay.transpose else 0
    driven = circuit.vsrc_input[base:base + n_drive] >= 0
    sensed = np.zeros(n if lay.transpose else m, dtype=bool)
    sensed[circuit.out_index] = True
    rows_on, cols_on = (sensed, driven) if lay.transpose else (driven, sensed)
    ideal = g * rows_on[:, None] * cols_on[None, :]
    layout = dataclasses.replace(lay, ideal_g=ideal.T if lay.transpose else ideal)
    digest = hashlib.sha256(circuit.key.encode())
    digest.update(np.ascontiguousarray(g))  # the buffer itself: tobytes() copied it first
    digest = digest.hexdigest()[:16]
    return dataclasses.replace(circuit, res_g=res_g, layout=layout, key=digest, **changes)
