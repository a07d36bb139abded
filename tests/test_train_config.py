"""Training configs: defaults, TOML round trip, overrides, and every kind of bad input.

Budget: ~2 s (no training runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cosim.errors import SpecError
from cosim.train import STUDY_SECTIONS, apply_overrides, load_config, to_toml, validate_training_config
from cosim.train.config import IDX_STEMS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_are_the_digits_mlp_with_ssm():
    cfg = load_config(None)
    assert (cfg.data.name, cfg.network.kind, cfg.optimizer.name, cfg.device.card) == ("digits", "mlp", "ssm",
                                                                                      "imprecise")
    assert (cfg.array.rows, cfg.array.cols, cfg.solver.engine) == (64, 64, "ideal")


def test_toml_round_trip_and_overrides(tmp_path):
    cfg = load_config(None, ["array.r_row=2.5", "optimizer.beta=0.95", 'solver.engine="nodal"',
                             "network.hidden=[32, 16]", "device.params.a_p=30.0", "train.reference_lr=none"])
    assert cfg.array.r_row == 2.5 and cfg.optimizer.options["beta"] == 0.95 and cfg.network.hidden == (32, 16)
    assert cfg.device.params["a_p"] == 30.0 and cfg.train.reference_lr is None
    p = tmp_path / "c.toml"
    p.write_text(to_toml(cfg))
    again = load_config(p)
    assert again.replace(source="") == cfg.replace(source="")


def test_shipped_configs_validate(tmp_path):
    # Every shipped training config, MNIST ones included: their data are not shipped, so they get a
    # folder holding the four IDX file names (validation checks the files exist; nothing is read).
    for stem in IDX_STEMS:
        (tmp_path / f"{stem}-idx-ubyte.gz").write_bytes(b"")
    names = sorted(p.name for p in CONFIGS.glob("*.toml") if not p.name.startswith("study_"))
    assert len(names) >= 10 and {"mnist_mlp_ssm.toml", "mnist_cnn_ssm.toml", "digits_mlp_ssm.toml"} <= set(names)
    checked = []
    for name in names:
        kind = next((k for k in ("mnist", "fashion") if name.startswith(k)), "digits")
        cfg = load_config(CONFIGS / name, [f'data.dir="{tmp_path}"'] if kind != "digits" else [])
        assert cfg.data.name == kind, name
        checked.append(name)
    assert checked == names


@pytest.mark.parametrize("overrides, message", [
    (["arry.rows=64"], r"\[arry\] is not a section .*did you mean 'array'"),
    (["array.tile_row=8"], r"array.tile_row is not a field of \[array\]; did you mean 'tile_rows'"),
    (["optimizer.bta=0.5"], r"no option 'bta'; did you mean 'beta'"),
    (["train.epochs=1.5"], r"train.epochs must be an integer, got 1.5"),
    (["train.batch=0"], r"train.batch must be ≥ 1"),
    (['array.r_row="one"'], r"array.r_row must be a finite number, got 'one'"),
    (["array.r_col=-1"], r"array.r_col must be ≥ 0 Ω"),
    (["array.tile_rows=128"], r"array.tile_rows = 128 is larger than the array \(array.rows = 64\)"),
    (['array.mapping="reference"', "array.tile_cols=64"], r"array.tile_cols = 64 is larger than the array"),
    (['array.mapping="reference"'], r"set optimizer.policy = 'plus-only'"),
    (["converters.adc_bits=40"], r"converters.adc_bits must be ≤ 24"),
    (['solver.engine="spyce"'], r"solver.engine must be one of .*did you mean 'spice'"),
    (['device.card="imprecis"'], r"device.card: no card named 'imprecis'.*did you mean 'imprecise'"),
    (["device.params.a_p=-3.0"], r"params.a_p must be"),
    (['data.name="mnist"'], r"data.dir must name the folder"),
    (['data.name="mnist"', 'data.dir="/no/such/dir"'], r"data.dir: no such directory"),
    (["optimizer.lr=0.1"], r"set the learning rate as train.lr"),
    (["train.reference_beta=1.0"], r"train.reference_beta must be < 1"),
    (["network.hidden=[16]", 'network.kind="cnn"'], r"network.hidden applies to kind 'mlp' only"),
    (["arrayrows=3"], r"--set expects section.key=value"),
])
def test_bad_configs_name_the_field(overrides, message):
    with pytest.raises(SpecError, match=message):
        load_config(None, overrides)


def test_missing_idx_files_and_file_errors(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(SpecError, match="no train-labels"):
        load_config(None, ['data.name="mnist"', f'data.dir="{tmp_path}"'])
    with pytest.raises(SpecError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1\n")
    with pytest.raises(SpecError, match="bad.toml: invalid TOML"):
        load_config(bad)
    rel = tmp_path / "rel.toml"
    rel.write_text("[train]\nepoch = 3\n")
    with pytest.raises(SpecError, match=r"rel.toml: train.epoch is not a field .*did you mean 'epochs'"):
        load_config(rel)


def test_validate_dict_and_study_sections():
    cfg = validate_training_config({"train": {"epochs": 2}, "optimizer": {"name": "manhattan", "n_pulses": 2}})
    assert cfg.train.epochs == 2 and cfg.optimizer.build().config.n_pulses == 2
    assert STUDY_SECTIONS["array"]({"rows": 32, "cols": 32})["tile_rows"] is None
    assert "hidden" in STUDY_SECTIONS["network"].vector_fields
    with pytest.raises(SpecError, match="array.r_row must be ≥ 0"):
        STUDY_SECTIONS["array"]({"r_row": -2.0})
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x y"]) == {"a": {"b": 1, "c": "x y"}}
