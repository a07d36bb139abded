"""Devices updated per second for a sparse update of a 784×100 layer pair (two arrays, G+ and G-).

Each update pulses a random 10 % of the 156,800 devices by ±1 pulse (an SSM-style sparse update)
with the card's cycle-to-cycle noise, through three paths:

- numpy:    DevicePopulation.apply_pulses, adaptive Dormand–Prince, numpy rate functions;
- compiled: the same with the verilogae-compiled rate functions from models/*.va;
- exact:    (pulse_nl only) the closed-form whole-pulse update of the compact model;
- table:    PulseTable.apply on the pulsed devices' conductances (gather, apply, scatter).

Reported: median wall time of ``--repeats`` updates, devices/s, the speed ratio against the numpy
path measured in the same run, and the error of each path against the numpy path for one
noise-free update from the same states (max |ΔG difference| / window; for the table path this is
the nominal-table approximation, which ignores d2d variation and interpolates between pulses).

    .venv/bin/python benchmarks/bench_devices.py [--repeats 5] [--cards imprecise vteam_default ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from cosim.devices import DevicePopulation, IntegratorOptions, PulseTable, load_card
from cosim.devices.paths import models_dir

SHAPE = (2, 784, 100)


def _update(shape, fraction, rng):
    pulsed = rng.random(shape) < fraction
    return np.where(pulsed, rng.choice([-1, 1], shape), 0)


def _population(card, backend, method, g0):
    pop = DevicePopulation.create(card, SHAPE, seed=0, backend=backend, integrator=IntegratorOptions(method=method))
    pop.set_conductance(g0)
    return pop


def _time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench(card_stem: str, repeats: int, fraction: float) -> list[tuple]:
    card = load_card(models_dir() / "cards" / f"{card_stem}.toml")
    table = PulseTable.from_card(card)
    rng = np.random.default_rng(1)
    lo, hi = table.g_min, table.g_max
    g0 = lo + (hi - lo) * rng.uniform(0.1, 0.9, SHAPE)  # inside every device's window, mostly
    n = _update(SHAPE, fraction, rng)
    count = int(np.count_nonzero(n))
    span = hi - lo

    paths = [("numpy", "numpy", "adaptive"), ("compiled", "compiled", "adaptive")]
    if card.model == "pulse_nl":
        paths.append(("exact", "numpy", "exact"))
    reference = _population(card, "numpy", "adaptive", g0)
    reference.apply_pulses(n, rng=None)
    g_ref = reference.conductance()
    rows = []
    for label, backend, method in paths:
        pop = _population(card, backend, method, g0)
        seconds = _time(lambda pop=pop: pop.apply_pulses(n, rng=np.random.default_rng(2)), repeats)
        check = _population(card, backend, method, g0)
        check.apply_pulses(n, rng=None)
        err = float(np.max(np.abs(check.conductance() - g_ref))) / span
        rows.append((card_stem, label, count, seconds, count / seconds, err))

    pop = _population(card, "numpy", "adaptive", g0)
    g = pop.conductance().reshape(-1)
    flat_n = n.reshape(-1)
    idx = np.flatnonzero(flat_n)

    def table_update():
        g[idx] = table.apply(g[idx], flat_n[idx], np.random.default_rng(3))

    seconds = _time(table_update, repeats)
    g_nominal = pop.conductance().reshape(-1)
    g_table = g_nominal.copy()
    g_table[idx] = table.apply(g_nominal[idx], flat_n[idx], None)
    healthy = pop.healthy
    err = float(np.max(np.abs(g_table - g_ref.reshape(-1))[healthy])) / span
    rows.append((card_stem, "table", count, seconds, count / seconds, err))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--cards", nargs="+", default=["imprecise", "pulse_nl_default", "vteam_default",
                                                        "stanford_pku_default"])
    args = parser.parse_args()
    import verilogae  # noqa: PLC0415 - version for the record; the compiled path needs it anyway

    print(f"layer pair {SHAPE[0]}×{SHAPE[1]}×{SHAPE[2]} = {np.prod(SHAPE)} devices, {args.fraction:.0%} pulsed "
          f"by ±1 per update; median of {args.repeats}; numpy {np.__version__}, verilogae "
          f"{verilogae.__version__}, {os.cpu_count()} cores")
    print(f"{'card':<22}{'path':<10}{'devices':>9}{'time/update':>14}{'devices/s':>13}{'vs numpy':>10}"
          f"{'max |ΔG err|/window':>22}")
    for stem in args.cards:
        rows = bench(stem, args.repeats, args.fraction)
        base = rows[0][4]
        for card, label, count, seconds, rate, err in rows:
            print(f"{card:<22}{label:<10}{count:>9}{seconds * 1e3:>11.2f} ms{rate:>13.3g}{rate / base:>9.2f}×"
                  f"{err:>22.2e}")


if __name__ == "__main__":
    main()
