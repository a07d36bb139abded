"""Every CrossbarSpec and SolverOptions validation raises SpecError naming the field at fault."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from cosim.circuit import CrossbarSpec, SolverOptions
from cosim.errors import CosimError, SpecError

G = np.full((3, 4), 1e-5)  # N = 3 rows, M = 4 columns


def g_with(i: int, j: int, value: float) -> np.ndarray:
    g = G.copy()
    g[i, j] = value
    return g


def spec(**kw) -> CrossbarSpec:
    return CrossbarSpec(conductances=kw.pop("conductances", G), **kw)


BAD_SPECS = [
    # (field named in the message, keyword arguments)
    ("spec.conductances", {"conductances": np.ones(4)}),
    ("spec.conductances", {"conductances": np.ones((2, 2, 2))}),
    ("spec.conductances", {"conductances": np.ones((0, 3))}),
    ("spec.conductances[1,2] is NaN", {"conductances": g_with(1, 2, math.nan)}),
    ("spec.conductances[0,0] is infinite", {"conductances": g_with(0, 0, math.inf)}),
    ("spec.conductances[2,3] must be ≥ 0", {"conductances": g_with(2, 3, -1e-6)}),
    ("spec.r_row", {"r_row": -1.0}),
    ("spec.r_row", {"r_row": math.nan}),
    ("spec.r_row", {"r_row": math.inf}),
    ("spec.r_row", {"r_row": np.ones(4)}),  # needs M-1 = 3 segments
    ("spec.r_row", {"r_row": np.ones((3, 4))}),  # needs (3, 3)
    ("spec.r_row", {"r_row": np.ones((2, 3))}),
    ("spec.r_row", {"r_row": np.array([1.0, -0.5, 1.0])}),
    ("spec.r_col", {"r_col": -2.0}),
    ("spec.r_col", {"r_col": math.nan}),
    ("spec.r_col", {"r_col": np.ones(3)}),  # needs N-1 = 2 segments
    ("spec.r_col", {"r_col": np.ones((3, 4))}),  # needs (2, 4)
    ("spec.r_col", {"r_col": np.full((2, 4), math.inf)}),
    ("spec.r_driver", {"r_driver": -1.0}),
    ("spec.r_driver", {"r_driver": np.ones(4)}),  # one per row: 3
    ("spec.r_driver", {"r_driver": np.array([1.0, math.nan, 1.0])}),
    ("spec.r_sense", {"r_sense": -1e-3}),
    ("spec.r_sense", {"r_sense": np.ones(3)}),  # one per column: 4
    ("spec.r_sense", {"r_sense": np.ones((4, 1))}),
    ("spec.v_sense", {"v_sense": math.nan}),
    ("spec.v_sense", {"v_sense": math.inf}),
    ("spec.drive", {"drive": "top"}),
    ("spec.sense", {"sense": "left"}),
    ("spec.cell", {"cell": "2T2R"}),
    ("spec.unselected", {"unselected": "open"}),
    ("spec.r_access", {"r_access": -5.0}),
    ("spec.r_access", {"r_access": math.nan}),
    ("spec.r_access", {"r_access": math.inf}),
    ("spec.selected_rows", {"selected_rows": [0, 3]}),  # rows are 0..2
    ("spec.selected_rows", {"selected_rows": [-1]}),
    ("spec.selected_rows", {"selected_rows": np.array([True, False])}),
    ("spec.selected_cols", {"selected_cols": [4]}),
    ("spec.selected_cols", {"selected_cols": np.ones(3, dtype=bool)}),
    ("spec.v_select", {"unselected": "v/2", "selected_rows": [0]}),
    ("spec.v_select", {"unselected": "v/3", "selected_cols": [1, 2]}),
    ("spec.v_select", {"unselected": "v/2", "selected_rows": [0], "v_select": math.inf}),
    ("spec.v_select", {"v_select": math.nan}),
]


@pytest.mark.parametrize("field,kwargs", BAD_SPECS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_SPECS)])
def test_bad_spec_names_field(field, kwargs):
    with pytest.raises(SpecError) as info:
        spec(**kwargs)
    msg = str(info.value)
    assert field in msg
    assert "\n" not in msg
    assert isinstance(info.value, CosimError) and isinstance(info.value, ValueError)


def test_messages_show_plain_numbers():
    for kwargs, plain in (({"r_row": -1.0}, "got -1.0"), ({"conductances": g_with(2, 3, -1e-6)}, "got -1e-06")):
        with pytest.raises(SpecError) as info:
            spec(**kwargs)
        assert plain in str(info.value), str(info.value)


def test_valid_forms_broadcast():
    s = spec(r_row=np.array([1.0, 2.0, 3.0]), r_col=np.array([4.0, 5.0]), r_driver=[1.0, 2.0, 3.0],
             r_sense=7.0, selected_rows=[0, 2])
    np.testing.assert_array_equal(s.r_row, np.tile([1.0, 2.0, 3.0], (3, 1)))
    np.testing.assert_array_equal(s.r_col, np.tile([[4.0], [5.0]], (1, 4)))
    np.testing.assert_array_equal(s.r_driver, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(s.r_sense, np.full(4, 7.0))
    np.testing.assert_array_equal(s.selected_rows, [True, False, True])
    np.testing.assert_array_equal(s.selected_cols, np.ones(4, dtype=bool))
    full = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(spec(r_row=full).r_row, full)


def test_v_select_not_needed_when_everything_is_selected():
    assert spec(unselected="v/2").v_select is None


def test_single_row_and_column_arrays():
    s = CrossbarSpec(conductances=[[1e-5]], r_row=1.0, r_col=1.0)
    assert s.r_row.shape == (1, 0) and s.r_col.shape == (0, 1)


def test_spec_is_frozen_and_arrays_read_only():
    s = spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.r_row = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        s.conductances[0, 0] = 1.0
    src = G.copy()
    s2 = spec(conductances=src)
    src[0, 0] = 1.0  # the spec keeps its own copy
    assert s2.conductances[0, 0] == 1e-5


def test_replace_validates_and_rekeys():
    s = spec(r_row=1.0)
    k = s.key()
    assert spec(r_row=1.0).key() == k
    s2 = s.replace(r_row=2.0)
    assert s2.key() != k and s.key() == k
    with pytest.raises(SpecError, match="spec.r_col"):
        s.replace(r_col=-1.0)


BAD_OPTIONS = [
    ("solver.engine", {"engine": "hspice"}),
    ("solver.method", {"method": "gmres"}),
    ("solver.rtol", {"rtol": 0.0}),
    ("solver.rtol", {"rtol": -1e-9}),
    ("solver.rtol", {"rtol": math.nan}),
    ("solver.rtol", {"rtol": math.inf}),
    ("solver.maxiter", {"maxiter": 0}),
    ("solver.ordering", {"ordering": "METIS"}),
    ("solver.ngspice", {"ngspice": "remote"}),
]


@pytest.mark.parametrize("field,kwargs", BAD_OPTIONS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(BAD_OPTIONS)])
def test_bad_solver_options_name_field(field, kwargs):
    with pytest.raises(SpecError) as info:
        SolverOptions(**kwargs)
    assert field in str(info.value) and "\n" not in str(info.value)


def test_good_solver_options():
    for engine in ("ideal", "nodal", "spice"):
        assert SolverOptions(engine=engine).engine == engine
    o = SolverOptions(method="direct", ordering="COLAMD", rtol=1e-6, maxiter=1, ngspice="subprocess")
    assert dataclasses.replace(o, rtol=1e-8).rtol == 1e-8
