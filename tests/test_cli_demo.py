"""``cosim demo``: the embedded study is valid as shipped, and the command runs a (shrunken)
copy of it end to end into a store, a report and a summary table, resuming on a rerun."""

from __future__ import annotations

import tomllib

import pytest

from cosim.cli import main
from cosim.study import demo
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.store import Store


def test_embedded_study_plans_the_documented_grid():
    p = plan(parse_study(tomllib.loads(demo.DEMO_TOML)))
    pts = [q.config for q in p.points]
    assert len(pts) == 16
    assert sorted({c["array"]["rows"] for c in pts}) == [16, 32, 64, 128]
    assert all(c["array"]["rows"] == c["array"]["cols"] for c in pts)
    assert {(c["array"]["r_row"], c["solver"]["engine"]) for c in pts} == {(0.0, "ideal"), (2.5, "nodal")}
    assert {(c["optimizer"]["name"], c["train"]["lr"]) for c in pts} == {("ssm", 0.003), ("sgd-pulse", 0.1)}
    assert p.cost is not None and p.cost < 30 * 60  # "a few minutes on 2 cores" by the task's own estimate


@pytest.mark.slow
def test_demo_command_runs_and_resumes(tmp_path, monkeypatch, capsys):
    small = (demo.DEMO_TOML.replace("rows = [16, 32, 64, 128]", "rows = [8, 16]")
             .replace("cols = [16, 32, 64, 128]", "cols = [8, 16]")
             .replace("subset = 600", "subset = 48\ntest_subset = 30").replace("epochs = 5", "epochs = 1"))
    assert small != demo.DEMO_TOML
    monkeypatch.setattr(demo, "DEMO_TOML", small)
    out = tmp_path / "d"
    assert main(["demo", "--output-dir", str(out), "--workers", "0"]) == 0
    text = capsys.readouterr().out
    assert (out / "study.toml").read_text() == small
    assert (out / "report" / "index.html").stat().st_size > 1000
    assert "report:" in text and "ssm acc %" in text and "16×16" in text
    with Store(out / "demo.sqlite", create=False) as st:
        assert st.counts()["done"] == 8
    assert main(["demo", "--output-dir", str(out), "--workers", "0"]) == 0
    assert "0 done, 0 failed, 8 already done" in capsys.readouterr().out


def test_output_dir_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "x"
    f.write_text("")
    assert main(["demo", "--output-dir", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err
