"""Issue 15's reproductions (files, sizes, configs): each is refused with one line and exit 2,
names the value at fault, runs in well under a second, and leaves nothing behind.

The sizes are refused by an estimate before anything is allocated (cosim/guards.py): the tests
pass ``--max-memory`` where the machine's own memory would make the figure depend on it.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from clirun import check, refused, run

from cosim.guards import fmt_bytes, parse_bytes, read_bytes


def npy_with_header(path, header: bytes) -> None:
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)


@pytest.fixture
def arrays(tmp_path):
    np.save(tmp_path / "g.npy", np.full((3, 3), 1e-5))
    np.save(tmp_path / "v.npy", np.full((2, 3), 0.1))
    np.save(tmp_path / "v03.npy", np.zeros((0, 3)))
    return tmp_path


# -- files -------------------------------------------------------------------------------------
def test_npy_with_an_unterminated_header(arrays):
    npy_with_header(arrays / "bad.npy", b"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), ")
    line = refused(["read", "--conductance", arrays / "bad.npy", "--voltages", arrays / "v.npy"])
    assert "bad.npy" in line and "not a valid .npy file" in line


def test_npy_whose_header_claims_1e8_by_1e8(arrays):
    hdr = b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000000, 100000000), }"
    hdr += b" " * (128 - 10 - len(hdr) - 1) + b"\n"
    npy_with_header(arrays / "huge.npy", hdr)
    assert (arrays / "huge.npy").stat().st_size == 128
    t0 = time.perf_counter()
    line = refused(["read", "--conductance", arrays / "huge.npy", "--voltages", arrays / "v.npy"])
    assert time.perf_counter() - t0 < 5 and "(100000000, 100000000)" in line and "71.1 PiB" in line


def test_empty_voltage_array_to_netlist(arrays):
    line = refused(["netlist", "--conductance", arrays / "g.npy", "--voltages", arrays / "v03.npy"])
    assert "holds no input vector" in line and "(0, 3)" in line


def test_300_character_output_name(arrays):
    out = arrays / ("a" * 300 + ".cir")
    line = refused(["netlist", "--conductance", arrays / "g.npy", "--output", out])
    assert "file name is 304 bytes long" in line
    assert sorted(os.listdir(arrays)) == ["g.npy", "v.npy", "v03.npy"]  # nothing written


def test_negative_seed():
    assert "a seed must be in [0, 2**63), got -1" in refused(["compare", "--rows", 4, "--cols", 4, "--seed", -1])


@pytest.fixture
def store(tmp_path):
    from cosim.study.config import parse_study
    from cosim.study.grid import plan
    from cosim.study.runner import run_study
    from cosim.study.store import Store

    p = plan(parse_study({"study": {"seeds": 1}, "task": {"kind": "ir_drop"}, "array": {"size": [4]}}))
    with Store(tmp_path / "s.sqlite") as st:
        run_study(p, st, workers=0, progress=False)
    return tmp_path / "s.sqlite"


def test_report_output_under_a_file(store, tmp_path):
    (tmp_path / "afile").write_text("x")
    line = refused(["report", store, "--output", tmp_path / "afile" / "rep"])
    assert "is a file, not a folder" in line


def test_report_output_into_proc(store):
    line = refused(["report", store, "--output", "/proc/cosim-report"])
    assert "/proc/cosim-report" in line
    assert not os.path.exists("/proc/cosim-report")


def test_report_output_folder_not_writable(store, tmp_path, monkeypatch):
    """A folder the user may not write into (simulated: root writes anywhere): one line, and
    the folder the report created is removed again."""
    import pathlib

    real = pathlib.Path.touch

    def touch(self, *a, **k):
        if self.name == ".cosim-write-test":
            raise PermissionError(13, "Permission denied")
        return real(self, *a, **k)

    monkeypatch.setattr(pathlib.Path, "touch", touch)
    line = refused(["report", store, "--output", tmp_path / "new" / "rep"])
    assert "cannot write into the folder (Permission denied)" in line
    assert not (tmp_path / "new").exists()


def test_device_fit_with_zero_amplitude(tmp_path):
    from cosim.devices.paths import models_dir

    data = models_dir().parent / "examples" / "data" / "pulse_nl_synthetic.csv"
    if not data.exists():
        data = tmp_path / "c.csv"
        data.write_text("pulse,g_S,direction\n0,1e-6,none\n1,2e-6,set\n2,3e-6,set\n3,2e-6,reset\n")
    line = refused(["device", "fit", data, "--model", "pulse_nl", "--amplitude-set", "0"])
    assert "--amplitude-set" in line and "cannot be 0 V" in line


# -- sizes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "words"), [
    (["compare", "--rows", 1000000, "--cols", 1000000], ["--rows 1000000 --cols 1000000", "TiB"]),
    (["--max-memory", "4G", "compare", "--rows", 20000, "--cols", 20000], ["155 GiB", "limit of 4 GiB"]),
    (["--max-memory", "16G", "compare", "--rows", 4, "--cols", 4, "--batch", 100000000], ["--batch 100000000"]),
    (["compare", "--rows", 99999999999999999999, "--cols", 2], ["--rows 99999999999999999999"]),
    (["device", "curve", "--card", "models/cards/vteam_default.toml", "--pulses", 1000000000], ["--pulses 1000000000"]),
])
def test_sizes_are_refused_before_allocating(argv, words, monkeypatch):
    from cosim.devices.paths import models_dir

    monkeypatch.chdir(models_dir().parent)
    t0 = time.perf_counter()
    line = refused(argv)
    assert time.perf_counter() - t0 < 5
    assert "needs at least" in line and "memory" in line and all(w in line for w in words), line
    assert os.environ.get("COSIM_MAX_MEMORY") is None  # --max-memory does not leak out of main()


def test_max_memory_override_and_its_errors():
    assert parse_bytes("64G") == 64 * 2**30 and parse_bytes("1.5k") == 1536 and parse_bytes("100") == 100
    assert fmt_bytes(7.28 * 2**40) == "7.28 TiB"
    assert "memory size '1Q'" in refused(["--max-memory", "1Q", "compare", "--rows", 4, "--cols", 4])
    rc, out, err = run(["--max-memory", "1T", "compare", "--rows", 8, "--cols", 8, "--engines", "ideal,nodal"])
    assert rc == 0, err
    assert read_bytes(64, 64) < read_bytes(64, 64, 100) < read_bytes(128, 128, 100)


@pytest.mark.parametrize(("body", "words"), [
    ('[study]\nseeds = 20000\n[task]\nkind = "ir_drop"\n[array]\nsize = [4, 8, 16, 32]\n',
     ["8e+04 points", "limit of 50,000"]),
    ('[study]\nseeds = 100000\n[task]\nkind = "ir_drop"\n', ["study.seeds must be ≤ 50000, got 100000"]),
    ('[study]\nseeds = 1000000000000\n[task]\nkind = "ir_drop"\n', ["study.seeds must be ≤ 50000"]),
    ('[task]\nkind = "ir_drop"\n[array]\nrows = 1e12\ncols = 4\n', ["array.rows must be ≤ 2,147,483,647"]),
    ('[task]\nkind = "ir_drop"\n[array]\nrows = 1e9\ncols = 4000\n', ["1000000000 × 4000", "PiB"]),
    ('[task]\nkind = ["ir_drop"]\n', ["task.kind must be one task name", "['ir_drop']"]),
    ('[task]\nkind = 1.5\n', ["task.kind must be one task name", "1.5"]),
    ('[study]\nseeds = 1e30\n[task]\nkind = "ir_drop"\n', ["study.seeds"]),
    ('[study]\nseeds = 1e12\n[task]\nkind = "ir_drop"\n', ["study.seeds"]),
])
@pytest.mark.parametrize("dry", [True, False])
def test_study_configs_refused_fast(tmp_path, body, words, dry):
    cfg = tmp_path / "s.toml"
    cfg.write_text(body)
    t0 = time.perf_counter()
    line = refused(["sweep", cfg, "--store", tmp_path / "x.sqlite", "--workers", 0, *(["--dry-run"] if dry else [])])
    assert time.perf_counter() - t0 < 5
    assert str(cfg) in line and all(w in line for w in words), line
    assert not (tmp_path / "x.sqlite").exists()


def test_non_utf8_study_config(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_bytes(b'[study]\nname = "\xff\xfe"\n[task]\nkind = "ir_drop"\n')
    assert "utf-8" in refused(["sweep", cfg, "--store", tmp_path / "x.sqlite"]).lower()
    assert not (tmp_path / "x.sqlite").exists()


@pytest.mark.parametrize(("setting", "words"), [
    ('optimizer.beta="x"', ["optimizer.beta", "'x'"]),
    ("optimizer.name=[1,2]", ["optimizer.name", "[1, 2]"]),
])
def test_train_set_overrides_of_the_wrong_type(setting, words):
    from cosim.devices.paths import models_dir

    cfg = models_dir().parent / "configs" / "digits_mlp_ssm.toml"
    line = refused(["train", "--config", cfg, "--check", "--set", setting])
    assert all(w in line for w in words), line


# -- found by tests/test_fuzz_cli.py -------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    ["netlist", "--conductance", "a" * 300 + ".npy"],
    ["device", "curve", "--pulses", 3, "--card", "a" * 300 + ".toml"],
    ["report", "a" * 300 + ".sqlite", "--output", "x"],
    ["solve", "a" * 300 + ".cir"],
])
def test_input_names_too_long(argv):
    assert "too long" in refused(argv).lower()


def test_curve_with_few_strong_pulses_has_no_overflow_and_no_nan():
    """1 V on the 0.2 V vteam card: trial stages far outside the bounds must not warn (pytest
    turns warnings into errors), and an asymmetry with no interior to measure is undefined."""
    from cosim.devices.paths import models_dir

    rc, out, err = run(["device", "curve", "--card", models_dir() / "cards" / "vteam_default.toml",
                        "--amplitude", 1, "--pulses", 3])
    assert rc == 0, err
    assert "asymmetry undefined" in out and "nan" not in out


def test_absurd_pulse_amplitude_is_refused_not_crashed():
    # Found by the CLI fuzzer: at 1e30 V the integrator's stages overflow (inf - inf). The step is
    # rejected like any other, and the integration gives up with its one-line ConvergenceError.
    line = refused(["device", "curve", "--card", "models/cards/vteam_default.toml", "--amplitude", "1e+30",
                    "--pulses", "3"])
    assert "adaptive pulse integration" in line


@pytest.mark.parametrize("engine", ["ideal", "nodal"])
def test_read_whose_currents_overflow_is_refused(tmp_path, engine):
    # Found by `make fuzz`: two rows of 64 S at 2.8e306 V sum past float's range in the matmul
    # (a RuntimeWarning turned internal error). The read now refuses it in one line.
    np.savetxt(tmp_path / "g.csv", [[64.0], [64.0]], delimiter=",")
    np.savetxt(tmp_path / "v.csv", [[2.8e306, 2.8e306]], delimiter=",")
    line = refused(["read", "--conductance", tmp_path / "g.csv", "--voltages", tmp_path / "v.csv",
                    "--engine", engine, "--output", tmp_path / "i.npy"])
    assert "overflows" in line and not (tmp_path / "i.npy").exists()


@pytest.mark.parametrize("r_wire", ["0", "1"])
def test_read_of_conductances_near_float_max_is_not_an_internal_error(tmp_path, r_wire):
    # Found by `make fuzz`: a 1×1 array of 5e307 S; the stiff-resistor check multiplied it by its
    # ratio (1e6) past float's range, a RuntimeWarning turned internal error.
    np.save(tmp_path / "g.npy", np.array([[5e307]]))
    np.savetxt(tmp_path / "v.csv", [[6.4e-5]], delimiter=",")
    rc, out, err = run(["read", "--conductance", tmp_path / "g.npy", "--voltages", tmp_path / "v.csv",
                        "--r-row", r_wire, "--r-col", r_wire, "--engine", "nodal", "--output", tmp_path / "i.npy"])
    check(rc, out, err, allowed=(0, 2))
    if rc == 0:
        assert np.isfinite(np.load(tmp_path / "i.npy")).all()


def test_vteam_pulse_of_1e200_volts_goes_pulse_by_pulse_without_overflow():
    # Found by `make fuzz` (`device curve --amplitude 4.2e200`): the closed-form drive integral
    # overflowed in a power; it is now NaN, which sends the run to the pulse-by-pulse integrator
    # (that refuses it in one line, as at 1e30 V above).
    import dataclasses
    import warnings
    from pathlib import Path

    from cosim.devices import MODELS, load_card

    c = load_card(Path(__file__).resolve().parents[1] / "models" / "cards" / "vteam_default.toml")
    prog = c.programming
    huge = dataclasses.replace(prog, amplitude_set=np.sign(prog.amplitude_set) * 4.2e200,
                               amplitude_reset=np.sign(prog.amplitude_reset) * 4.2e200)
    for direction in (1, -1):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, m = MODELS["vteam"].pulse_steps(huge.pulse(direction), dict(c.params))
        assert np.isnan(m).all()
