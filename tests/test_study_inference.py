"""The ``inference`` study task: a point deploys an ONNX network and returns the report's metrics;
the report draws the accuracy panels and the per-tile IR-drop map from them.

A point's metrics must equal a direct run_inference with the same config and seed (the task
adds nothing of its own), and the report section must appear exactly when inference points do.
"""

from __future__ import annotations

import numpy as np

from cosim.study.inference import point_config, run_inference_point
from cosim.study.inference_report import accuracy_panels, irdrop_map, section
from cosim.study.tasks import get_task
from cosim.train.infer import run_inference
from cosim.train.networks import MLP
from cosim.train.onnx_model import load_onnx, save_onnx


def _point(path, **over):
    task = get_task("inference")
    v = task.validators()
    point = {"task": {"kind": "inference"}, "seed": 1, "model": v["model"]({"path": str(path)}),
             "array": v["array"]({"rows": 32, "cols": 32, "r_row": 1.0, "r_col": 1.0}),
             "solver": v["solver"]({"engine": "nodal"}), "deploy": v["deploy"]({"method": "ideal"}),
             "data": v["data"]({"test_subset": 100}), "device": v["device"]({}), "converters": v["converters"]({})}
    point.update(over)
    return point


def test_point_metrics_and_report(tmp_path):
    net = MLP([64, 12, 10])
    path = save_onnx(tmp_path / "m.onnx", net, net.init_weights(np.random.default_rng(0)))
    point = _point(path)
    m = run_inference_point(point)
    assert point_config(point).deploy.seed == 1
    model = load_onnx(path)
    direct = run_inference(model.network, model.weights, point_config(point)).metrics
    assert m["accuracy"] == direct["accuracy"] and m["prog_error_rms"] == direct["programming"]["error_rms"]
    assert m["irdrop_max"] > 0 and len(m["tile_irdrop"]) == direct["tiles"]
    recs = [{"key": f"k{i}{r}", "status": "done", "seed": i, "array.rows": 32, "array.r_row": r,
             "deploy.method": "ideal", **m} for i in (0, 1) for r in (0.0, 1.0)]
    assert accuracy_panels(recs) is not None and irdrop_map(recs[0]) is not None
    shown = []
    parts = section(recs, lambda fig, name, alt: shown.append(name) or name)
    assert shown == ["inference_accuracy", "inference_irdrop_map"] and parts[0].startswith("<h2>")
    assert section([{"key": "x", "accuracy": 0.5}], lambda *a: "") == []


def test_export_of_an_inference_point(tmp_path):
    from types import SimpleNamespace

    from cosim.study.inference import export_inference

    net = MLP([64, 12, 10])
    path = save_onnx(tmp_path / "m.onnx", net, net.init_weights(np.random.default_rng(0)))
    point = _point(path)
    m = run_inference_point(point)
    row = SimpleNamespace(config=point, metrics=m, key="k" * 12)
    files, notes = export_inference(row, tmp_path / "tape", force=False, info={})
    assert notes == [] and len(files.tiles) == m["tiles"] and files.top.is_file()
