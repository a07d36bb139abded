"""``cosim train`` end to end on a tiny config, its ablation mode and its error handling.

Budget: ~15 s.
"""

from __future__ import annotations

import json

import pytest

from cosim.cli import main

TINY = """
[data]
subset = 64
test_subset = 40

[network]
hidden = [6]

[array]
rows = 16
cols = 16

[train]
epochs = 2
batch = 16

[output]
pulse_log = "both"
"""


@pytest.fixture
def tiny(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY)
    return p


def test_train_writes_metrics_epochs_and_figures(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(tiny), "--epochs", "1", "--engine", "nodal", "--seed", "3",
                 "--output-dir", str(out), "--no-progress", "--set", "array.r_row=1.0"]) == 0
    text = capsys.readouterr().out
    assert "test accuracy" in text and str(out) in text
    assert text.startswith("epoch 1/1: loss ") and " pulses, " in text.splitlines()[0]  # no bar: a line per epoch
    m = json.loads((out / "metrics.json").read_text())
    assert m["engine"] == "nodal" and m["seed"] == 3 and m["epochs"] == 1 and m["config"]["array"]["r_row"] == 1.0
    lines = (out / "epochs.csv").read_text().splitlines()
    assert lines[0].startswith("epoch,lr,loss,train_acc,test_acc") and len(lines) == 2
    for name in ("accuracy.png", "pulses.png", "conductance_hist.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("pulses.npz", "pulses.csv", "config.toml"):
        assert (out / name).stat().st_size > 0
    assert main(["train", "--config", str(out / "config.toml"), "--check"]) == 0  # the written config re-runs
    assert "[array]" in capsys.readouterr().out


def test_ablation_prints_the_table(tiny, tmp_path, capsys):
    assert main(["train", "--config", str(tiny), "--ablation", "--epochs", "1", "--output-dir", str(tmp_path / "ab"),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    for variant in ("ssm", "ssm − stochastic", "ssm − momentum", "ssm − reinit", "ssm − compensation"):
        assert f"\n{variant} " in text
    assert "float software reference" in text and (tmp_path / "ab" / "ablation.csv").is_file()


@pytest.mark.parametrize("args, message", [
    (["--set", "train.epoch=3"], "train.epoch is not a field of [train]; did you mean 'epochs'?"),
    (["--set", "array.tile_rows=32"], "array.tile_rows = 32 is larger than the array (array.rows = 16)"),
    (["--data", "/no/such/folder"], "data.dir: no such directory: /no/such/folder"),
    (["--epochs", "0"], "train.epochs must be ≥ 1, got 0"),
])
def test_bad_input_is_one_line_and_status_2(tiny, tmp_path, capsys, args, message):
    out = tmp_path / "never"
    assert main(["train", "--config", str(tiny), "--output-dir", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()  # nothing written before the config is known to be good
