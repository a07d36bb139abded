"""SPICE numbers: suffix parsing (as ngspice-39 reads them), round-trip text, expressions.

The suffix cases marked "ngspice" were checked by running ngspice-39 on resistors with these
values and reading back ``show r : resistance`` (1.5Mohm is 1.5 mΩ, 1F is 1 fΩ, 1a and 1x are 1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cosim.circuit.units import eval_expression, format_resistance, format_value, parse_value
from cosim.errors import NetlistError


@pytest.mark.parametrize("text, value", [
    ("1", 1.0), ("-2.5", -2.5), ("+3", 3.0), (".5", 0.5), ("5.", 5.0), ("1e3", 1e3), ("1E-3", 1e-3),
    ("2.5e+2", 250.0), ("10k", 1e4), ("10K", 1e4), ("10kohm", 1e4), ("1.5V", 1.5), ("3ohm", 3.0),
    ("1meg", 1e6), ("1MEG", 1e6), ("2megohm", 2e6), ("1.5Mohm", 1.5e-3), ("1m", 1e-3),
    ("4u", 4e-6), ("4uA", 4e-6), ("7n", 7e-9), ("7p", 7e-12), ("1F", 1e-15), ("1f", 1e-15),
    ("2g", 2e9), ("3t", 3e12), ("1mil", 25.4e-6), ("1a", 1.0), ("1x", 1.0), ("1e", 1.0),
    ("1e3k", 1e6), (" 42 ", 42.0),
])
def test_parse_value(text, value):
    assert parse_value(text) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("text", ["", "k", "abc", "1.2.3", "--1", "1 k", "e3", "{x}"])
def test_parse_value_rejects_non_numbers_naming_where(text):
    with pytest.raises(NetlistError, match=r"^deck\.cir:7: expected a number"):
        parse_value(text, where="deck.cir:7")


@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=300, deadline=None)
def test_format_value_round_trips_exactly(x):
    text = format_value(x)
    assert parse_value(text) == x
    assert len(text) <= len(repr(x))


def test_format_value_is_short_and_refuses_non_finite():
    assert [format_value(v) for v in (3.0, 0.1, 1e-05, 2.5e20, -0.0)] == ["3", "0.1", "1e-05", "2.5e+20", "-0"]
    for bad in (math.inf, -math.inf, math.nan):
        with pytest.raises(NetlistError, match="non-finite"):
            format_value(bad)


@given(st.floats(min_value=1e-12, max_value=1e6))
@settings(max_examples=300, deadline=None)
def test_format_resistance_inverts_to_the_conductance(g):
    # Exact whenever a decimal exists whose inverse is g; never more than 1 ulp off otherwise.
    back = 1.0 / parse_value(format_resistance(g))
    assert abs(back - g) <= np.spacing(g)


def test_format_resistance_prefers_the_short_exact_text():
    assert [format_resistance(g) for g in (1e-5, 0.4, 1 / 3, 2e-6, 1 / 7)] == ["100000", "2.5", "3", "500000", "7"]


@pytest.mark.parametrize("expr, value", [
    ("1+2*3", 7.0), ("(1+2)*3", 9.0), ("2**3", 8.0), ("2^3", 8.0), ("2**3**2", 64.0), ("(-2)**3", 8.0), ("-7 % 3", -1.0),
    ("-2**2", -4.0), ("10k/4", 2500.0), ("1meg*2u", 2.0), ("a*2+b", 2 * 1.5 + 1e3),
    ("sqrt(16)+max(1, 3)", 7.0), ("-(a)", -1.5), ("1e-3*2", 2e-3), ("8/2/2", 2.0), ("+a", 1.5),
])
def test_eval_expression(expr, value):
    names = {"a": 1.5, "b": 1e3}
    assert eval_expression(expr, names.__getitem__) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize("expr, message", [
    ("1+", "unexpected"), ("(1+2", "expected '\\)'"), ("1/0", "division by zero"), ("2 3", "unexpected"),
    ("1 # 2", "cannot read"), ("sqrt(-1)", "sqrt"),
])
def test_eval_expression_errors_name_where(expr, message):
    with pytest.raises(NetlistError, match=rf"^f\.cir:3: .*{message}"):
        eval_expression(expr, lambda n: 1.0, where="f.cir:3")


def test_an_e_without_digits_is_an_empty_exponent_as_in_ngspice():
    # ngspice-39 reads 10eu as 10u and 1emeg as 1meg (found by the netlist fuzzer, checked)
    assert parse_value("10eu") == pytest.approx(1e-5, rel=1e-15)
    assert parse_value("1emeg") == 1e6 and parse_value("10e") == 10.0 and parse_value("3elephant") == 3.0
