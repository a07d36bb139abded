"""The shipped learning-rate sweep and Fashion-MNIST table studies, run from their configs on
tiny data, and the data errors a new user meets first. Budget ≈ 40 s.

Truths used: the configs' own grids (point counts are products of the lists they ship); the
store's resume rule (a second run of the same points runs nothing); one IDX data set written
byte by byte (28×28, gzip), so no test needs the Debian package; the error contract (one line,
status 2, the file or folder named, what to install said).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import struct
import tomllib
from pathlib import Path

import numpy as np
import pytest

from cosim.cli import main as cosim
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.runner import run_study
from cosim.study.store import Store
from cosim.train.config import apply_overrides

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(">u1").tobytes()


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> Path:
    """A tiny Fashion-MNIST look-alike: 28×28 images whose class sets one bright stripe."""
    d = tmp_path_factory.mktemp("fashion")
    rng = np.random.default_rng(0)
    for part, n in (("train", 96), ("t10k", 40)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for k, c in enumerate(y):
            x[k, 2 * c + 4, :] = 250
        for stem, arr in ((f"{part}-images-idx3-ubyte", x), (f"{part}-labels-idx1-ubyte", y)):
            with gzip.open(d / f"{stem}.gz", "wb") as fh:
                fh.write(_idx(arr))
    return d


def _study(name: str, sets: list[str]):
    path = CONFIGS / f"study_{name}.toml"
    doc = apply_overrides(tomllib.loads(path.read_text(encoding="utf-8")), sets)
    return plan(parse_study(doc, source=str(path), base_dir=path.parent))


def test_lr_sweeps_dry_run_from_the_shipped_configs(tmp_path, capsys, fashion_dir):
    assert cosim(["sweep", str(CONFIGS / "study_lr_digits_mlp.toml"), "--store", str(tmp_path / "s.sqlite"),
                  "--dry-run"]) == 0
    assert "81 points = 27 grid points × 3 seeds" in capsys.readouterr().out
    assert not (tmp_path / "s.sqlite").exists()
    assert len(_study("lr_digits_cnn", []).points) == 81  # 27 rates × 3 seeds, like the MLP's
    fashion = _study("lr_fashion_mlp", [f'data.dir="{fashion_dir}"'])
    names = {p.config["optimizer"]["name"] for p in fashion.points}
    assert names == {"sgd-pulse", "manhattan", "mixed-precision", "ssm", "tiki-taka"}
    assert {p.config["array"]["rows"] for p in fashion.points} == {128}
    cnn = _study("lr_fashion_cnn", [f'data.dir="{fashion_dir}"'])
    assert len(cnn.points) == 27 and {p.config["network"]["kind"] for p in cnn.points} == {"cnn"}
    assert {p.config["optimizer"]["name"] for p in cnn.points} == names


def test_lr_sweep_tiny_grid_for_real(tmp_path):
    """The whole digits grid (every method at every rate), shrunk to seconds, then the tuned
    table and the figure from its store."""
    sets = ["data.subset=60", "data.test_subset=40", "network.hidden=[8]", "train.epochs=1", "array.rows=16",
            "array.cols=16", "study.seeds=1"]
    study = _study("lr_digits_mlp", sets)
    store_path = tmp_path / "lr.sqlite"
    with Store(store_path) as store:
        summary = run_study(study, store, workers=0, progress=False)
    assert summary.done == 27 and summary.failed == 0
    with Store(store_path) as store:
        assert run_study(study, store, workers=0, progress=False).skipped_done == 27  # resumes: nothing left
    lr = _script("lr_sweep")
    assert lr.main([str(store_path), "--output", str(tmp_path / "out")]) == 0
    cur = lr.curves(lr.samples(lr.load(str(store_path))))
    assert list(cur) == ["float", "sgd-pulse", "manhattan", "mixed-precision", "ssm", "tiki-taka"]
    assert [r["rate"] for r in cur["manhattan"]] == [0.0, 0.003, 0.01, 0.03, 0.1]
    assert [r["rate"] for r in cur["ssm"]] == [0.0003, 0.001, 0.003, 0.01, 0.03]
    assert all(max(r["pulses"] for r in cur[m]) > 0 for m in cur if m != "float")  # (tiny rates may fire none)
    text = (tmp_path / "out" / "tuned.md").read_text()
    assert "Each method at its tuned rate" in text and "Fewest pulses" in text
    assert (tmp_path / "out" / "lr_sweep.png").stat().st_size > 10_000


def test_lr_sweep_script_without_a_store(tmp_path, capsys):
    assert _script("lr_sweep").main([str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert "none.sqlite: no such store" in err and len(err.splitlines()) == 1


def test_fashion_table_says_what_to_install(tmp_path, capsys):
    assert _script("fashion_table").main(["--data", str(tmp_path / "nowhere"), "--store", str(tmp_path / "f.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt install dataset-fashion-mnist" in err
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    assert _script("fashion_table").main(["--data", str(tmp_path / "half"), "--store", str(tmp_path / "f.sqlite")]) == 2
    assert "lacks train-labels-idx…" in capsys.readouterr().err
    assert not (tmp_path / "f.sqlite").exists()


def test_fashion_table_in_pieces(tmp_path, capsys, fashion_dir):
    ft = _script("fashion_table")
    store = tmp_path / "f.sqlite"
    args = ["--data", str(fashion_dir), "--store", str(store), "--cases", "mlp:none", "--set", "study.seeds=1",
            "--set", "data.subset=none", "--set", "data.test_subset=none", "--set", "train.epochs=1",
            "--set", "array.rows=64", "--set", "array.cols=64"]
    assert ft.main(args) == 0
    text = capsys.readouterr().out
    rows = [line for line in text.splitlines() if line.startswith("| MLP | 0 (ideal) |")]
    assert len(rows) == 1 + len(ft.METHODS) and not any("not run" in r for r in rows)
    assert "every training / every test image(s) of the folder, 1 epoch(s)" in text
    assert ft.main([*args[:4], "--report", "--cases", "mlp:none", "mlp:wires"]) == 0
    text = capsys.readouterr().out
    assert "| MLP | 1 Ω/segment (nodal) | (all) | | not run |" in text
    with Store(store, create=False) as s:
        assert s.counts()["done"] == len(ft.METHODS)


def test_train_with_a_truncated_idx_file_is_one_line(tmp_path, capsys, fashion_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in fashion_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    plain = bad / "t10k-labels-idx1-ubyte"  # plain and gzip may be mixed in one folder
    plain.write_bytes(gzip.decompress((bad / "t10k-labels-idx1-ubyte.gz").read_bytes())[:-5])
    (bad / "t10k-labels-idx1-ubyte.gz").unlink()
    assert cosim(["train", "--config", str(CONFIGS / "mnist_mlp_ssm.toml"), "--data", str(bad), "--set",
                  'data.name="fashion"', "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "t10k-labels-idx1-ubyte: IDX data is 35 bytes" in err


def test_fashion_in_situ_vs_ex_situ_on_tiny_data(tmp_path, capsys, fashion_dir):
    """The Fashion half of the in-situ vs ex-situ table: chosen methods of the table study run
    (``--methods``/``--seeds``), then the SSM point's float reference is retrained from its seed,
    which must reproduce the stored float accuracy exactly, and deployed three ways."""
    ft, ie = _script("fashion_table"), _script("insitu_exsitu")
    store, results = tmp_path / "f.sqlite", tmp_path / "ie.jsonl"
    sets = []
    for s in ("data.subset=none", "data.test_subset=none", "train.epochs=1", "network.hidden=[8]",
              "array.rows=64", "array.cols=64"):
        sets += ["--set", s]
    common = ["--data", str(fashion_dir), *sets]
    assert ft.main([*common, "--store", str(store), "--cases", "mlp:none", "--methods", "ssm", "sgd-pulse",
                    "--seeds", "1"]) == 0
    with Store(store, create=False) as s:
        done = [ft.method_label(r.config["optimizer"]) for r in s.rows("done")]
        assert sorted(done) == ["sgd-pulse", "ssm"] and {r.config["seed"] for r in s.rows()} == {1}
    capsys.readouterr()
    assert ie.main([*common, "--fashion-store", str(store), "--results", str(results),
                    "--cases", "fashion-mlp:none", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out  # the float reference reproduced the stored run's
    rows = ie.load(results)
    assert [r["method"] for r in rows] == ie.EX_SITU and {r["seed"] for r in rows} == {1}
    wv = next(r for r in rows if r["method"] == "write-verify, no faults")
    assert wv["pulses"] > 0 and 0 <= wv["accuracy"] <= 1
    with Store(store, create=False) as s:
        ssm = next(r.metrics for r in s.rows("done") if ft.method_label(r.config["optimizer"]) == "ssm")
    assert rows[0]["float_acc"] == ssm["float_final_test_acc"]
    line = next(x for x in out.splitlines() if x.startswith("| FASHION-MLP | 0 (ideal) |"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[6] == f"{100 * ssm['final_test_acc']:.1f}" and cells[8] == "–"  # ssm stored, manhattan not run
    assert ie.main(["--data", str(tmp_path / "none"), "--cases", "fashion-mlp:none"]) == 2
    assert "apt install dataset-fashion-mnist" in capsys.readouterr().err


def test_fashion_table_keeps_points_stored_before_a_null_field_was_added(tmp_path, capsys, fashion_dir):
    """A field added to the config with a null default: the stored runs (keyed by the earlier
    rule, which hashed null fields) still make the table and are moved to today's key by the
    next run, not rerun; a real change of a value is not taken for the same run."""
    from cosim.study.grid import _hash, point_key
    from cosim.study.tasks import get_task

    ft = _script("fashion_table")
    store = tmp_path / "f.sqlite"
    args = ["--data", str(fashion_dir), "--store", str(store), "--cases", "mlp:none", "--methods", "ssm",
            "--seeds", "0", "--set", "data.subset=none", "--set", "data.test_subset=none", "--set", "train.epochs=1",
            "--set", "network.hidden=[8]", "--set", "array.rows=64", "--set", "array.cols=64"]
    assert ft.main(args) == 0

    def earlier_key(config):  # the rule that hashed null fields too (tests/test_study_store.py spells it out)
        return _hash(config, get_task("train"))

    with Store(store) as s:  # as if it had run before array.v_gate existed, and one older rate's run
        (row,) = list(s.rows("done"))
        old = json.loads(json.dumps(row.config))
        del old["array"]["v_gate"]
        other = json.loads(json.dumps(old))
        other["train"]["lr"] = 0.5
        with s.transaction() as cur:
            cur.execute("UPDATE points SET key = ?, config = ? WHERE key = ?", (earlier_key(old), json.dumps(old), row.key))
            cur.execute("INSERT INTO points (key, config, status, metrics) VALUES (?, ?, 'done', ?)",
                        (earlier_key(other), json.dumps(other), json.dumps(row.metrics)))
    capsys.readouterr()
    assert ft.main([*args, "--report"]) == 0  # read-only: the table finds the stored run
    assert next(x for x in capsys.readouterr().out.splitlines() if "| ssm | " in x).endswith("| 1 |")
    assert ft.main(args) == 0
    out = capsys.readouterr().out
    assert next(x for x in out.splitlines() if "| ssm | " in x).endswith("| 1 |")
    with Store(store, create=False) as s:
        assert {r.key for r in s.rows("done")} == {row.key, point_key(other)}  # both moved, one table point
        assert s.get(row.key[:12]).finished == row.finished  # the stored run, not a rerun


def test_refresh_probe_keeps_weights_and_lowers_the_common_mode(tmp_path, capsys, fashion_dir):
    """benchmarks/probe_refresh.py on tiny data: a refresh re-programs pairs to the same weight
    (write-verify, so the change is a few parts in a thousand of w_max at most: the verify
    tolerance and the window's edge) at a lower common mode, and a missing folder is one line."""
    pr = _script("probe_refresh")
    assert pr.main(["--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt install dataset-fashion-mnist" in err
    assert pr.main(["--data", str(fashion_dir), "--subset", "96", "--test", "40", "--threshold", "0.05",
                    "--set", "optimizer.residual_limit=1"]) == 0
    out = capsys.readouterr().out
    assert out.count("pairs refreshed") == 2 and "before: tiles" in out and "after:  tiles" in out
    assert pr.main(["--data", str(fashion_dir), "--subset", "96", "--test", "40", "--threshold", "0.05",
                    "--keep", "tiles"]) == 0
    out = capsys.readouterr().out
    assert "keeping the tiles' weights" in out and out.count("write-verify writes") == 2
    assert pr.main(["--config", str(CONFIGS / "fashion_cnn_ssm.toml"), "--data", str(fashion_dir), "--subset", "64",
                    "--test", "40", "--threshold", "0.05", "--set", "train.batch=32"]) == 0
    out = capsys.readouterr().out  # the CNN's five weight matrices, read through the config's wires
    assert out.startswith("# fashion_cnn_ssm.toml: fashion CNN, nodal reads, 64 training / 40 test images")
    assert out.count("pairs refreshed") == 5
    assert pr.main(["--data", str(fashion_dir), "--set", "train.seed=3"]) == 2  # the probe's own field
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--set train.seed is the probe's own (--seed)" in err
    from cosim.train import loop
    from cosim.train.config import load_config

    cfg = load_config(CONFIGS / "fashion_mlp_ssm_wires.toml",
                      [f"data.dir={fashion_dir}", "data.subset=96", "data.test_subset=40",
                       "optimizer.refresh_threshold=none", "train.epochs=1", "array.rows=64", "array.cols=64"])
    res = pr.probe(loop._set_up(cfg), 0.05)
    first = res["layers"][0]
    assert first["refreshed"] > 0
    assert first["dw_max"] <= 5e-3 * cfg.array.w_max
    assert first["common"][1] < first["common"][0]


def test_adc_probe_counts_clipping_per_stretch_of_steps(tmp_path, capsys, fashion_dir):
    """benchmarks/probe_adc.py on tiny data (96 images, batch 32): a line per --every steps;
    calibrated every step, no conversion clips (each step's first read sets every full scale);
    calibrated once, the shares are the layers' own counters over each stretch. A missing
    folder, or a --set of a field the probe sets itself, is one line, exit 2."""
    pa = _script("probe_adc")
    assert pa.main(["--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "apt install dataset-fashion-mnist" in err
    common = ["--data", str(fashion_dir), "--set", "data.subset=96", "--set", "train.batch=32", "--engine", "ideal",
              "--every", "1"]
    assert pa.main([*common, "--calibrate-every", "1"]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "–" in x]
    assert len(lines) == 3 and all(x.split()[1:3] == ["0.00%", "0.00%"] for x in lines)
    assert pa.main([*common, "--set", "train.calibrate_every=5"]) == 2  # the probe's own: not dropped
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--set train.calibrate_every is the probe's own (--calibrate-every)" in err
    from cosim.train import loop
    from cosim.train.config import load_config

    cfg = load_config(CONFIGS / "fashion_cnn_ssm.toml", [f"data.dir={fashion_dir}", "data.subset=96",
                                                         "train.batch=32", 'solver.engine="ideal"',
                                                         "train.reference=false", "optimizer.refresh_threshold=none",
                                                         "optimizer.refresh_keep=none"])
    run = loop._set_up(cfg)
    out = pa.probe(run, 3, 3, 0)
    made, clipped = loop._adc_counts(run.layers)
    assert len(out) == 1 and out[0]["all"] == clipped / made and 0 <= out[0]["fwd"] <= 1


def test_runs_report_tabulates_run_folders(tmp_path, capsys):
    """The README's whole-run tables come from the runs' folders: hand-made epochs.csv files
    give the hand-computed rows, and a folder that is not a run is one line and exit 2."""
    rr = _script("runs_report")
    head = "epoch,test_acc,float_test_acc,pulses_set,verify_writes,loss,time_s\n"
    runs = []
    for seed, accs in ((0, (0.80, 0.85, 0.84)), (1, (0.81, 0.83, 0.86))):
        d = tmp_path / f"s{seed}"
        d.mkdir()
        d.joinpath("epochs.csv").write_text(head + "".join(
            f"{k + 1},{a},0.87,1000000,20000,0.5,60\n" for k, a in enumerate(accs)))
        d.joinpath("config.toml").write_text(f"[train]\nseed = {seed}\n")
        runs.append(str(d))
    assert rr.main(runs) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[2] == "| 0 | 84.0 | 85.0 | 87.0 | 3.0 | 3.0 | 0.06 | 3.0 |"
    assert rows[3] == "| 1 | 86.0 | 86.0 | 87.0 | 1.0 | 3.0 | 0.06 | 3.0 |"
    assert rows[4].startswith("| mean ± std | 85.0 ± 1.4 | 85.5 ± 0.7 | 87.0 ± 0.0 | 2.0 ± 1.4 |")
    assert rr.main(["--epochs", runs[1]]) == 0
    assert "| SSM test accuracy (%) | 81.0 | 83.0 | 86.0 |" in capsys.readouterr().out
    assert rr.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no epochs.csv" in err
    no_ref = tmp_path / "s0" / "epochs.csv"
    no_ref.write_text(no_ref.read_text().replace(",0.87,", ",,"))
    assert rr.main(runs) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no float reference" in err and "s0" in err


def test_fashion_cnn_config_is_the_tables_ssm_and_trains(tmp_path, fashion_dir):
    """configs/fashion_cnn_ssm.toml says it runs the Fashion CNN table's SSM at the table's rate:
    its optimizer (but for the refresh it adds) and rate equal the table study's SSM point, and
    it trains from its file (1 Ω wires, nodal reads) on tiny data, writing the epoch table
    runs_report reads."""
    table = tomllib.loads((CONFIGS / "study_fashion_table_cnn.toml").read_text())
    parts = ("stochastic", "momentum", "reinit", "compensation")  # switched off only in the ablation rows
    k = next(i for i, o in enumerate(table["optimizer"])
             if o["name"] == "ssm" and all(o.get(part, True) for part in parts))
    cfg = tomllib.loads((CONFIGS / "fashion_cnn_ssm.toml").read_text())
    mine = {key: v for key, v in cfg["optimizer"].items() if key not in ("refresh_threshold", "refresh_keep")}
    assert mine == table["optimizer"][k] and cfg["train"]["lr"] == table["train"]["lr"][k]
    assert cfg["network"]["kind"] == table["network"]["kind"] == "cnn"
    assert (cfg["array"]["rows"], cfg["array"]["r_row"], cfg["solver"]["engine"]) == (128, 1.0, "nodal")
    out = tmp_path / "run"
    assert cosim(["train", "--config", str(CONFIGS / "fashion_cnn_ssm.toml"), "--data", str(fashion_dir), "--set",
                  "data.subset=64", "--epochs", "1", "--no-progress", "--output-dir", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["engine"] == "nodal" and 0.0 <= metrics["final_test_acc"] <= 1.0
    assert _script("runs_report").main([str(out)]) == 0
