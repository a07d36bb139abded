"""Device cards: the shipped cards load; every kind of bad card fails with the field named.

Budget: < 2 s.
"""

from __future__ import annotations

import dataclasses
import tomllib

import pytest

from cosim.devices import MODELS, DeviceCard, card_from_dict, load_card
from cosim.devices.paths import models_dir
from cosim.errors import CosimError, SpecError

CARD_DIR = models_dir() / "cards"
SHIPPED = sorted(p.stem for p in CARD_DIR.glob("*.toml"))


def test_the_required_cards_are_shipped():
    assert {"vteam_default", "stanford_pku_default", "pulse_nl_default", "imprecise"} <= set(SHIPPED)


@pytest.mark.parametrize("stem", SHIPPED)
def test_shipped_card_loads_and_cites_every_number(stem):
    path = CARD_DIR / f"{stem}.toml"
    card = load_card(path)
    assert card.model in MODELS and card.name == stem
    assert set(card.params) == {s.name for s in MODELS[card.model].specs}
    # Every parameter line carries a comment (the source of the number).
    for line in path.read_text().splitlines():
        key = line.split("=")[0].strip()
        if key in card.params:
            assert "#" in line, f"{stem}: {key} has no source comment"


def test_imprecise_card_is_the_hard_case():
    card = load_card(CARD_DIR / "imprecise.toml")
    var = card.variation
    assert card.model == "pulse_nl"
    assert var.c2c == pytest.approx(0.035)
    assert all(0.1 <= s <= 0.2 for s in var.d2d.values()) and len(var.d2d) >= 2
    assert 0.01 <= var.stuck_on + var.stuck_off + var.dead <= 0.06
    assert 1e-6 <= card.params["g_min"] < card.params["g_max"] <= 1e-4  # crossbar-practical window
    assert card.params["a_p"] != card.params["a_d"] and card.params["p_max_p"] != card.params["p_max_d"]


def test_card_hash_tracks_physics_only():
    a = load_card(CARD_DIR / "vteam_default.toml")
    b = dataclasses.replace(a, description="other words", source="elsewhere.toml")
    c = dataclasses.replace(a, params={**a.params, "k_off": 6e-4})
    assert a.hash == b.hash != c.hash


def test_card_params_are_read_only():
    card = load_card(CARD_DIR / "vteam_default.toml")
    with pytest.raises(TypeError):
        card.params["k_off"] = 1.0  # type: ignore[index]


def _raw(stem="vteam_default"):
    return tomllib.loads((CARD_DIR / f"{stem}.toml").read_text())


def _write(tmp_path, data_text):
    path = tmp_path / "bad.toml"
    path.write_text(data_text)
    return path


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["params"].pop("k_off"), r"bad\.toml: params\.k_off is missing"),
    (lambda d: d["params"].update(k_off=-1.0), r"bad\.toml: params\.k_off must be in \(0, 1e\+06\] m/s"),
    (lambda d: d["params"].update(w_off=3.0), r"params\.w_off must be in \(0, 1e-06\] m"),
    (lambda d: d["params"].update(window=0.5), r"params\.window must be an integer in"),
    (lambda d: d["params"].update(r_on=2000.0), r"params must satisfy r_off > r_on"),
    (lambda d: d["params"].update(kof=1.0), r"params\.kof is not a parameter of this model"),
    (lambda d: d["params"].update(k_off="fast"), r"params\.k_off must be a number"),
    (lambda d: d.update(model="hp_memristor"), r"bad\.toml: model 'hp_memristor' is unknown; expected one of"),
    (lambda d: d.pop("model"), r"bad\.toml: model is missing"),
    (lambda d: d.pop("programming"), r"programming is missing"),
    (lambda d: d["programming"].pop("v_read"), r"programming\.v_read is missing"),
    (lambda d: d["programming"].update(width=-1e-9), r"programming\.width must be > 0 s"),
    (lambda d: d["programming"].update(amplitude_set=0.22), r"programming\.amplitude_set must have the sign -"),
    (lambda d: d["programming"].update(amplitude_reset=-0.2), r"programming\.amplitude_reset must have the sign \+"),
    (lambda d: d["programming"].update(color="red"), r"programming\.color is not a programming field"),
    (lambda d: d.update(variation={"c2c": 1.5}), r"variation\.c2c must be in \[0, 1\)"),
    (lambda d: d.update(variation={"c2c_mode": "both"}), r"variation\.c2c_mode must be 'state' or 'conductance'"),
    (lambda d: d.update(variation={"stuck_on": 0.7, "dead": 0.5}), r"stuck_on \+ stuck_off \+ dead must be ≤ 1"),
    (lambda d: d.update(variation={"d2d": {"k_of": 0.1}}), r"variation\.d2d\.k_of is not a parameter of vteam"),
    (lambda d: d.update(variation={"d2d": {"window": 0.1}}), r"variation\.d2d\.window is a mode switch"),
    (lambda d: d.update(variation={"d2d": {"k_off": 1.2}}), r"variation\.d2d\.k_off must be in \[0, 1\)"),
    (lambda d: d.update(variation={"spread": 0.1}), r"variation\.spread is not a variation field"),
    (lambda d: d.update(extra=1), r"unknown top-level key 'extra'"),
])
def test_bad_card_names_the_field(tmp_path, mutate, expected):
    data = _raw()
    mutate(data)
    with pytest.raises(SpecError, match=expected):
        card_from_dict(data, str(tmp_path / "bad.toml"))


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(SpecError, match=r"missing\.toml: device card not found"):
        load_card(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match=r"bad\.toml: invalid TOML: .*line 2"):
        load_card(_write(tmp_path, 'model = "vteam"\nparams = [oops\n'))
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00model")
    with pytest.raises(SpecError, match=r"binary\.toml: cannot read device card"):
        load_card(binary)
    with pytest.raises(SpecError, match=r"params must be a table"):
        load_card(_write(tmp_path, 'model = "vteam"\nparams = 3\n[programming]\nwidth = 1e-9\n'))


def test_errors_are_cosim_errors_with_one_line_messages(tmp_path):
    data = _raw("imprecise")
    data["params"]["g_max"] = 5.0
    with pytest.raises(CosimError) as info:
        card_from_dict(data, "imprecise.toml")
    assert "\n" not in str(info.value) and "params.g_max" in str(info.value)


def test_direct_construction_validates_too():
    card = load_card(CARD_DIR / "pulse_nl_default.toml")
    with pytest.raises(SpecError, match=r"params must satisfy v_p > v_th_p"):
        DeviceCard(model="pulse_nl", params={**card.params, "v_p": 1.0}, programming=card.programming)
