"""Devices and access elements → the circuit layer's cell laws (:mod:`cosim.circuit.cells`).

The circuit layer knows laws, not devices; this module maps a compact model's state and card
onto the law its current obeys at a fixed state, and reads the access-element cards
(``models/cards/cells/*.toml``: the 1S1R selector, the 1T1R level-1 transistor). A test holds
every map to the device model's own ``current`` (and the Verilog-A sources), so a change in one
shows up as a failure, not as a silent mismatch.

- ``vteam``: ohmic at a fixed state (i = v/R(w), ``models/vteam.va``), g = 1/R(w).
- ``stanford_pku``: i = i0·exp(−gap/g0)·sinh(v/v0) (Jiang et al. 2016, eq. 1).
- ``pulse_nl``: ohmic, g = g_min + (g_max − g_min)·x; with its card's v_nl > 0,
  i = g·v_nl·sinh(v/v_nl) (g stays the small-signal conductance).
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosim.circuit.cells import Cell, Law, Mosfet, Ohmic, SeriesCell, Sinh
from cosim.devices.base import DeviceModel, Params
from cosim.devices.params import ParamSpec, check_params, check_value
from cosim.devices.paths import models_dir
from cosim.errors import SpecError


def _vteam(model: DeviceModel, state, params: Params) -> Law:
    return Ohmic(model.conductance(state, 1.0, params))


def _stanford_pku(model: DeviceModel, state, params: Params) -> Law:
    a = params["i0"] * np.exp(-np.asarray(state, dtype=float) / params["g0"])
    return Sinh(a, np.asarray(params["v0"], dtype=float))


def _pulse_nl(model: DeviceModel, state, params: Params) -> Law:
    g = model.small_signal(state, params)
    v_nl = np.asarray(params.get("v_nl", 0.0), dtype=float)
    if np.all(v_nl == 0):
        return Ohmic(g)
    if np.any(v_nl == 0):
        raise SpecError("pulse_nl devices mix ohmic (v_nl = 0) and sinh (v_nl > 0) I-V laws in one array")
    return Sinh.from_small_signal(g, v_nl)


#: model name → (model, state (N, M), params) → the law of its current at that state.
DEVICE_LAWS: dict[str, Callable[[DeviceModel, np.ndarray, Params], Law]] = {
    "vteam": _vteam,
    "stanford_pku": _stanford_pku,
    "pulse_nl": _pulse_nl,
}


def device_law(model: DeviceModel, state: np.ndarray, params: Params) -> Law:
    """The I(V) law of devices of ``model`` held at ``state`` (per-device ``params`` allowed)."""
    try:
        make = DEVICE_LAWS[model.name]
    except KeyError:
        raise SpecError(f"model {model.name!r} has no cell law; known: {', '.join(DEVICE_LAWS)}") from None
    return make(model, state, params)


def _p(name, unit, lo, hi, doc, **kw) -> ParamSpec:
    return ParamSpec(name=name, unit=unit, lo=lo, hi=hi, doc=doc, **kw)


#: Parameters of the access-element Verilog-A modules (models/selector.va, models/nmos_l1.va).
ACCESS_SPECS: dict[str, tuple[ParamSpec, ...]] = {
    "selector": (
        _p("i_s", "A", 0.0, 1.0, "tunnelling current prefactor", lo_open=True),
        _p("v_s", "V", 0.0, 10.0, "nonlinearity voltage", lo_open=True),
        _p("g_leak", "S", 0.0, 1.0, "leakage conductance"),
    ),
    "nmos_l1": (
        _p("vt", "V", -5.0, 5.0, "threshold voltage"),
        _p("kp", "A/V²", 0.0, 1.0, "transconductance parameter µ·Cox", lo_open=True),
        _p("w", "m", 0.0, 1e-3, "channel width", lo_open=True),
        _p("l", "m", 0.0, 1e-3, "channel length", lo_open=True),
        _p("lambda", "1/V", 0.0, 10.0, "channel-length modulation"),
    ),
}
_V_GATE = _p("v_gate", "V", 0.0, 20.0, "selected word-line (gate) voltage")


@dataclass(frozen=True, kw_only=True, slots=True)
class AccessCard:
    """A selector or access-transistor card.

    Attributes:
        model: "selector" (1S1R) or "nmos_l1" (1T1R).
        params: the Verilog-A module's parameters, SI (see :data:`ACCESS_SPECS`).
        v_gate: selected word-line voltage, V (nmos_l1 only; deselected rows hold 0 V).
        name, source: card file stem and path, for messages.
    """

    model: str
    params: Mapping[str, float] = field(default_factory=dict)
    v_gate: float | None = None
    name: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        at = f"{self.source}: " if self.source else ""
        if self.model not in ACCESS_SPECS:
            raise SpecError(f"{at}model must be one of {', '.join(ACCESS_SPECS)}, got {self.model!r}")
        try:
            object.__setattr__(self, "params", check_params(ACCESS_SPECS[self.model], self.params, "params"))
            if self.model == "nmos_l1":
                if self.v_gate is None:
                    raise SpecError("bias.v_gate is missing (selected word-line voltage, V)")
                object.__setattr__(self, "v_gate", check_value(_V_GATE, self.v_gate, "bias.v_gate"))
        except SpecError as exc:
            raise SpecError(f"{at}{exc}") from None

    def law(self, rows_on: np.ndarray, shape: tuple[int, int]) -> Law:
        """The access law of an (N, M) array; ``rows_on`` (N,) marks rows whose word line is on."""
        p = self.params
        if self.model == "selector":
            return Sinh(p["i_s"], p["v_s"], p["g_leak"])
        gate = np.where(np.asarray(rows_on, dtype=bool), self.v_gate, 0.0)[:, None]
        return Mosfet(beta=p["kp"] * p["w"] / p["l"], vt=p["vt"], lam=p["lambda"],
                      v_gate=np.broadcast_to(gate, shape))


def cells_dir() -> Path:
    """Directory of the shipped access-element cards."""
    return models_dir() / "cards" / "cells"


#: Cards read so far, by (path, modification time, size): a training tile's cells are composed
#: again at every prepare, and the card file stays the same.
_CARDS: dict[tuple[str, int, int], AccessCard] = {}


def load_access_card(path: str | Path) -> AccessCard:
    """Read an access-element card (a path, or a shipped card's name such as "selector_default")."""
    path = Path(path)
    if not path.suffix and not path.exists():
        path = cells_dir() / f"{path.name}.toml"
    try:
        st = path.stat()
    except OSError as exc:
        raise SpecError(f"cannot read cell card {path}: {exc}") from None
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _CARDS:
        _CARDS[key] = _read_access_card(path)
    card = _CARDS[key]
    return dataclasses.replace(card, params=dict(card.params))  # the caller's own params


def _read_access_card(path: Path) -> AccessCard:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read cell card {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: invalid TOML: {exc}") from None
    unknown = sorted(set(data) - {"model", "description", "params", "bias"})
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r}; expected model, description, params, bias")
    bias = data.get("bias", {})
    if not isinstance(bias, Mapping) or set(bias) - {"v_gate"}:
        raise SpecError(f"{path}: [bias] may hold only v_gate (V)")
    if data.get("model") != "nmos_l1" and bias:
        raise SpecError(f"{path}: [bias] applies to the access transistor (nmos_l1) only")
    return AccessCard(model=data.get("model", ""), params=dict(data.get("params", {})),
                      v_gate=bias.get("v_gate"), name=path.stem, source=str(path))


# -- cell kinds (cosim.catalog.CELL_TYPES) → the law a CrossbarSpec carries ---------------------

#: The shipped access card each series cell kind uses when ``array.access_card`` is not given.
DEFAULT_ACCESS = {"1S1R": "selector_default", "1T1R-mos": "nmos_l1_default"}
_ACCESS_MODEL = {"1S1R": "selector", "1T1R-mos": "nmos_l1"}


def check_cell_fields(cell: str, access_card: str | None, v_gate: float | None, at: str = "array") -> None:
    """Refuse access-element settings the cell kind does not use (they would be ignored)."""
    if access_card is not None and cell not in DEFAULT_ACCESS:
        raise SpecError.at(f"{at}.access_card", f"applies to cells 1S1R and 1T1R-mos, not {cell!r}")
    if v_gate is not None and cell != "1T1R-mos":
        raise SpecError.at(f"{at}.v_gate", f"applies to cell 1T1R-mos (the access transistor's gate), not {cell!r}")


def access_card_for(cell: str, access_card: str | None = None, v_gate: float | None = None) -> AccessCard | None:
    """The access element of a cell kind (None for the ohmic kinds and "device"), checked:
    a 1S1R cell needs a selector card, a 1T1R-mos cell a transistor card."""
    if cell not in DEFAULT_ACCESS:
        check_cell_fields(cell, access_card, v_gate)
        return None
    card = load_access_card(access_card or DEFAULT_ACCESS[cell])
    if card.model != _ACCESS_MODEL[cell]:
        raise SpecError.at("array.access_card", f"{card.source}: a {cell} cell needs a {_ACCESS_MODEL[cell]} card, "
                                                f"got model {card.model!r}")
    if v_gate is not None:
        if cell != "1T1R-mos":
            raise SpecError.at("array.v_gate", f"applies to cell 1T1R-mos, not {cell!r}")
        card = AccessCard(model=card.model, params=card.params, v_gate=v_gate, name=card.name, source=card.source)
    return card


def compose(cell: str, device: Law, access: AccessCard | None, shape: tuple[int, int]) -> Cell:
    """The law of a nonlinear cell kind: the device alone, or in series with ``access`` (every
    row's gate at the selected word-line voltage; the circuit turns unselected rows off)."""
    if cell == "device":
        return device
    if access is None:
        raise SpecError(f"cell {cell!r} needs an access card")
    return SeriesCell(device, access.law(np.ones(shape[0], dtype=bool), shape))


def population_law(population) -> Law:
    """The I(V) law of every device of ``population`` at its present state, (rows, cols):
    per-device parameters, stuck devices at their window's end, dead devices open."""
    shape = population.shape
    params = population.shaped_params()
    state = population.state
    if not population.healthy.all():
        lo, hi = (np.broadcast_to(b, shape) for b in population.model.state_bounds(params))
        to_on = population.model.bound_toward(+1, params)
        on = np.broadcast_to(to_on, shape)
        off = np.where(on == hi, lo, hi)
        state = np.where(population.stuck_on.reshape(shape), on, np.where(population.stuck_off.reshape(shape), off, state))
    law = device_law(population.model, state, params)
    dead = population.dead.reshape(shape)
    if dead.any():
        if isinstance(law, Sinh):
            law = Sinh(np.where(dead, 0.0, law.a), law.v0, np.where(dead, 0.0, law.g_lin))
        else:
            law = Ohmic(np.where(dead, 0.0, law.g))
    return law


def law_from_conductances(g: np.ndarray, card, v_read: float | None = None) -> Law:
    """The device law of cells whose read conductances at ``v_read`` (default the card's) are
    ``g`` (S): each state is the card's model state with that conductance (nominal parameters).
    Refuses conductances outside the card's window, which no state reaches."""
    from cosim.devices import get_model  # noqa: PLC0415

    model = get_model(card.model)
    params = dict(card.params)
    v = card.programming.v_read if v_read is None else float(v_read)
    lo, hi = (float(np.min(b)) for b in model.g_window(v, params))
    g = np.asarray(g, dtype=float)
    if g.min() < lo * (1 - 1e-9) or g.max() > hi * (1 + 1e-9):
        raise SpecError(f"conductances {g.min():.4g}..{g.max():.4g} S lie outside the {card.model} window "
                        f"{lo:.4g}..{hi:.4g} S at {v:g} V of card {getattr(card, 'name', '')!r}; "
                        "no device state reads them")
    state = model.state_for_conductance(np.clip(g, lo, hi), v, params)
    return device_law(model, state, params)
