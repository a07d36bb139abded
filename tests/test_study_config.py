"""Study configs: grid expansion, point keys, and every bad input caught before any work starts.

Budget: < 3 s (no cluster, no solves).
"""

from __future__ import annotations

import pytest

from cosim.cli import main
from cosim.errors import SpecError
from cosim.schema import Field, Section
from cosim.study import irdrop
from cosim.study.config import load_study, parse_study
from cosim.study.grid import plan, point_key
from cosim.study.tasks import TASKS, get_task, register_task

BASE = {"task": {"kind": "ir_drop"}, "array": {"size": 8}}


def doc(**sections):
    out = {"task": {"kind": "ir_drop"}, "array": {"size": 8}}
    out.update(sections)
    return out


def _vec_run(point):  # a module-level task function (workers import it by name)
    return {"n": float(len(point["net"]["layers"]))}


@pytest.fixture
def vec_task():
    register_task("vec_test", run=_vec_run, sections={"net": Section("net", {
        "layers": Field(type="list[int]", default=[4], minimum=1),
        "lr": Field(type="float", default=0.1, minimum=0.0),
    })}, metrics=["n"])
    yield "vec_test"
    TASKS.pop("vec_test")


def test_cartesian_product_times_seeds():
    p = plan(parse_study(doc(study={"seeds": 3}, array={"size": [8, 16, 32], "r_wire": [0, 1.5]})))
    assert len(p.points) == 3 * 2 * 3
    assert p.grid_size == 6
    combos = {(q.config["array"]["rows"], q.config["array"]["r_row"], q.config["seed"]) for q in p.points}
    assert len(combos) == 18
    # shorthands resolve: size → rows = cols, r_wire → r_row = r_col
    assert all(q.config["array"]["rows"] == q.config["array"]["cols"] for q in p.points)
    assert all(q.config["array"]["r_row"] == q.config["array"]["r_col"] for q in p.points)
    assert "size" not in p.points[0].config["array"] and "r_wire" not in p.points[0].config["array"]
    # seeds vary fastest, so one grid point's seeds sit together
    assert [q.config["seed"] for q in p.points[:3]] == [0, 1, 2]


def test_zip_group_varies_together():
    d = {"task": {"kind": "ir_drop"}, "study": {"zip": [["array.rows", "array.cols"]], "seeds": [7]},
         "array": {"rows": [4, 8, 16], "cols": [2, 4, 8], "r_row": [0.0, 1.0]}}
    p = plan(parse_study(d))
    shapes = sorted({(q.config["array"]["rows"], q.config["array"]["cols"]) for q in p.points})
    assert shapes == [(4, 2), (8, 4), (16, 8)]
    assert len(p.points) == 6 and {q.config["seed"] for q in p.points} == {7}


def test_vector_fields_flat_list_is_one_value(vec_task):
    one = plan(parse_study({"task": {"kind": vec_task}, "net": {"layers": [784, 128, 10]}}))
    assert len(one.points) == 1 and one.points[0].config["net"]["layers"] == [784, 128, 10]
    axis = plan(parse_study({"task": {"kind": vec_task}, "net": {"layers": [[4], [8, 4]], "lr": [0.1, 0.2]}}))
    assert len(axis.points) == 4
    assert {tuple(q.config["net"]["layers"]) for q in axis.points} == {(4,), (8, 4)}


def test_point_key_is_stable_and_canonical():
    a = plan(parse_study(doc(array={"size": 8, "r_wire": 1})))
    b = plan(parse_study(doc(array={"r_wire": 1.0, "rows": 8, "cols": 8}, device={"g_min": 1e-6})))
    assert a.points[0].key == b.points[0].key  # same resolved config, however it was written
    assert len(a.points[0].key) == 64
    c = plan(parse_study(doc(study={"seeds": [1]}, array={"size": 8, "r_wire": 1})))
    assert c.points[0].key != a.points[0].key
    assert point_key(a.points[0].config) == a.points[0].key


def test_task_version_salts_the_key():
    k1 = plan(parse_study(doc())).points[0].key
    task = get_task("ir_drop")
    try:
        register_task("ir_drop", run=task.run, sections=task.sections, cost=task.cost,
                      metrics=task.metrics, version="2")
        k2 = plan(parse_study(doc())).points[0].key
    finally:
        TASKS["ir_drop"] = task
    assert k1 != k2


def test_cost_estimate_grows_with_size_and_is_summarised():
    p = plan(parse_study(doc(array={"size": [32, 512]})))
    small, big = (q.cost for q in p.points)
    assert big > 100 * small
    text = p.summary(2)
    assert "2 points" in text and "estimated" in text and "on 2 workers" in text


def test_device_card_hook_sets_window(tmp_path, monkeypatch):
    card = tmp_path / "card.toml"
    card.write_text("# a device card\n")
    monkeypatch.setattr(irdrop, "card_window", lambda path: (2e-6, 3e-5))
    p = plan(parse_study(doc(device={"card": "card.toml"}), base_dir=tmp_path))
    dev = p.points[0].config["device"]
    assert (dev["g_min"], dev["g_max"]) == (2e-6, 3e-5)
    assert dev["card"] == str(card.resolve())


@pytest.mark.parametrize("bad, message", [
    ({"task": {"kind": "ir_dorp"}}, "did you mean 'ir_drop'"),
    ({"task": {"kind": "ir_drop", "knd": 1}}, "task.knd is not a field"),
    ({"array": {"size": 8}}, "[task] kind is required"),
    (doc(aray={"size": 4}), "did you mean 'array'"),
    (doc(array={"size": 8, "r_rwo": 1.0}), "array.r_rwo is not a field of [array]; did you mean 'r_row'"),
    (doc(array={"size": "big"}), "array.size must be an integer"),
    (doc(array={"size": 8, "r_wire": -1.0}), "array.r_wire must be ≥ 0 Ω"),
    (doc(array={"size": 8, "rows": 4}), "give either size or rows/cols"),
    (doc(array={"size": []}), "array.size is an empty list"),
    (doc(array={"size": 8, "r_wire": [1.0, "x"]}), "grid point array.r_wire='x'"),
    (doc(device={"g_min": 1e-5, "g_max": 1e-6}), "device.g_max must exceed device.g_min"),
    (doc(device={"card": "no_such_card.toml"}), "device.card: file not found"),
    (doc(read={"inputs": "ramp"}), "read.inputs must be one of uniform, binary, full"),
    (doc(solver={"methd": "pcg"}), "did you mean 'method'"),
    (doc(study={"seeds": 0}), "study.seeds must be ≥ 1"),
    (doc(study={"seed": 3}), "did you mean 'seeds'"),
    (doc(study={"metrics": ["ir_err_mx"]}), "did you mean 'ir_err_max'"),
    (doc(study={"zip": [["array.rows", "array.cols"]]}), "not a list in the config"),
    (doc(study={"zip": [["array.size", "array.r_wire"]]}, array={"size": [4, 8], "r_wire": [0.0]}),
     "needs lists of equal length"),
    (doc(export={"netlist": True}), "did you mean 'netlists'"),
    (doc(export={"where": {"array.rowz": 8}}), "did you mean 'array.rows'"),
    (doc(export={"where": {"array.rows": 9}}), "selects none of the 1 points"),
])
def test_bad_configs_name_the_field(bad, message):
    with pytest.raises(SpecError) as err:
        plan(parse_study(bad))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_export_selection_matches_points():
    p = plan(parse_study(doc(array={"size": [8, 16]}, export={"netlists": True, "where": {"array.rows": [16]}})))
    from cosim.study.grid import flatten

    chosen = [q for q in p.points if p.config.export.matches(flatten(q.config))]
    assert [q.config["array"]["rows"] for q in chosen] == [16]


def test_load_study_errors_name_the_file(tmp_path):
    with pytest.raises(SpecError, match="study config not found"):
        load_study(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[study\n")
    with pytest.raises(SpecError, match=r"bad\.toml: invalid TOML"):
        load_study(bad)
    typo = tmp_path / "typo.toml"
    typo.write_text('[task]\nkind = "ir_drop"\n[array]\nsize = 8\nr_rw = 1.0\n')
    with pytest.raises(SpecError, match=r"typo\.toml: array\.r_rw is not a field"):
        plan(load_study(typo))


def test_cli_bad_config_exits_2_before_any_work(tmp_path, capsys):
    cfg = tmp_path / "study.toml"
    cfg.write_text('[task]\nkind = "ir_drop"\n[array]\nsize = [8, 16]\nr_wire = [0.0, -2.0]\n')
    store = tmp_path / "s.sqlite"
    assert main(["sweep", str(cfg), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cosim: error: ") and "array.r_wire must be ≥ 0 Ω" in err and str(cfg) in err
    assert len(err.splitlines()) == 1
    assert not store.exists()  # no work, no store


def test_cli_dry_run_prints_count_and_estimate(tmp_path, capsys):
    cfg = tmp_path / "study.toml"
    cfg.write_text('[study]\nseeds = 2\n[task]\nkind = "ir_drop"\n[array]\nsize = [8, 16, 32]\n')
    store = tmp_path / "s.sqlite"
    assert main(["sweep", str(cfg), "--store", str(store), "--dry-run", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "6 points = 3 grid points × 2 seeds" in out and "estimated" in out
    assert not store.exists()


def test_shipped_config_is_valid():
    from pathlib import Path

    p = plan(load_study(Path(__file__).parent.parent / "configs" / "study_irdrop.toml"))
    assert len(p.points) == 5 * 4 * 3
    sizes = sorted({q.config["array"]["rows"] for q in p.points})
    wires = sorted({q.config["array"]["r_row"] for q in p.points})
    assert sizes == [32, 64, 128, 256, 512] and wires == [0.0, 1.0, 2.5, 5.0]


def test_real_device_card_window():
    """With the device layer present, a shipped card's window resolves into the points."""
    from pathlib import Path

    card = Path(__file__).parent.parent / "models" / "cards" / "pulse_nl_taox_hfox.toml"
    devices = pytest.importorskip("cosim.devices")
    if not hasattr(devices, "load_card") or not card.exists():
        pytest.skip("the device layer (cosim.devices.load_card, models/cards) is not in this build")
    table = devices.PulseTable.from_card(devices.load_card(card))
    p = plan(parse_study(doc(array={"size": [4, 8]}, device={"card": str(card)})))
    for q in p.points:
        assert (q.config["device"]["g_min"], q.config["device"]["g_max"]) == (table.g_min, table.g_max)


def test_importing_the_study_layer_stays_light():
    """Dask, tqdm and matplotlib load only when a study runs or a report is drawn."""
    import subprocess
    import sys

    code = ("import sys, cosim.study, cosim.cli.sweep, cosim.cli.report, cosim.cli; cosim.cli.build_parser(); "
            "print(sorted(m for m in ('dask', 'distributed', 'matplotlib', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("study", "done", "to_run"), [("lr_digits_mlp", 80, 1), ("lr_digits_cnn", 81, 0)])
def test_shipped_stores_resume_under_todays_fields(tmp_path, capsys, study, done, to_run):
    """A training field added after a shipped study ran (train.calibrate_every, train.refresh_at)
    must not change its points' keys, or resuming the sweep reruns every stored run: a dry run of
    configs/study_<study>.toml against a copy of benchmarks/results/<study>.sqlite counts the
    stored runs as done (the one digits-MLP point left to run was never stored)."""
    import shutil
    from pathlib import Path

    root = Path(__file__).parent.parent
    store = tmp_path / "s.sqlite"
    shutil.copy(root / "benchmarks" / "results" / f"{study}.sqlite", store)
    assert main(["sweep", str(root / "configs" / f"study_{study}.toml"), "--store", str(store), "--dry-run"]) == 0
    assert f"{done} already done, 0 failed, {to_run} to run" in capsys.readouterr().out
