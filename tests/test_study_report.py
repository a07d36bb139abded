"""Reports: files written, figures non-empty, CSV statistics right, training sections drawn from
whatever points carry training metrics, and the page opening in headless Chromium without errors.

Stores are filled in-process (``workers=0``); the Dask path is tested in test_study_runner.py.
Budget: < 20 s (matplotlib figures, two Chromium page loads).
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from cosim.cli import main
from cosim.schema import Field, Section
from cosim.study.config import parse_study
from cosim.study.grid import plan
from cosim.study.report import write_report
from cosim.study.runner import run_study
from cosim.study.store import Store
from cosim.study.tasks import TASKS, register_task
from cosim.study.training import NO_TRAINING


def fake_training(point: dict) -> dict:
    """Stand-in training metrics with a known shape: accuracy falls with size, parasitic below ideal."""
    n = point["array"]["rows"]
    rng = np.random.default_rng(point["seed"])
    base = 0.95 - 0.0002 * n + 0.005 * rng.standard_normal()
    slow = point["optimizer"]["name"] == "sgd"
    return {"accuracy_ideal": base, "accuracy_parasitic": base - 0.0004 * n,
            "pulses": (3000 if slow else 1200) + 50 * point["seed"],
            "convergence": [base * (1 - np.exp(-(e + 1) / (3 if slow else 1.5))) for e in range(6)]}


FAKE_SECTIONS = {
    "array": Section("array", {"rows": Field(type="int", minimum=1), "cols": Field(type="int", default=10)}),
    "device": Section("device", {"model": Field(type="str", default="pulse_nl")}),
    "optimizer": Section("optimizer", {"name": Field(type="str", choices=("sgd", "ssm"))}),
}


@pytest.fixture(scope="module")
def ir_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("ir") / "study.sqlite"
    p = plan(parse_study({"study": {"name": "ir-test", "seeds": 3}, "task": {"kind": "ir_drop"},
                          "array": {"size": [8, 16, 24], "r_wire": [0.0, 1.0, 4.0]}, "read": {"batch": 4}}))
    with Store(path) as st:
        run_study(p, st, workers=0, progress=False)
        # one failed point, with markup in its error to prove the page escapes it
        key = p.points[-1].key
        st.record(key, {"status": "failed", "error": "RuntimeError: <script>alert(1)</script> solver gave up",
                        "metrics": None})
    return path


@pytest.fixture(scope="module")
def ir_report(ir_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("ir_report")
    return write_report(ir_store, out), out


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def png_has_content(path: Path) -> None:
    from matplotlib.image import imread

    img = imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not a blank canvas
    assert (rgb.mean(axis=2) < 0.9).mean() > 0.01  # at least 1 % of pixels carry ink


def test_files_written_and_figures_not_empty(ir_report):
    files, out = ir_report
    assert files.html == out / "index.html" and files.html.stat().st_size > 10_000
    assert set(files.figures) == {"ir_vs_size", "ir_vs_wire", "loss_map"}
    for png, svg in files.figures.values():
        png_has_content(png)
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        assert sum(1 for el in root.iter() if el.tag.endswith("path")) > 20
    names = {p.name for p in files.tables}
    assert names == {"points.csv", "failed.csv", "ir_drop.csv"}
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_svg_labels_carry_units(ir_report):
    files, _ = ir_report
    text = files.figures["ir_vs_wire"][1].read_text()
    # matplotlib writes each text element as a comment followed by its glyphs
    assert "Ω per segment" in text and "% of ideal current" in text and "% of applied voltage" in text
    heat = files.figures["loss_map"][1].read_text()
    assert "cell-voltage loss (% of applied voltage)" in heat


def test_html_is_self_contained_and_escaped(ir_report):
    files, _ = ir_report
    page = files.html.read_text()
    assert page.count('<img src="data:image/png;base64,') == 3
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(u.startswith(("data:", "figures/", "tables/")) for u in links)
    assert "://" not in re.sub(r'data:image/png;base64,[^"]*', "", page)
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count(NO_TRAINING) == 2
    assert "Failed points (1)" in page


def test_csv_statistics_match_the_store(ir_store, ir_report):
    files, out = ir_report
    with Store(ir_store, create=False) as st:
        rows = [r for r in st.rows() if r.status == "done"]
    by = {}
    for r in rows:
        by.setdefault((r.config["array"]["rows"], r.config["array"]["r_row"]), []).append(r.metrics["ir_err_max"])
    table = read_csv(out / "tables" / "ir_drop.csv")
    assert len(table) == 9
    assert {"array.rows", "array.r_row_ohm", "ir_err_max_mean", "ir_err_max_std", "solve_time_s_mean"} <= set(table[0])
    for t in table:
        vals = by[(int(t["array.rows"]), float(t["array.r_row_ohm"]))]
        assert int(t["n_ir_err_max"]) == len(vals)
        assert float(t["ir_err_max_mean"]) == pytest.approx(np.mean(vals), rel=1e-12, abs=1e-300)
        if len(vals) > 1:
            assert float(t["ir_err_max_std"]) == pytest.approx(np.std(vals, ddof=1), rel=1e-9, abs=1e-300)
    points = read_csv(out / "tables" / "points.csv")
    assert len(points) == 27 and sum(p["status"] == "failed" for p in points) == 1
    failed = read_csv(out / "tables" / "failed.csv")
    assert len(failed) == 1 and "solver gave up" in failed[0]["error"]


def test_heatmap_point_choice(ir_store, tmp_path, capsys):
    with Store(ir_store, create=False) as st:
        done = [r for r in st.rows() if r.status == "done"]
    worst = max(done, key=lambda r: r.metrics["ir_err_max"])
    assert write_report(ir_store, tmp_path / "a").heatmap_point == worst.key
    pick = next(r for r in done if r.config["array"]["rows"] == 8 and r.config["array"]["r_row"] == 1.0)
    assert main(["report", str(ir_store), "--output", str(tmp_path / "b"), "--point", pick.key[:10]]) == 0
    assert "report written to" in capsys.readouterr().out
    assert pick.key in (tmp_path / "b" / "index.html").read_text()
    assert main(["report", str(ir_store), "--output", str(tmp_path / "c"), "--point", "0000000000"]) == 2
    assert "no point with key" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.sqlite"), "--output", str(tmp_path / "d")]) == 2


def test_training_sections_render_from_training_metrics(tmp_path):
    register_task("fake_train", run=fake_training, sections=FAKE_SECTIONS)
    try:
        p = plan(parse_study({"study": {"seeds": 3}, "task": {"kind": "fake_train"},
                              "array": {"rows": [16, 64, 256]}, "optimizer": {"name": ["sgd", "ssm"]}}))
        with Store(tmp_path / "t.sqlite") as st:
            run_study(p, st, workers=0, progress=False)
    finally:
        TASKS.pop("fake_train")
    files = write_report(tmp_path / "t.sqlite", tmp_path / "out")
    assert set(files.figures) == {"accuracy_vs_size", "pulses_convergence"}
    for png, _ in files.figures.values():
        png_has_content(png)
    page = files.html.read_text()
    assert NO_TRAINING not in page and "no IR-drop points in this study" in page
    table = read_csv(tmp_path / "out" / "tables" / "training.csv")
    assert len(table) == 6  # 3 sizes × 2 optimizers, seeds averaged
    sgd = [t for t in table if t["optimizer.name"] == "sgd"]
    assert all(float(t["pulses_mean"]) == pytest.approx(3050.0) for t in sgd)  # 3000 + 50·mean(0,1,2)
    text = files.figures["accuracy_vs_size"][1].read_text()
    assert "test accuracy (%)" in text and "array cells N·M (count)" in text  # 16×10 … 256×10
    assert "programming pulses per training run (count)" in files.figures["pulses_convergence"][1].read_text()


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
IMG_CHECK = """<script>
window.__errs = [];
window.addEventListener('error', e => window.__errs.push(String(e.message || e.type)), true);
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0));
  const pre = document.createElement('pre'); pre.id = 'img-check';
  pre.textContent = `images=${imgs.length} broken=${bad.length} errors=${window.__errs.length}`;
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium); "
                    "the headless page check needs it")
    return exe


def load_page(exe: str, page: Path) -> tuple[str, list[str]]:
    """(dumped DOM, console lines) of ``page`` in a fresh headless profile."""
    with tempfile.TemporaryDirectory() as profile:
        res = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                              page.resolve().as_uri()], capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout, [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln]


@pytest.mark.chromium
def test_report_opens_in_headless_chromium(ir_report, tmp_path):
    exe = chromium()
    files, out = ir_report
    dom, console = load_page(exe, files.html)
    assert console == [], console
    assert "Cell-voltage loss map" in dom and "Failed points (1)" in dom
    # the same page with a probe that checks, after load, that every image decoded
    probed = out / "probe.html"
    probed.write_text(files.html.read_text().replace("<head>", "<head>" + IMG_CHECK, 1))
    try:
        dom, console = load_page(exe, probed)
    finally:
        probed.unlink()
    assert console == [], console
    found = re.search(r'<pre id="img-check">images=(\d+) broken=(\d+) errors=(\d+)</pre>', dom)
    assert found, dom[-500:]
    assert found.groups() == ("3", "0", "0")
