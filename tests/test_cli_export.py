"""``cosim export`` on real study stores (an ir_drop and a train study run in-process),
``cosim train --export-netlists``, and every user mistake as one line with status 2.

The netlists' agreement with cosim is proven in test_tapeout.py; here ``--verify`` (ngspice on
every deck, 1e-6 relative, see there for why) runs through the CLI. Budget: ~20 s.
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from cosim.cli import main
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.runner import run_study
from cosim.study.store import Store
from cosim.study.tasks import TASKS, register_task

if "train" not in TASKS:  # registered by cosim.study.tasks in the full build
    register_task("train", run="cosim.study.training:run_training_point", sections="cosim.train.config:STUDY_SECTIONS")

TRAIN = {"data": {"subset": 50, "test_subset": 20}, "network": {"hidden": [4]},
         "array": {"rows": 16, "cols": 16, "r_row": 1.0, "r_col": 1.0}, "train": {"epochs": 1, "batch": 8,
                                                                                 "reference": False},
         "solver": {"engine": "nodal"}}


def run(store_path, kind, sections, export=None):
    doc = {"study": {"seeds": 1}, "task": {"kind": kind}, **sections}
    if export:
        doc["export"] = export
    p = plan(parse_study(doc))
    with Store(store_path) as st:
        run_study(p, st, workers=0, progress=False)
        return [r.key for r in st.rows("done")]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("stores")
    ir = run(d / "ir.sqlite", "ir_drop", {"array": {"size": [12, 16], "r_wire": 1.0}, "read": {"batch": 2}},
             export={"netlists": True, "where": {"array.rows": 16}})
    tr = run(d / "train.sqlite", "train", TRAIN)
    assert len(ir) == 2 and len(tr) == 1
    return d, ir, tr


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def conductances(out) -> np.ndarray:
    with open(out / "devices.csv", newline="") as fh:
        return np.array([float(r["conductance_S"]) for r in csv.DictReader(fh)])


@pytest.mark.ngspice
def test_export_an_ir_drop_point_and_verify_it(stores, tmp_path, capsys):
    from cosim.study.export import find_point, point_array

    d, ir, _ = stores
    key = next(k for k in ir if find_point(d / "ir.sqlite", k).config["array"]["rows"] == 16)
    out = tmp_path / "tape"
    assert main(["export", str(d / "ir.sqlite"), "--point", key[:8], "--output", str(out), "--verify"]) == 0
    text = capsys.readouterr().out
    assert "wrote 1 tile netlist," in text and "ngspice agrees with cosim on 2 decks" in text
    spec, _ = point_array(find_point(d / "ir.sqlite", key))
    np.testing.assert_array_equal(conductances(out).reshape(16, 16), spec.conductances)  # the array measured
    assert (out / "tiles" / "array.cir").is_file() and key in (out / "README.md").read_text()


@pytest.mark.ngspice
def test_export_a_train_point_reruns_it_reproducibly(stores, tmp_path, capsys):
    d, _, tr = stores
    out = tmp_path / "net"
    assert main(["export", str(d / "train.sqlite"), "--point", tr[0][:10], "-o", str(out), "--verify"]) == 0
    cap = capsys.readouterr()
    assert cap.err == ""  # the re-run reproduced the stored pulses and accuracy: no warning
    assert "wrote 12 tile netlists" in cap.out and "ngspice agrees with cosim on 13 decks" in cap.out
    assert "re-run reproduced the stored metrics: yes" in (out / "README.md").read_text()
    assert conductances(out).size == 12 * 256


def test_a_rerun_that_differs_from_the_store_is_reported(stores, tmp_path, capsys):
    d, _, tr = stores
    path = tmp_path / "tampered.sqlite"
    with Store(d / "train.sqlite", create=False) as src, Store(path) as st:
        row = src.get(tr[0])
        st.add_points([(row.key, row.config)])
        st.record(row.key, {"status": "done", "metrics": {**row.metrics, "pulses_total": row.metrics["pulses_total"] + 1}})
    out = tmp_path / "t"
    assert main(["export", str(path), "--point", tr[0][:6], "-o", str(out)]) == 0
    assert "re-run differs from the stored point: pulses_total" in one_line(capsys)
    assert "re-run reproduced the stored metrics: no" in (out / "README.md").read_text()


def test_list_shows_exportable_points_and_the_export_selection(stores, capsys):
    d, ir, _ = stores
    assert main(["export", str(d / "ir.sqlite"), "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {ln[2:14]: ln for ln in lines if ln[2:14] in {k[:12] for k in ir}}
    assert len(rows) == 2
    assert sorted(ln[:2] for ln in rows.values()) == ["  ", "* "]  # export.where picks the 16×16 point
    for line in rows.values():
        assert "ir_drop  done" in line and line.startswith("* " if "16x16" in line else "  ")


@pytest.fixture
def bad_store(tmp_path):
    path = tmp_path / "bad.sqlite"
    cfg = {"task": {"kind": "ir_drop"}, "seed": 0}
    with Store(path) as st:
        st.add_points([("abcd1" + "0" * 59, cfg), ("abcd2" + "0" * 59, cfg), ("fa11" + "0" * 60, cfg),
                       ("9e9d" + "0" * 60, cfg), ("0dd0" + "0" * 60, {"task": {"kind": "other"}})])
        st.record("fa11" + "0" * 60, {"status": "failed", "error": "ValueError: boom [irdrop.py:12]"})
        st.record("0dd0" + "0" * 60, {"status": "done", "metrics": {}})
    return path


@pytest.mark.parametrize("args, message", [
    (["--point", "abcd"], "point key 'abcd' is ambiguous"),
    (["--point", "ffff"], "no point with key 'ffff'"),
    (["--point", "ab"], "too short"),
    (["--point", "fa11"], "failed (ValueError: boom [irdrop.py:12]); nothing to export"),
    (["--point", "9e9d"], "is pending; finish the study"),
    (["--point", "0dd0"], "is a 'other' point; export knows ir_drop, train, inference points"),
    ([], "give --point KEY"),
])
def test_bad_points_are_one_line_errors(bad_store, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["export", str(bad_store), "--output", str(out), *args]) == 2
    assert message in one_line(capsys)
    assert not out.exists()


def test_missing_store_and_occupied_output(stores, tmp_path, capsys):
    assert main(["export", str(tmp_path / "nope.sqlite"), "--point", "abcd"]) == 2
    assert "no such study store" in one_line(capsys)
    d, ir, _ = stores
    out = tmp_path / "busy"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    assert main(["export", str(d / "ir.sqlite"), "--point", ir[0][:8], "-o", str(out)]) == 2
    assert "output folder is not empty; refusing to overwrite it (--force replaces it)" in one_line(capsys)
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert main(["export", str(d / "ir.sqlite"), "--point", ir[0][:8], "-o", str(out), "--force"]) == 0
    assert (out / "top.cir").is_file() and not (out / "mine.txt").exists()


def test_train_export_netlists(tmp_path, capsys):
    args = ["train", "--no-progress", "--output-dir", str(tmp_path / "run")]
    for s in ("data.subset=50", "data.test_subset=20", "network.hidden=[4]", "array.rows=16", "array.cols=16",
              "train.epochs=1", "array.r_row=1.0", "output.figures=false"):
        args += ["--set", s]
    tape = tmp_path / "tape"
    assert main([*args, "--export-netlists", str(tape)]) == 0
    assert "wrote 12 tile netlists" in capsys.readouterr().out
    assert (tape / "top.cir").is_file() and (tape / "devices.csv").is_file()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    assert main([*args[:2], "--output-dir", str(tmp_path / "run2"), *args[4:], "--export-netlists", str(busy)]) == 2
    assert "output folder is not empty" in one_line(capsys)
    assert not (tmp_path / "run2").exists()  # refused before training
    assert main([*args, "--ablation", "--export-netlists", str(tmp_path / "t2")]) == 2
    assert "leave out --ablation" in one_line(capsys)
