"""The study ``cosim demo`` runs: embedded defaults, written out as a normal study config.

Digits MLP (64-64-10) trained in situ with the imprecise device card on N×N tiles, N = 16, 32,
64, 128; without wires (ideal engine) and with 2.5 Ω per wire segment (nodal engine, sneak
paths and IR drop included); SSM against naive pulse SGD; one seed; 600 training samples and
5 epochs, so the 16 points finish in a few minutes on 2 cores. The config is written next to
the results, so ``cosim sweep DIR/study.toml --store …`` reruns or extends exactly this study.
"""

from __future__ import annotations

from pathlib import Path

DEMO_TOML = """\
# The cosim demo study: does a digits MLP still train in situ as tiles grow and wires get resistive,
# and what do SSM and naive pulse SGD cost in pulses?  Written by `cosim demo`; rerun it with
#   cosim sweep study.toml --store demo.sqlite && cosim report demo.sqlite --output report
# 4 tile sizes x 2 wire settings x 2 optimizers x 1 seed = 16 points.

[study]
name = "demo"
seeds = 1
# rows and cols advance together (square tiles); the wire value and its engine too; each
# [[optimizer]] table with its learning rate.
zip = [["array.rows", "array.cols"], ["array.r_row", "array.r_col", "solver.engine"], ["optimizer", "train.lr"]]

[task]
kind = "train"

[data]
name = "digits"
subset = 600                 # training samples (of 1347); the test set keeps all 450

[network]
kind = "mlp"                 # 64-64-10, bias as one more crossbar row

[device]
card = "imprecise"           # strong nonlinearity and asymmetry, 3.5 % c2c, 10-20 % d2d, faulty cells

[array]
rows = [16, 32, 64, 128]
cols = [16, 32, 64, 128]
r_row = [0.0, 2.5]           # Ω per wire segment
r_col = [0.0, 2.5]
mapping = "differential"

[solver]
engine = ["ideal", "nodal"]  # zero wire resistance needs no circuit solve

[[optimizer]]
name = "ssm"                 # stochastic rounding, momentum, re-initialisation, compensation
beta = 0.95
normalize = true
policy = "set-only"

[[optimizer]]
name = "sgd-pulse"           # deterministic rounding, no read-back: the failure case
policy = "set-only"

[train]
epochs = 5
batch = 32
lr = [0.003, 0.1]            # per optimizer (SSM: largest step in weight units)
reference = false            # the float software reference is in `cosim train`, not needed here

[output]
figures = false
pulse_log = "none"
"""


def write_demo_config(directory: str | Path) -> Path:
    """Write the demo study config as ``directory/study.toml`` (folder created); its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "study.toml"
    path.write_text(DEMO_TOML, encoding="utf-8")
    return path
