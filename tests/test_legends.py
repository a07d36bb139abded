"""Report legends name only what tells series apart (cosim.study.tables.legend_fields).

A demo-like study: two optimizers with their own settings (which move with the optimizer's
name), the engine tied to the wire resistance (ideal at 0 Ω, nodal at 2.5 Ω), two sizes, two
seeds. The legend of an accuracy-vs-size figure needs r_row and the optimizer's name only;
a setting that varies within one optimizer comes back.
"""

from __future__ import annotations

import itertools

from cosim.study.figures import _series, _variant_fields
from cosim.study.tables import config_fields, legend_fields, varying

OPT = {"ssm": {"optimizer.beta": 0.95, "optimizer.normalize": True, "train.lr": 0.003},
       "sgd-pulse": {"optimizer.beta": None, "optimizer.normalize": None, "train.lr": 0.1}}


def _recs(extra_beta: bool = False):
    out = []
    for rows, (name, opt), (engine, r), seed in itertools.product(
            (16, 32), OPT.items(), (("ideal", 0.0), ("nodal", 2.5)), (0, 1)):
        out.append({"key": f"{rows}{name}{engine}{seed}", "array.rows": rows, "array.cols": rows, "array.r_row": r,
                    "array.r_col": r, "solver.engine": engine, "optimizer.name": name, **opt, "seed": seed})
    if extra_beta:
        out.append({**out[0], "key": "x", "optimizer.beta": 0.5})
    return out


def test_fields_that_move_together_name_a_series_once():
    recs = _recs()
    fields = [f for f in varying(recs, config_fields(recs)) if f not in ("array.rows", "array.cols")]
    assert legend_fields(recs, fields, given=["array.rows"]) == ["array.r_row", "optimizer.name"]
    assert _series(recs, "array.r_row", ()) == ["array.rows", "optimizer.name"]  # engine moves with r_row
    assert _variant_fields(recs) == ["array.r_row"]  # size, device and optimizer have their own labels


def test_a_setting_that_varies_within_an_optimizer_is_named():
    recs = _recs(extra_beta=True)
    assert _variant_fields(recs) == ["array.r_row", "optimizer.beta"]
