"""Compact device models, pulse programming, variation and pulse-response tables.

Layer: imports nothing from :mod:`cosim.circuit` (DESIGN.md §1). Models are written twice from
the same published equations: readable numpy (the reference) and Verilog-A in ``models/*.va``
(compiled by verilogae on demand; parity-tested to 1e-10 relative).

Public names:

Cards (``models/cards/*.toml``) — :mod:`cosim.devices.cards`
    :func:`load_card` (path → :class:`DeviceCard`), :func:`card_from_dict`,
    :class:`DeviceCard` (model, params, variation, programming, hash),
    :class:`VariationSpec` (c2c, c2c_mode, d2d, d2d_distribution, stuck_on, stuck_off, dead),
    :class:`ProgrammingSpec` (amplitude_set, amplitude_reset, width, rise, fall, v_read).
Models — :mod:`cosim.devices.base`, :mod:`cosim.devices.registry`
    :data:`MODELS` (name → numpy model: ``vteam``, ``stanford_pku``, ``pulse_nl``),
    :func:`get_model` (name, backend "numpy" | "compiled" | "auto"), :class:`DeviceModel`
    (current, state_rate, conductance, state_bounds, state_for_conductance, g_window),
    :class:`ParamSpec`; classes :class:`VTEAM`, :class:`StanfordPKU`, :class:`PulseNL`.
Pulses — :mod:`cosim.devices.pulse`, :mod:`cosim.devices.integrate`
    :class:`Pulse` (amplitude, width, rise, fall), :func:`integrate_pulse` (many devices, one
    pulse), :class:`IntegratorOptions` (auto | adaptive | rk4 | exact), :class:`PulseStats`.
Populations — :mod:`cosim.devices.population`
    :class:`DevicePopulation` (create, state, conductance, set_conductance, apply_pulses,
    apply_voltage_pulses, window, stats), :class:`PopulationStats`.
Tables — :mod:`cosim.devices.table`, :mod:`cosim.devices.nonlinearity`
    :class:`PulseTable` (from_card, g_min, g_max, delta_g, pulses_for, apply, levels, n_levels,
    nonlinearity, asymmetry), :func:`a_from_nl`, :func:`nl_from_a`.
Compiled path — :mod:`cosim.devices.compiled` (imported lazily by :func:`get_model`)
    ``compile_va``, ``CompiledModel``; :mod:`cosim.devices.paths`: ``cache_root``, ``models_dir``.
"""

from cosim.devices.base import DeviceModel
from cosim.devices.cards import DeviceCard, ProgrammingSpec, VariationSpec, card_from_dict, load_card
from cosim.devices.integrate import IntegratorOptions, PulseStats, integrate_pulse
from cosim.devices.nonlinearity import a_from_nl, nl_from_a
from cosim.devices.params import ParamSpec
from cosim.devices.population import DevicePopulation, PopulationStats
from cosim.devices.pulse import Pulse
from cosim.devices.pulse_nl import PulseNL
from cosim.devices.registry import MODELS, get_model
from cosim.devices.stanford_pku import StanfordPKU
from cosim.devices.table import PulseTable
from cosim.devices.vteam import VTEAM

__all__ = [
    "MODELS", "DeviceCard", "DeviceModel", "DevicePopulation", "IntegratorOptions", "ParamSpec",
    "PopulationStats", "ProgrammingSpec", "Pulse", "PulseNL", "PulseStats", "PulseTable",
    "StanfordPKU", "VTEAM", "VariationSpec", "a_from_nl", "card_from_dict", "get_model",
    "integrate_pulse", "load_card", "nl_from_a",
]
