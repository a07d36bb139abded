"""``cosim train``: in-situ training on crossbar tiles (SSM and baselines), or the SSM ablation.

Examples::

    cosim train                                       # digits MLP, imprecise card, SSM
    cosim train --config configs/digits_mlp_ssm.toml --engine nodal --epochs 5
    cosim train --config configs/mnist_mlp_ssm.toml --data ~/data/mnist
    cosim train --config configs/digits_mlp_ssm.toml --set array.r_row=1.0 --set train.lr=0.2
    cosim train --config configs/digits_mlp_ssm.toml --ablation --seeds 3
    cosim train --config configs/digits_mlp_ssm.toml --engine nodal --export-netlists tapeout
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cosim.catalog import ARRAY_FIELDS, ENGINES

if TYPE_CHECKING:  # the CLI imports cosim.train only when it runs
    from cosim.train import TrainingConfig


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a network in situ on crossbar tiles (SSM and baselines)",
        description="Train a network whose every weight product goes through crossbar tiles (DAC, circuit "
                    "read, ADC), updating the devices with programming pulses, beside a float software "
                    "reference. Writes metrics.json, epochs.csv, config.toml, the pulse log and figures. "
                    "Exit status: 0 on success, 2 for a bad config or input.")
    p.add_argument("--config", help="training config (TOML); default: the built-in digits MLP with SSM")
    p.add_argument("--engine", choices=tuple(ENGINES), help="circuit engine for every read")
    p.add_argument("--cell", choices=ARRAY_FIELDS["cell"].choices,
                   help="array.cell: " + ARRAY_FIELDS["cell"].doc + " (the card's device model gives the I-V)")
    p.add_argument("--epochs", type=int, help="number of epochs (train.epochs)")
    p.add_argument("--seed", type=int, help="random seed (train.seed)")
    p.add_argument("--output-dir", help="where results go (default: output.dir, else runs/<config name>)")
    p.add_argument("--data", metavar="DIR", help="folder of MNIST-format IDX files (sets data.dir; digits → mnist)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config field (repeatable), e.g. --set array.r_row=2.5")
    p.add_argument("--ablation", action="store_true",
                   help="run SSM with each of its parts removed in turn and print the table")
    p.add_argument("--seeds", type=int, default=1, help="seeds per ablation variant (seed, seed+1, …)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--check", action="store_true", help="validate the config, print it, train nothing")
    p.add_argument("--export-netlists", metavar="DIR",
                   help="after training, write the tape-out (one ngspice netlist per tile, top.cir, devices.csv, "
                        "README.md) into DIR, which must be new or empty (see `cosim export`)")
    p.set_defaults(func=run)


def _overrides(args: argparse.Namespace) -> list[str]:
    out = list(args.overrides)
    if args.engine:
        out.append(f'solver.engine="{args.engine}"')
    if args.cell:
        out.append(f'array.cell="{args.cell}"')
    if args.epochs is not None:
        out.append(f"train.epochs={args.epochs}")
    if args.seed is not None:
        out.append(f"train.seed={args.seed}")
    if args.data:
        out.append(f'data.dir="{Path(args.data).expanduser().resolve()}"')
    return out


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from cosim.errors import SpecError
    from cosim.train import load_config, run_training, to_toml
    from cosim.train.ablation import format_table, run_ablation
    from cosim.train.metrics import write_csv
    from cosim.train.sizes import check_training_memory

    overrides = _overrides(args)
    if args.data and not _names_dataset(args.config, overrides):
        overrides.append('data.name="mnist"')  # IDX files given to a digits config: MNIST
    if args.seeds < 1:
        raise SpecError(f"--seeds must be ≥ 1, got {args.seeds}")
    cfg = load_config(args.config, overrides)
    check_training_memory(cfg)  # --check too: a config that cannot fit is not a valid one here
    if args.export_netlists:
        from cosim.array.tapeout import check_output

        if args.ablation:
            raise SpecError("--export-netlists exports one trained network; leave out --ablation")
        check_output(args.export_netlists)  # refuse a non-empty folder before training, not after
    if args.check:
        print(to_toml(cfg), end="")
        return 0
    stem = Path(args.config).stem if args.config else "default"
    out = Path(args.output_dir or cfg.output.dir or Path("runs") / stem)
    progress = not args.no_progress and sys.stderr.isatty()
    if args.ablation:
        seeds = [cfg.train.seed + k for k in range(args.seeds)]
        rows = run_ablation(cfg, seeds, progress=progress,
                            on_row=lambda r: print(f"  {r['variant']:<20} seed {r['seed']}: test "
                                                   f"{100 * r['final_test_acc']:.1f} %, {r['pulses_total']} pulses",
                                                   flush=True))
        print(format_table(rows))
        out.mkdir(parents=True, exist_ok=True)
        keep = ["variant", "seed", "final_test_acc", "best_test_acc", "float_final_test_acc", "pulses_set",
                "pulses_reset", "pulses_total", "sparsity", "convergence_epoch", "energy_J", "time_s"]
        write_csv(out / "ablation.csv", ({k: r.get(k) for k in keep} for r in rows), keep)
        print(f"wrote {out / 'ablation.csv'}")
        return 0
    cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, dir=str(out)))
    # Without a progress bar (a batch job, a log file) each epoch says how it went as it ends.
    res = run_training(cfg, progress=progress, output_dir=out, on_epoch=None if progress else _epoch_line(cfg))
    m = res.metrics
    ref = m["float_final_test_acc"]
    conv = m["convergence_epoch"]
    print(f"{m['network']} · {m['optimizer']} · {m['engine']}: test accuracy {100 * m['final_test_acc']:.1f} % "
          f"(best {100 * m['best_test_acc']:.1f} %)"
          + (f", float software {100 * ref:.1f} %" if ref is not None else ""))
    print(f"pulses: {m['pulses_set']} SET + {m['pulses_reset']} RESET (+ {m['program_pulses']} programming, "
          f"{m['verify_writes']} write-verify); devices pulsed per step {100 * m['sparsity']:.2f} %; "
          f"convergence epoch {conv if conv is not None else 'never'}; energy proxy {m['energy_J']:.3g} J")
    print(f"wrote {res.output_dir}")
    if args.export_netlists:
        from cosim.study.export import export_training

        files = export_training(res, args.export_netlists)
        print(f"wrote {len(files.tiles)} tile netlists, top.cir, devices.csv and README.md to {files.directory}")
    return 0


def _names_dataset(config: str | None, overrides: list[str]) -> bool:
    """Whether the config file or the overrides already choose an IDX data set (not digits)."""
    if any(o.strip().startswith("data.name") for o in overrides):
        return True
    if config is None:
        return False
    from cosim.errors import SpecError
    from cosim.schema import read_toml

    try:
        data = read_toml(config)
    except SpecError:
        return False  # load_config reports the problem with its own message
    return isinstance(data.get("data"), dict) and "name" in data["data"] and data["data"]["name"] != "digits"


def _epoch_line(cfg: TrainingConfig) -> Callable[[dict], None]:
    """A callback printing one line per finished epoch (:func:`run_training`'s ``on_epoch``)."""
    def line(row: dict) -> None:
        ref = row.get("float_test_acc")
        print(f"epoch {row['epoch']}/{cfg.train.epochs}: loss {row['loss']:.4f}, train {100 * row['train_acc']:.1f} %, "
              f"test {100 * row['test_acc']:.1f} %" + (f" (float {100 * ref:.1f} %)" if ref is not None else "")
              + f", {row['pulses_set'] + row['pulses_reset']} pulses, {row['time_s']:.1f} s", flush=True)

    return line
