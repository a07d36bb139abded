"""The ``train`` study task: metrics of one point against an independent recomputation, and a
tiny training study run in-process, end to end, into a report with the training figures."""

from __future__ import annotations

import numpy as np
import pytest

from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.report import write_report
from cosim.study.runner import run_study
from cosim.study.store import Store
from cosim.study.training import METRICS, point_config, run_training_point
from cosim.train import accuracy, load_data, run_training
from cosim.train.networks import float_layers, make_network

TINY = {"data": {"subset": 48, "test_subset": 30}, "network": {"hidden": [4]},
        "array": {"rows": 16, "cols": 16, "r_row": 1.0, "r_col": 1.0}, "solver": {"engine": "nodal"},
        "train": {"epochs": 2}, "output": {"figures": False, "pulse_log": "none"}}


def _point(seed: int, **over) -> dict:
    p = plan(parse_study({"task": {"kind": "train"}, "study": {"seeds": [seed]}, **TINY, **over}))
    assert len(p.points) == 1
    return p.points[0].config


def test_point_metrics_match_a_direct_run():
    """The study seed becomes train.seed; accuracy_ideal is the final true weights' software
    accuracy and accuracy_parasitic the hardware one, recomputed here from a direct run of the
    same config (training is deterministic given the seed, so they agree exactly)."""
    point = _point(7)
    m = run_training_point(point)
    assert set(m) == set(METRICS)  # the names study.metrics may keep are exactly those returned
    cfg = point_config(point)
    assert cfg.train.seed == 7
    direct = run_training(cfg, progress=False)
    data = load_data(cfg)
    net = make_network(cfg.network.kind, data.image_shape, data.n_classes, hidden=cfg.network.hidden)
    assert m["accuracy_ideal"] == accuracy(net, float_layers(direct.weights), data.x_test, data.y_test)
    assert m["accuracy_parasitic"] == direct.metrics["final_test_acc"]
    assert m["pulses"] == direct.metrics["pulses_total"] > 0
    assert m["convergence"] == [r["test_acc"] for r in direct.epochs] and len(m["convergence"]) == 2
    # 16×16 tiles with 1 Ω wires: a small but real IR drop, cells lose a little of v_read.
    assert 0 < m["ir_err_mean"] <= m["ir_err_max"] < 0.5
    assert 0.5 < m["v_cell_min"] < 1.0 and m["loss_map"].shape == (16, 16)
    assert np.isnan(m["convergence_epoch"]) or m["convergence_epoch"] >= 1


def test_zero_wire_point_has_no_ir_drop_and_equal_accuracies():
    """With zero wire, driver and sense resistance the parasitic read is V·G up to the
    converters' 8-bit quantisation, so the IR-drop error vanishes (round-off only)."""
    point = _point(0, array={"rows": 16, "cols": 16, "r_driver": 0.0, "r_sense": 0.0}, solver={"engine": "ideal"})
    m = run_training_point(point)
    assert m["ir_err_max"] < 1e-9 and abs(m["v_cell_min"] - 1.0) < 1e-9
    assert abs(m["accuracy_ideal"] - m["accuracy_parasitic"]) <= 0.1


@pytest.mark.slow
def test_training_study_runs_into_a_report(tmp_path):
    study = {"task": {"kind": "train"}, "study": {"seeds": 1, "zip": [["array.rows", "array.cols"]]}, **TINY,
             "array": {"rows": [8, 16], "cols": [8, 16], "r_row": 1.0, "r_col": 1.0},
             "optimizer": {"name": ["ssm", "sgd-pulse"]}, "train": {"epochs": 2}}
    p = plan(parse_study(study))
    assert len(p.points) == 4
    with Store(tmp_path / "t.sqlite") as st:
        s = run_study(p, st, workers=0, progress=False)
        assert (s.done, s.failed) == (4, 0)
    files = write_report(tmp_path / "t.sqlite", tmp_path / "report")
    html = files.html.read_text()
    for name in ("accuracy", "pulses_convergence"):
        assert any(name in k for k in files.figures), files.figures
    for paths in files.figures.values():
        assert all(f.stat().st_size > 1000 for f in paths)
    assert "ssm" in html and "sgd-pulse" in html


def test_array_of_tables_is_one_axis_of_whole_sections():
    """[[optimizer]] twice gives two whole optimizer setups (each with options the other would
    refuse), zipped here with train.lr; a bad option in one table is still caught up front."""
    from cosim.errors import SpecError

    base = {"task": {"kind": "train"}, "study": {"zip": [["optimizer", "train.lr"]]}, **TINY,
            "optimizer": [{"name": "ssm", "normalize": True, "beta": 0.95}, {"name": "sgd-pulse"}],
            "train": {"epochs": 1, "lr": [0.003, 0.1]}}
    pts = plan(parse_study(base)).points
    got = sorted((p.config["optimizer"]["name"], p.config["train"]["lr"]) for p in pts)
    assert got == [("sgd-pulse", 0.1), ("ssm", 0.003)]
    ssm = next(p for p in pts if p.config["optimizer"]["name"] == "ssm")
    assert ssm.config["optimizer"]["beta"] == 0.95 and ssm.config["optimizer"]["normalize"] is True
    bad = {**base, "optimizer": [{"name": "ssm"}, {"name": "sgd-pulse", "normalize": False}]}
    with pytest.raises(SpecError, match="has no option 'normalize'"):
        plan(parse_study(bad))
    with pytest.raises(SpecError, match=r"array of tables"):
        parse_study({**base, "optimizer": [1, 2]})
