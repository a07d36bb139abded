"""The one validation toolkit (cosim.schema) and the one description of the array (cosim.catalog).

Truths checked: every config reports a bad value as one line naming the dotted field, with the
path kept as data; the tile array, the training [array], the study [array] and the CLI options
all take their rules, defaults and choices from cosim.catalog, so changing a declaration there
changes all of them.
"""

from __future__ import annotations

import argparse
import pickle

import pytest

from cosim.array import ArraySpec
from cosim.catalog import ARRAY_FIELDS, ENGINES, TILE_FIELDS
from cosim.circuit import CrossbarSpec, SolverOptions
from cosim.cli.common import add_array_options, add_solver_options
from cosim.errors import SpecError
from cosim.schema import INT_MAX, SEED_MAX, Field, Section, check_field, check_keys, fields_of
from cosim.study.irdrop import SECTIONS as IR_SECTIONS
from cosim.train.config import ArrayConfig, load_config
from cosim.train.optimizers import make_optimizer


def test_errors_carry_the_field_path_as_data():
    with pytest.raises(SpecError) as info:
        CrossbarSpec(conductances=[[1e-6]], r_access=-1.0)
    err = info.value
    assert (err.path, err.field) == ("spec.r_access", "r_access")
    assert str(err) == "spec.r_access must be ≥ 0 Ω, got -1.0"
    assert str(err.under("array")) == "array.r_access must be ≥ 0 Ω, got -1.0"
    back = pickle.loads(pickle.dumps(err))  # Dask ships errors between processes
    assert (back.path, str(back)) == (err.path, str(err))


@pytest.mark.parametrize(("build", "message"), [
    (lambda: ArraySpec(r_row=-1.0), "array.r_row must be ≥ 0 Ω, got -1.0"),
    (lambda: ArraySpec(drive="up"), "array.drive must be one of left, right, both, got 'up'"),
    (lambda: ArrayConfig(cell="1t1r"), "array.cell must be one of 0T1R, 1T1R, device, 1S1R, 1T1R-mos, got '1t1r'"),
    (lambda: SolverOptions(engine="nodel"), "solver.engine must be one of ideal, nodal, spice, got 'nodel'; "
                                            "did you mean 'nodal'?"),
    (lambda: SolverOptions(rtol="x"), "solver.rtol must be a finite number, got 'x'"),
    (lambda: make_optimizer("ssm", beta="x"), "optimizer.beta must be a finite number, got 'x'"),
    (lambda: make_optimizer("manhattan", n_pulses=1.5), "optimizer.n_pulses must be an integer, got 1.5"),
    (lambda: load_config(None, ["network.kind=1.5"]), "network.kind must be a string, got 1.5"),
    (lambda: load_config(None, ['optimizer.beta="x"']), "optimizer.beta must be a finite number, got 'x'"),
    (lambda: IR_SECTIONS["array"]({"size": 4, "sense": "bottm"}),
     "array.sense must be one of bottom, top, both, got 'bottm'; did you mean 'bottom'?"),
])
def test_type_and_range_errors_are_one_line_with_the_field(build, message):
    with pytest.raises(SpecError) as info:
        build()
    assert str(info.value) == message and "\n" not in str(info.value)
    assert info.value.path == message.split()[0]


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.epochs=1e30"], "train.epochs must be an integer, got 1e+30"),  # not exact as a float
    (["train.epochs=1e12"], "train.epochs must be ≤ 2,147,483,647 in size, got 1000000000000"),
    (["train.batch=99999999999999999999"], "train.batch must be ≤ 2,147,483,647 in size"),
    (["train.batch=2.5"], "train.batch must be an integer, got 2.5"),
    (["data.subset=1e10"], "data.subset must be ≤ 2,147,483,647 in size, got 10000000000"),
    (["train.seed=1e19"], "train.seed must be an integer, got 1e+19"),
    (["train.seed=18446744073709551616"], "train.seed must be ≤ 9.22337e+18"),
    (["train.epochs=inf"], "train.epochs must be an integer, got inf"),
    (["train.epochs=nan"], "train.epochs must be an integer, got nan"),
])
def test_integer_fields_refuse_huge_and_inexact_values(overrides, message):
    """Issue 15: `train.epochs = 1e30` was coerced to a 31-digit integer and accepted."""
    with pytest.raises(SpecError) as info:
        load_config(None, overrides)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_integer_ceiling_and_exact_floats():
    assert check_field("n", Field(type="int"), 2.0**31 - 1) == INT_MAX  # integral floats still read
    assert check_field("n", Field(type="int"), INT_MAX) == INT_MAX
    assert check_field("s", Field(type="int", maximum=SEED_MAX), 2**62) == 2**62  # a field's own maximum wins
    assert check_field("v", Field(type="list[int]"), [1.0, 2]) == [1, 2]
    for bad in (INT_MAX + 1, -INT_MAX - 1, 1e16, float(2**53 + 2)):
        with pytest.raises(SpecError):
            check_field("n", Field(type="int"), bad)
    with pytest.raises(SpecError, match=r"v\[1\] must be ≤ 2,147,483,647"):
        check_field("v", Field(type="list[int]"), [1, 10**12])
    assert load_config(None, ["train.epochs=3.0", "train.seed=4294967296"]).train.seed == 2**32


def test_nullable_vector_and_exclusive_bounds():
    f = Field(type="float", default=0.5, minimum=0.0, maximum=1.0, exclusive_max=True, none=True)
    assert check_field("x", f, None) is None and check_field("x", f, 0) == 0.0
    with pytest.raises(SpecError, match="x must be < 1"):
        check_field("x", f, 1.0)
    v = Field(type="list[int]", default=None, minimum=1)
    assert check_field("h", v, [3, 4.0]) == [3, 4]
    with pytest.raises(SpecError, match=r"h\[1\] must be ≥ 1"):
        check_field("h", v, [3, 0])
    sec = Section("s", {"a": Field(type="int", default=1)})
    with pytest.raises(SpecError, match=r"s\.b is not a field of \[s\]; did you mean 'a'\?|expected one of a"):
        sec({"b": 2})


def test_one_description_of_the_array(monkeypatch):
    tile = fields_of(ArraySpec)
    for name in TILE_FIELDS:
        assert tile[name] is ARRAY_FIELDS[name]  # the very same declaration, not a copy
        assert fields_of(ArrayConfig)[name] is ARRAY_FIELDS[name]
        assert fields_of(CrossbarSpec).get(name, ARRAY_FIELDS[name]) is ARRAY_FIELDS[name]
    study = IR_SECTIONS["array"].fields
    for name in ("drive", "sense", "cell", "r_driver", "r_sense", "r_access"):
        assert study[name] is ARRAY_FIELDS[name]
    parser = argparse.ArgumentParser()
    add_array_options(parser, random=True)
    add_solver_options(parser)
    actions = {a.dest: a for a in parser._actions}
    for name in ("drive", "sense", "cell", "unselected"):
        assert tuple(actions[name].choices) == ARRAY_FIELDS[name].choices
        assert actions[name].default == ARRAY_FIELDS[name].default
    assert tuple(actions["engine"].choices) == tuple(ENGINES)
    # a registered engine is offered and accepted everywhere, from its one registry line
    monkeypatch.setitem(ENGINES, "toy", "tests.toy_engine:ENGINE")
    assert SolverOptions(engine="toy").engine == "toy"
    parser = argparse.ArgumentParser()
    add_solver_options(parser)
    assert "toy" in parser.parse_args(["--engine", "toy"]).engine


def test_converters_and_weight_map_declared_once():
    from cosim.array.mapping import Converters, WeightMap
    from cosim.train.config import ConvertersConfig

    conv, cfg = fields_of(Converters), fields_of(ConvertersConfig)
    for name in ("dac_bits", "adc_bits", "adc_headroom", "adc_range"):
        assert cfg[name] is conv[name]
    assert cfg["v_read"].default is None and conv["v_read"].default == 0.2  # the config's None = the card's
    assert fields_of(ArrayConfig)["mapping"] is fields_of(WeightMap)["mapping"]
    with pytest.raises(SpecError, match=r"^converters\.adc_bits must be ≤ 24, got 40$"):
        Converters(adc_bits=40)
    with pytest.raises(SpecError, match=r"^array\.mapping must be one of differential, reference"):
        WeightMap(g_min=1e-6, g_max=1e-5, w_max=1.0, mapping="single")


def test_interval_wording_and_named_unknown_keys():
    """The device cards' wording: a two-sided range as an interval, choices as 'a' or 'b'."""
    f = Field(type="float", default=0.0, minimum=0.0, maximum=1.0, exclusive_max=True, unit="s", interval=True)
    assert check_field("x", f, 0.5) == 0.5
    for bad in (1.0, -0.1):
        with pytest.raises(SpecError) as info:
            check_field("x", f, bad)
        assert str(info.value) == f"x must be in [0, 1) s, got {bad!r}" and info.value.path == "x"
    c = Field(type="str", default="a", choices=("a", "b", "c"), interval=True)
    with pytest.raises(SpecError, match=r"^m must be 'a', 'b' or 'c', got 'd'$"):
        check_field("m", c, "d")
    with pytest.raises(SpecError, match=r"^s\.x is not a thing field; (did you mean 'y'\?|expected one of y)"):
        check_keys("s", {"x": 1}, ["y"], what="thing field")


def test_device_card_sections_use_the_toolkit():
    from cosim.devices.cards import DriftSpec, ProgrammingSpec, VariationSpec, card_from_dict
    assert {"c2c", "d2d", "stuck_on"} <= set(fields_of(VariationSpec))
    assert fields_of(DriftSpec)["nu"].required and fields_of(ProgrammingSpec)["width"].unit == "s"
    with pytest.raises(SpecError) as info:
        card_from_dict({"model": "vteam", "params": {}, "programming": {"amplitude_set": -1, "amplitude_reset": 1,
                        "width": 1e-9, "v_read": 0.1}, "drift": {"nu": 2.0}}, "c.toml")
    assert str(info.value) == "c.toml: drift.nu must be in [0, 1), got 2.0" and info.value.path == "drift.nu"
