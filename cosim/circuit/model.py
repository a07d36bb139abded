"""The circuit every engine solves: integer nodes plus vectorised element arrays.

Node 0 is ground (SPICE's ``0``). Resistive elements are stored by *conductance* in siemens so
that both limits are exact: ``g = inf`` is an ideal short (a 0 Ω resistor) and ``g = 0`` an
absent element (an open switch, a zero-conductance device). Voltage-source values are affine in
the read's input vector: ``value = dc + scale * inputs[input]`` (``input = -1`` for none), so one
circuit serves a whole batch of reads.

Names are computed on demand (:class:`GridNames`) so a 1024×1024 array does not build two
million strings until a netlist is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cosim.errors import InputError


class GridNames(Sequence[str]):
    """Names ``prefix`` + indices joined by ``_`` over consecutive blocks of a grid.

    ``GridNames([("0", ()), ("r", (2, 3))])`` names index 0 ``"0"`` and indices 1..6
    ``r0_0 … r1_2``. Lookup by name is O(1) arithmetic, not a dict.
    """

    def __init__(self, blocks: Sequence[tuple[str, tuple[int, ...]]]):
        self.blocks = [(p, tuple(s)) for p, s in blocks]
        sizes = [int(np.prod(s)) if s else 1 for _, s in self.blocks]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self._by_prefix = {p: k for k, (p, _) in enumerate(self.blocks)}

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, k):  # type: ignore[override]
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        k = int(k)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        b = int(np.searchsorted(self.starts, k, side="right")) - 1
        prefix, shape = self.blocks[b]
        if not shape:
            return prefix
        idx = np.unravel_index(k - self.starts[b], shape)
        return prefix + "_".join(str(int(i)) for i in idx)

    _pat = re.compile(r"^([a-z]+?)(\d+(?:_\d+)*)$")

    def index(self, name: str) -> int:  # type: ignore[override]
        """Index of ``name``; raises KeyError when it is not in the grid."""
        if name in self._by_prefix and not self.blocks[self._by_prefix[name]][1]:
            return int(self.starts[self._by_prefix[name]])
        m = self._pat.match(name)
        if not m or m.group(1) not in self._by_prefix:
            raise KeyError(name)
        b = self._by_prefix[m.group(1)]
        shape = self.blocks[b][1]
        idx = tuple(int(x) for x in m.group(2).split("_"))
        if len(idx) != len(shape) or any(i >= s for i, s in zip(idx, shape)):
            raise KeyError(name)
        return int(self.starts[b] + np.ravel_multi_index(idx, shape))

    def __contains__(self, name) -> bool:  # type: ignore[override]
        try:
            self.index(name)
        except (KeyError, TypeError):
            return False
        return True


class ListNames(list):
    """Explicit names (parsed netlists) with O(1) lookup."""

    def __init__(self, names: Sequence[str]):
        super().__init__(names)
        self._pos = {n: i for i, n in enumerate(names)}

    def index(self, name: str) -> int:  # type: ignore[override]
        return self._pos[name]

    def __contains__(self, name) -> bool:  # type: ignore[override]
        return name in self._pos


def _ints(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _floats(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=float)


@dataclass(frozen=True, slots=True)
class CrossbarLayout:
    """Where a crossbar's parts sit inside its :class:`Circuit` (for engines that exploit it).

    Node blocks follow :func:`cosim.circuit.build.build_circuit`: ground, rows ``r``, columns
    ``c``, 1T1R mid nodes ``m`` (if any), row ports ``d``, column ports ``s``.
    """

    n_rows: int
    n_cols: int
    transpose: bool
    row_node0: int
    col_node0: int
    mid_node0: int  # -1 for 0T1R
    cell_res0: int  # resistor index of cell (0, 0); cells are consecutive, row-major
    access_res0: int  # -1 for 0T1R
    ideal_g: np.ndarray  # (n_inputs, n_outputs) conductance of the intended MVM, S
    ideal_offset: float  # volts subtracted from every input in the ideal read
    ideal_mask: np.ndarray | None = None  # (n_inputs, n_outputs) cells the intended read counts


@dataclass(frozen=True, slots=True)
class Controls:
    """Linear controlled sources (SPICE E, F, G, H) as terms added to existing sources.

    A voltage source ``k`` with terms constrains ``v(p) − v(n) − Σ coef·v(node) − Σ coef·i(src)
    = dc``; a current source ``k`` with terms carries ``dc + Σ coef·v(node) + Σ coef·i(src)``
    amperes (same direction as its ``dc``). ``i(src)`` is a voltage source's branch current,
    SPICE sign. E and H are voltage sources, G and F current sources, each with ``dc = 0``.
    """

    v_node_src: np.ndarray  # voltage-source index, node index, coefficient (V/V)
    v_node: np.ndarray
    v_node_coef: np.ndarray
    v_curr_src: np.ndarray  # voltage-source index, controlling source, coefficient (Ω)
    v_curr: np.ndarray
    v_curr_coef: np.ndarray
    i_node_src: np.ndarray  # current-source index, node index, coefficient (S)
    i_node: np.ndarray
    i_node_coef: np.ndarray
    i_curr_src: np.ndarray  # current-source index, controlling source, coefficient (A/A)
    i_curr: np.ndarray
    i_curr_coef: np.ndarray

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            conv = _floats if name.endswith("coef") else _ints
            object.__setattr__(self, name, conv(getattr(self, name)))

    def controlling(self) -> np.ndarray:
        """Voltage sources whose branch current controls another source."""
        return np.unique(np.concatenate([self.v_curr, self.i_curr]))

    def constrained(self) -> np.ndarray:
        """Voltage sources with control terms (E and H)."""
        return np.unique(np.concatenate([self.v_node_src, self.v_curr_src]))


@dataclass(frozen=True, slots=True)
class Circuit:
    """A DC resistive circuit with affine sources; see the module docstring.

    Voltage-source branch currents follow SPICE: positive when current flows from the ``+``
    node through the source to the ``-`` node. Current sources push ``dc`` amperes from ``a``
    through the source into ``b`` (SPICE ``I a b dc``).
    """

    node_names: Sequence[str]
    res_a: np.ndarray
    res_b: np.ndarray
    res_g: np.ndarray
    res_names: Sequence[str]
    vsrc_p: np.ndarray
    vsrc_n: np.ndarray
    vsrc_dc: np.ndarray
    vsrc_input: np.ndarray
    vsrc_scale: np.ndarray
    vsrc_names: Sequence[str]
    isrc_a: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    isrc_b: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    isrc_dc: np.ndarray = field(default_factory=lambda: np.zeros(0))
    isrc_names: Sequence[str] = ()
    n_inputs: int = 0
    out_src: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    out_index: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    n_outputs: int = 0
    title: str = ""
    layout: CrossbarLayout | None = None
    key: str = ""
    controls: Controls | None = None
    spice_names: bool = False  # names are already ngspice's (a circuit read from a deck)
    #: Nonlinear cells (:mod:`cosim.circuit.cells`): their I–V replaces the cell resistors'
    #: conductances (which stay as the read conductances). Engines that do not model it refuse
    #: the circuit (:func:`cosim.circuit.engines.base.prepare`).
    cell_law: Any = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("res_a", "res_b", "vsrc_p", "vsrc_n", "vsrc_input", "isrc_a", "isrc_b",
                     "out_src", "out_index"):
            set_(self, name, _ints(getattr(self, name)))
        for name in ("res_g", "vsrc_dc", "vsrc_scale", "isrc_dc"):
            set_(self, name, _floats(getattr(self, name)))
        n = len(self.node_names)
        for name in ("res_a", "res_b", "vsrc_p", "vsrc_n", "isrc_a", "isrc_b"):
            a = getattr(self, name)
            if a.size and (a.min() < 0 or a.max() >= n):
                raise InputError(f"circuit.{name} refers to a node outside 0..{n - 1}")

    @property
    def n_nodes(self) -> int:
        """Number of nodes including ground."""
        return len(self.node_names)

    def source_values(self, inputs: np.ndarray) -> np.ndarray:
        """Voltage-source values (B, n_vsrc) in volts for a batch of inputs (B, n_inputs)."""
        v = np.asarray(inputs, dtype=float)
        values = np.broadcast_to(self.vsrc_dc, (v.shape[0], self.vsrc_dc.size)).copy()
        driven = self.vsrc_input >= 0
        if driven.any():
            values[:, driven] += self.vsrc_scale[driven] * v[:, self.vsrc_input[driven]]
        return values

    def outputs_from_branches(self, branch: np.ndarray) -> np.ndarray:
        """Output currents (B, n_outputs) in amperes summed from source branch currents."""
        out = np.zeros((branch.shape[0], self.n_outputs))
        np.add.at(out.T, self.out_index, branch[:, self.out_src].T)
        return out


def as_batch(inputs, n_inputs: int, what: str = "inputs") -> tuple[np.ndarray, bool]:
    """Return inputs as (B, n_inputs) float and whether a single vector was given."""
    v = np.asarray(inputs, dtype=float)
    single = v.ndim == 1
    if single:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != n_inputs:
        raise InputError(f"{what} must have shape (B, {n_inputs}) or ({n_inputs},), got {np.shape(inputs)}")
    if not np.isfinite(v).all():
        raise InputError(f"{what} must be finite volts, found NaN or inf")
    return v, single
