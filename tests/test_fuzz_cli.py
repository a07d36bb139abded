"""Fuzzing cosim's edges (issue 15): generated arrays, study and training configs, and whole
command lines, valid and mutated, run in this process through ``cosim.cli.main``.

Asserted for every case (tests/clirun.py ``check``): exit status 0, 1 or 2 and never 3 (the
entry point's internal error) or a traceback; on 2, exactly one ``cosim: error:`` line and no
output file; on 0, outputs that read back (finite currents of the right shape for reads).

Sizes follow the hypothesis profile (tests/conftest.py): the suite runs the profile's
max_examples (100) per test, 3x for the mutated configs and command lines; `make fuzz`
(HYPOTHESIS_PROFILE=fuzz) runs 10,000+ each. Generated sizes stay tiny or absurd (absurd ones
are refused by the size guards before any work), so a case costs milliseconds.
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from pathlib import Path

import numpy as np
import pytest
from clirun import check, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.fuzz
EXAMPLES = settings().max_examples
FAST = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
ROOT = Path(__file__).resolve().parents[1]

# -- values a hostile user types -------------------------------------------------------------------
NUMBERS = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, 0.5, 1e-12, 1e30, 1e308, -1e308, 99999999999999999999]),
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10))
TEXT_NUMBERS = st.one_of(NUMBERS.map(str), st.sampled_from(["nan", "inf", "-inf", "1e999", "", " ", "1k", "2.5u",
                                                            "10meg", "abc", "0x10", "1,2", "--", "-0", "1e-999"]))


@st.composite
def arrays(draw, max_side: int = 5) -> np.ndarray:
    shape = draw(st.one_of(st.just(()), st.tuples(st.integers(0, max_side)),
                           st.tuples(st.integers(0, max_side), st.integers(0, max_side)),
                           st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2))))
    kind = draw(st.sampled_from(["float", "int", "bool", "complex", "tiny", "wild"]))
    n = int(np.prod(shape)) if shape else 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "wild":
        vals = draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n))
        return np.array(vals, dtype=float).reshape(shape)
    base = rng.uniform(1e-6, 1e-4, n).reshape(shape)
    return {"float": base, "int": (base * 1e6).astype(int), "bool": base > 5e-5,
            "complex": base + 1j * base, "tiny": base * 1e-300}[kind]


def write_array(path: Path, arr: np.ndarray, mangle: int, fmt: str) -> Path:
    path = path.with_suffix(fmt)
    if fmt == ".npy":
        np.save(path, arr)
    else:
        flat = np.real(arr)
        rows = np.atleast_2d(flat) if flat.ndim <= 2 else flat.reshape(flat.shape[0], flat[0].size if flat.shape[0] else 0)
        path.write_text("\n".join(",".join(repr(float(x)) for x in r) for r in rows) + "\n")
    if mangle:  # cut or overwrite bytes, as a bad copy or an editor would
        data = bytearray(path.read_bytes())
        if data:
            k = mangle % len(data)
            data = data[:k] if mangle % 2 else data[:k] + bytes([mangle % 256]) + data[k + 1:]
        path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="cosim-fuzz-cli-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def fresh(workdir: Path) -> Path:
    d = Path(tempfile.mkdtemp(dir=workdir))
    return d


# -- arrays ------------------------------------------------------------------------------------------
@given(g=arrays(), v=arrays(), g_fmt=st.sampled_from([".npy", ".csv"]), v_fmt=st.sampled_from([".npy", ".csv"]),
       mangle=st.sampled_from([0, 0, 0, 7, 13, 40, 129]), command=st.sampled_from(["read", "netlist"]),
       engine=st.sampled_from(["ideal", "nodal"]), r_wire=st.sampled_from(["0", "1", "1e-15", "-1", "nan"]))
@settings(max_examples=EXAMPLES, **FAST)
def test_arrays(workdir, g, v, g_fmt, v_fmt, mangle, command, engine, r_wire):
    d = fresh(workdir)
    gp = write_array(d / "g", g, mangle, g_fmt)
    vp = write_array(d / "v", v, 0, v_fmt)
    out = d / ("out.npy" if command == "read" else "out.cir")
    argv = [command, "--conductance", gp, "--voltages", vp, "--r-row", r_wire, "--r-col", r_wire, "--output", out]
    if command == "read":
        argv += ["--engine", engine]
    rc, so, se = run(argv)
    check(rc, so, se, allowed=(0, 2))
    if rc == 2:
        assert not out.exists()
        return
    if command == "read":
        from cosim.io import load_array

        cur = np.load(out)
        assert np.isfinite(cur).all() and cur.shape[-1] == load_array(gp, what="g").shape[1]
    else:
        assert out.read_text().rstrip().endswith(".end")


# -- configs -------------------------------------------------------------------------------------------
TOML_VALUES = st.one_of(
    NUMBERS, st.booleans(), st.text(max_size=8), st.sampled_from(["ir_drop", "train", "ssm", "nodal", "none"]),
    st.lists(st.one_of(NUMBERS, st.text(max_size=3)), max_size=3), st.just({"x": 1}))
STUDY = {"study": {"seeds": 2, "name": "f"}, "task": {"kind": "ir_drop"},
         "array": {"size": [4, 6], "r_wire": [0.0, 1.0]}, "read": {"batch": 2}}


def toml_text(doc: dict) -> str:
    def val(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == -float("inf") else repr(v))
        if isinstance(v, str):
            return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return "{" + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + "}"

    return "".join(f"[{sec}]\n" + "".join(f"{k} = {val(v)}\n" for k, v in body.items()) for sec, body in doc.items())


@st.composite
def study_docs(draw) -> dict:
    doc = {s: dict(b) for s, b in STUDY.items()}
    for _ in range(draw(st.integers(0, 3))):
        sec = draw(st.sampled_from([*doc, "solver", "device", "bogus"]))
        doc.setdefault(sec, {})
        key = draw(st.sampled_from(["seeds", "kind", "size", "rows", "cols", "r_wire", "r_row", "batch", "v_read",
                                    "g_min", "g_max", "method", "engine", "name", "zip", "metrics", "typo"]))
        if draw(st.booleans()) and key in doc[sec]:
            del doc[sec][key]
        else:
            doc[sec][key] = draw(TOML_VALUES)
    return doc


@given(doc=study_docs(), raw=st.sampled_from([None, b"\xff\xfe", b"[study", b"=", b"\x00"]))
@settings(max_examples=3 * EXAMPLES, **FAST)
def test_study_configs(workdir, doc, raw):
    d = fresh(workdir)
    cfg = d / "s.toml"
    text = toml_text(doc)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass  # an unparsable file is a case too
    cfg.write_bytes(text.encode() + (raw or b""))
    rc, so, se = run(["sweep", cfg, "--store", d / "x.sqlite", "--dry-run"])
    check(rc, so, se, allowed=(0, 2))
    assert not (d / "x.sqlite").exists()  # a dry run never creates the store


SET_KEYS = ["optimizer.name", "optimizer.beta", "train.epochs", "train.lr", "array.rows", "array.cols", "device.card",
            "solver.engine", "train.batch", "data.name", "optimizer.nope", "nope.x", "train", "=", "array.r_row",
            # the fields of the latest rounds, with their "none" and choice values below
            "train.calibrate_every", "train.refresh_at", "train.refresh_every", "train.lr_decay",
            "optimizer.residual_limit", "optimizer.refresh_threshold", "converters.adc_headroom", "array.cell"]


@given(sets=st.lists(st.tuples(st.sampled_from(SET_KEYS), st.one_of(TEXT_NUMBERS, st.sampled_from(
    ['"x"', "[1,2]", "{a=1}", "true", '"ssm"', '"sgd-pulse"', "'", '"', "[", "1e999", "inf", '"none"',
     '"epoch_start"', '"epoch_end"', '"device"', '"1S1R"']))), max_size=3))
@settings(max_examples=EXAMPLES, **FAST)
def test_train_set_overrides(sets):
    argv = ["train", "--config", ROOT / "configs" / "digits_mlp_ssm.toml", "--check"]
    for k, v in sets:
        argv += ["--set", f"{k}={v}"]
    rc, so, se = run(argv)
    check(rc, so, se, allowed=(0, 2))


# -- whole command lines ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(workdir):
    """A few valid inputs the command lines may point at (and some that are not)."""
    d = workdir / "inputs"
    d.mkdir()
    np.save(d / "g.npy", np.random.default_rng(0).uniform(1e-6, 1e-5, (3, 4)))
    np.save(d / "v.npy", np.full((2, 3), 0.1))
    (d / "x.csv").write_text("1,2\n3\n")
    (d / "deck.cir").write_text("* t\nv1 a 0 1\nr1 a b 1k\nr2 b 0 3k\n.end\n")
    from cosim.study.config import parse_study
    from cosim.study.grid import plan
    from cosim.study.runner import run_study
    from cosim.study.store import Store

    with Store(d / "s.sqlite") as st_:
        run_study(plan(parse_study(STUDY)), st_, workers=0, progress=False)
    (d / "study.toml").write_text(toml_text(STUDY))
    return {"g": d / "g.npy", "v": d / "v.npy", "bad": d / "x.csv", "deck": d / "deck.cir", "store": d / "s.sqlite",
            "study": d / "study.toml", "card": ROOT / "models" / "cards" / "vteam_default.toml",
            "missing": d / "missing.npy", "dir": d}


SIZE_TEXTS = ["1", "2", "3", "5", "0", "-1", "abc", "1e3", "99999999999999999999", "1000000", ""]
SIZES = st.sampled_from(SIZE_TEXTS)
COUNTS = st.sampled_from([t for t in SIZE_TEXTS if t != "1000000"])
OPTIONS = {
    "read": ["--conductance", "--voltages", "--r-row", "--r-col", "--r-driver", "--r-sense", "--engine", "--method",
             "--output", "--transpose", "--cell", "--r-access", "--unselected", "--selected-rows", "--v-select"],
    "compare": ["--rows", "--cols", "--batch", "--seed", "--g-min", "--g-max", "--r-row", "--engines", "--v-max",
                "--method", "--rtol", "--conductance"],
    "netlist": ["--conductance", "--voltages", "--rows", "--cols", "--r-row", "--output", "--title", "--seed"],
    "solve": ["--engine", "--output", "--check"],
    "device": ["--card", "--pulses", "--amplitude", "--width", "--output"],
    "sweep": ["--workers", "--retry-failed"],
    "report": ["--output", "--point"],
    "export": ["--list", "--point", "--output"],
}
FLAGS = {"--transpose", "--check", "--retry-failed", "--list"}


@st.composite
def command_lines(draw, f: dict) -> tuple[list, Path]:
    cmd = draw(st.sampled_from(sorted(OPTIONS)))
    out = f["dir"] / "outs" / f"o{draw(st.integers(0, 10**9))}"
    path_values = st.sampled_from([f["g"], f["v"], f["bad"], f["missing"], f["dir"], f["deck"], "/proc/x",
                                   "/dev/null", "a" * 300 + ".npy"])
    argv: list = {"solve": ["solve", draw(st.sampled_from([f["deck"], f["bad"], f["missing"]]))],
                  "device": ["device", "curve", "--card", draw(st.sampled_from([f["card"], f["deck"], f["missing"]]))],
                  "sweep": ["sweep", draw(st.sampled_from([f["study"], f["deck"]])), "--store", f["store"], "--dry-run"],
                  "report": ["report", draw(st.sampled_from([f["store"], f["deck"], f["missing"]]))],
                  "export": ["export", draw(st.sampled_from([f["store"], f["g"]]))]}.get(cmd, [cmd])
    for opt in draw(st.lists(st.sampled_from(OPTIONS[cmd]), max_size=6)):
        argv.append(opt)
        if opt in FLAGS:
            continue
        if opt == "--output":
            argv.append(out.with_suffix(draw(st.sampled_from([".npy", ".csv", ".json", ".cir", ".txt", "", ".png"]))))
        elif opt in ("--conductance", "--voltages"):
            argv.append(draw(path_values))
        elif opt in ("--batch", "--pulses"):
            # a million input vectors or pulses is a valid request that runs for minutes (ngspice
            # solves each vector of `compare`): it tests no input handling and stalls `make fuzz`
            argv.append(draw(COUNTS))
        elif opt in ("--rows", "--cols", "--seed", "--workers"):
            argv.append(draw(SIZES))
        else:
            argv.append(draw(st.one_of(TEXT_NUMBERS, st.sampled_from(["nodal", "ideal", "spice", "auto", "direct", "pcg",
                                                                         "1T1R", "v/2", "0-1", "ideal,nodal", "x"]))))
    if cmd == "device" and "--pulses" not in argv:
        argv += ["--pulses", "3"]
    return argv, out.parent


@given(data=st.data())
@settings(max_examples=3 * EXAMPLES, **FAST)
def test_command_lines(files, data):
    argv, outs = data.draw(command_lines(files))
    if "spice" in map(str, argv) or "--engines" in argv:  # keep ngspice out of the fast loop
        argv = ["ideal" if a == "spice" else a for a in argv]
        if "--engines" in argv:
            i = argv.index("--engines")
            argv[i + 1] = "ideal,nodal"
    before = set(outs.iterdir()) if outs.exists() else set()
    rc, so, se = run(argv)
    check(rc, so, se)
    if rc == 2 and outs.exists():
        assert set(outs.iterdir()) == before, "an output was written by a command that failed"
