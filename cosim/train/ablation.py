"""SSM ablation: the full method, then each of its four parts removed in turn (same seeds).

:func:`run_ablation` runs every variant of :data:`ABLATIONS` for each seed on one config (its
optimizer becomes SSM with the config's SSM options, the variant's switch applied on top) and
returns one row per run; :func:`format_table` prints mean ± std over the seeds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cosim.errors import SpecError
from cosim.train.config import OptimizerConfig, TrainingConfig

# variant name → the SSM switches it turns off
ABLATIONS: dict[str, dict[str, bool]] = {
    "ssm": {},
    "ssm − stochastic": {"stochastic": False},
    "ssm − momentum": {"momentum": False},
    "ssm − reinit": {"reinit": False},
    "ssm − compensation": {"compensation": False},
}


def ablation_config(cfg: TrainingConfig, variant: str, seed: int | None = None) -> TrainingConfig:
    """``cfg`` with SSM (its options kept when it already is SSM) minus ``variant``'s part."""
    if variant not in ABLATIONS:
        raise SpecError(f"unknown ablation {variant!r}; choose from {', '.join(ABLATIONS)}")
    options = dict(cfg.optimizer.options) if cfg.optimizer.name == "ssm" else {}
    options.update(ABLATIONS[variant])
    train = cfg.train if seed is None else dataclasses.replace(cfg.train, seed=int(seed))
    return dataclasses.replace(cfg, optimizer=OptimizerConfig(name="ssm", options=options), train=train)


def run_ablation(cfg: TrainingConfig, seeds: Sequence[int] | None = None, *, progress: bool = True,
                 variants: Sequence[str] | None = None,
                 on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """One row per (variant, seed): the run's summary metrics plus ``variant``."""
    from cosim.train.loop import run_training

    rows = []
    for seed in seeds if seeds is not None else [cfg.train.seed]:
        for variant in variants or ABLATIONS:
            m = run_training(ablation_config(cfg, variant, seed), progress=progress).metrics
            row = {"variant": variant, **m}
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """Mean and sample std (ddof 1; 0 for one value) of the values that are not None, and how
    many were None."""
    vals = np.array([v for v in values if v is not None], dtype=float)
    missing = len(values) - vals.size
    if vals.size == 0:
        return None, None, missing
    return float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0, missing


def fmt(values: Sequence[float | None], scale: float = 1.0, digits: int = 1) -> str:
    """'mean ± std' (scaled), just the value when only one was measured (no spread to show),
    'never' when every value is None, '… (k× never)' when some are."""
    mean, std, missing = mean_std(values)
    if mean is None:
        return "never"
    measured = len(values) - missing
    text = f"{mean * scale:.{digits}f}" + (f" ± {std * scale:.{digits}f}" if measured > 1 else "")
    return text + (f" ({missing}× never)" if missing else "")


def format_table(rows: Sequence[dict[str, Any]], key: str = "variant") -> str:
    """A plain-text table (mean ± std over seeds) grouped by ``key``: accuracy (%), training
    pulses, devices pulsed per step (%), convergence epoch (90 % of the float final accuracy)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r[key]), []).append(r)
    head = ["method", "seeds", "test acc (%)", "pulses", "pulsed/step (%)", "convergence (epoch)"]
    lines = []
    for name, rs in groups.items():
        lines.append([name, str(len(rs)), fmt([r["final_test_acc"] for r in rs], 100),
                      fmt([r["pulses_total"] for r in rs], 1, 0), fmt([r["sparsity"] for r in rs], 100, 2),
                      fmt([r["convergence_epoch"] for r in rs], 1, 1)])
    ref = [r["float_final_test_acc"] for r in rows if r.get("float_final_test_acc") is not None]
    widths = [max(len(h), *(len(x[k]) for x in lines)) for k, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(x, widths)) for x in lines]
    if ref:
        out.append(f"float software reference: {fmt(ref, 100)} % test accuracy")
    return "\n".join(out)
