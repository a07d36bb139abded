"""The ``inference`` study task: one grid point = one seeded ex-situ deployment and test.

A study file names the network in ``[model]`` (``path``: an ONNX file, relative to the study
file) and sweeps any field of ``[data] [array] [device] [converters] [solver] [deploy]`` (the
sections of :mod:`cosim.train.infer_config`); a study's seeds become ``deploy.seed`` (device
draws, programming noise, read noise), so three seeds deploy the network onto three device
draws. Example::

    [task]
    kind = "inference"
    [model]
    path = "mlp.onnx"
    [array]
    rows = [32, 64, 128]
    cols = [32, 64, 128]       # zipped with rows by the grid's rules, or one list of sizes
    r_row = [0.0, 1.0]
    [converters]
    adc_bits = [4, 6, 8]
    [deploy]
    method = ["open-loop", "write-verify"]

Metrics: ``accuracy`` (through the configured engine and converters), ``accuracy_ideal_reads``
(same devices, ideal reads; = accuracy without wires), ``float_accuracy``,
``agreement_with_float`` (fractions 0–1), the programming summary (``prog_error_rms`` of the
window, pulses, ``prog_time_s``, ``prog_energy_J``, ``prog_unmet``), ``irdrop_max`` and
``tile_irdrop`` (per tile: [layer, row block, column block, IR-drop error]).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cosim.schema import Field, Section
from cosim.train.config import STUDY_SECTIONS
from cosim.train.infer_config import PHYSICAL, DeploySection

METRICS = ("accuracy", "accuracy_ideal_reads", "float_accuracy", "agreement_with_float", "prog_error_rms",
           "prog_error_max", "prog_within_tolerance", "prog_set_pulses", "prog_reset_pulses", "prog_verify_reads",
           "prog_time_s", "prog_energy_J", "prog_unmet", "prog_faulty", "irdrop_max", "tile_irdrop", "tiles",
           "read_time_s", "time_s")


def _deploy(values, ctx=None) -> dict[str, Any]:
    """Check a [deploy] table; returns it normalised (defaults filled in)."""
    from cosim.schema import check_keys, fields_of

    values = {k: None if isinstance(v, str) and v.lower() == "none" else v for k, v in dict(values).items()}
    check_keys("deploy", values, fields_of(DeploySection))
    return dataclasses.asdict(DeploySection(**values))


_deploy.vector_fields = frozenset()  # type: ignore[attr-defined]

SECTIONS = {
    **{k: STUDY_SECTIONS[k] for k in PHYSICAL},
    "deploy": _deploy,
    "model": Section("model", {"path": Field(type="path", doc="the network as an ONNX file")}),
}


def point_config(point: dict[str, Any]):
    """The :class:`~cosim.train.infer_config.InferenceConfig` of a study point (seed → deploy.seed)."""
    from cosim.train.infer_config import validate_inference_config

    data = {k: point[k] for k in (*PHYSICAL, "deploy") if k in point}
    deploy = dict(data.get("deploy", {}))
    if "seed" in point:
        deploy["seed"] = int(point["seed"])
    data["deploy"] = deploy
    return validate_inference_config(data)


def run_inference_point(point: dict[str, Any]) -> dict[str, Any]:
    """Metrics of one study point (module docstring); nothing is written."""
    from cosim.train.infer import run_inference
    from cosim.train.onnx_model import load_onnx

    cfg = point_config(point)
    model = load_onnx(point["model"]["path"])
    res = run_inference(model.network, model.weights, cfg, model=model.source)
    m = res.metrics
    p = m["programming"]
    out = {k: m[k] for k in ("accuracy", "float_accuracy", "agreement_with_float", "irdrop_max", "tiles",
                             "read_time_s", "time_s")}
    out["accuracy_ideal_reads"] = m.get("accuracy_ideal_reads", m["accuracy"])
    for k in ("error_rms", "error_max", "within_tolerance", "set_pulses", "reset_pulses", "verify_reads",
              "unmet", "faulty"):
        out[f"prog_{k}"] = p[k]
    out["prog_time_s"], out["prog_energy_J"] = p["time_s"], p["energy_J"]
    out["tile_irdrop"] = [[t["layer"], t["bi"], t["bj"], t["irdrop"]] for t in res.tiles]
    return out


def deployed_tiles(result, weights) -> list:
    """Every tile of a deployed network (:class:`~cosim.train.infer.InferenceResult`), each bench
    driven by what the first test sample puts on its rows."""
    from cosim.study.export import layer_tiles
    from cosim.train.networks.base import FloatLayerWeights, RecordingMatVec

    rec = [RecordingMatVec(FloatLayerWeights(w)) for w in weights]
    result.network.predict(rec, result.data.x_test[:1])
    tiles = []
    for li, (layer, r) in enumerate(zip(result.layers, rec)):
        tiles += layer_tiles(layer, li, r.x[0])
    return tiles


def export_inference(row, output, *, force: bool, info: dict):
    """The task's export hook: the point deployed again from its seed (same devices, same
    programming noise), every tile of the network; a note when the re-run's accuracy differs."""
    from cosim.array.tapeout import write_tapeout
    from cosim.study.export import array_line
    from cosim.train.infer import run_inference
    from cosim.train.onnx_model import load_onnx

    cfg = point_config(row.config)
    model = load_onnx(row.config["model"]["path"])
    res = run_inference(model.network, model.weights, cfg, model=model.source)
    stored = (row.metrics or {}).get("accuracy")
    notes = [] if stored is None or stored == res.metrics["accuracy"] else [
        f"re-run differs from the stored point: accuracy {stored!r} stored, {res.metrics['accuracy']!r} now"]
    info = {**info, "model": model.source, "array": array_line(row.config["array"]),
            "deploy": f"{cfg.deploy.method} ({cfg.deploy.scheme})", "test accuracy": res.metrics["accuracy"],
            "re-run reproduced the stored accuracy": "no" if notes else "yes"}
    title = f"cosim tape-out: deployed {res.metrics['network']} on {cfg.array.rows}x{cfg.array.cols} tiles"
    return write_tapeout(deployed_tiles(res, model.weights), output, force=force, title=title, info=info), notes


def estimate_seconds(point: dict[str, Any]) -> float:
    """Rough single-core seconds: programming plus test reads; calibrated loosely on the digits
    MLP (ideal programming and reads under a second; write-verify a few seconds per 10^4
    devices; nodal test reads of 450 images a few seconds on 64×64 tiles)."""
    a, dep = point["array"], point.get("deploy", {})
    nodal = point["solver"]["engine"] != "ideal"
    scheme = dep.get("scheme", "direct")
    t = 2.0 + (5.0 if dep.get("method") == "write-verify" else 1.0)
    if scheme != "direct":
        t += 2e-3 * a["rows"] * a["cols"] * (30 if dep.get("method") == "write-verify" else 3)
    if nodal:
        t += 4.0 * (a["rows"] * a["cols"] / 4096)
    return t
