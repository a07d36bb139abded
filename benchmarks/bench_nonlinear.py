"""Exact nonlinear reads (Newton on the line blocks) against the ohmic read and against ngspice.

Part 1, nonlinear vs ohmic (issue 12 target: a 1024×1024 Stanford–PKU read with 1 Ω segments
within 5× the ohmic read of the same array): n×n arrays, 1 Ω wire segments, drivers and sense
resistors; Stanford–PKU cells (models/cards/stanford_pku_default.toml) at gaps drawn uniformly
in [g_min, g_max] (seeded), read with one input vector of 0–0.3 V. The ohmic read is the nodal
engine's (``method="pcg"``, prepared per call) on the cells' chord conductance at 0.1 V; the
nonlinear read is ``read_nonlinear`` (ohmic start with the small-signal conductance, then
Newton). Both certified to ``rtol`` 1e-9. Printed: median times, the ratio, Newton steps, total
PCG iterations and how far the nonlinear outputs sit from the ohmic chord read (the error a
linearised simulator makes).

Part 2, nonlinear vs ngspice (target: a 128×128 1S1R read with every row driven ≥ 500× faster
than ngspice on the exported netlist, same answer to 1e-6): the same arrays with the selector of
models/cards/cells/selector_default.toml in series, ngspice on the deck of
``cosim.circuit.netlist_cells`` (one ``ngspice -b`` op, process start included) against
``read_nonlinear``. Sizes up to 64 by default; 128 with ``--with-128`` (ngspice takes minutes).

The machine may be shared: ratios are within one run, medians of ``--repeats``.

    python benchmarks/bench_nonlinear.py [--sizes 64 128 256 512] [--with-1024] [--spice-sizes 16 32 64]
                                         [--with-128] [--repeats 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from bench_scale import median_time  # a sibling script (benchmarks/ is on sys.path)

from cosim.array.cells import device_law, load_access_card
from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, read
from cosim.circuit.cells import SeriesCell
from cosim.circuit.netlist_cells import ngspice_read
from cosim.circuit.solvers import kernels
from cosim.circuit.solvers.newton import read_nonlinear
from cosim.devices import get_model, load_card
from cosim.devices.paths import models_dir


def arrays(n: int, seed: int = 0):
    card = load_card(models_dir() / "cards" / "stanford_pku_default.toml")
    p = dict(card.params)
    rng = np.random.default_rng(seed)
    gaps = rng.uniform(p["g_min"], p["g_max"], (n, n))
    model = get_model("stanford_pku")
    law = device_law(model, gaps, p)
    spec = CrossbarSpec(conductances=model.conductance(gaps, 0.1, p), r_row=1.0, r_col=1.0, r_driver=1.0,
                        r_sense=1.0)
    x = rng.uniform(0.0, 0.3, (1, n))
    return spec, law, x


def part1(sizes, repeats):
    print("part 1: Stanford-PKU cells, nonlinear (Newton) vs ohmic read, 1 Ω segments, B = 1")
    print(f"{'n':>6} {'ohmic s':>9} {'newton s':>9} {'ratio':>6} {'steps':>5} {'pcg its':>7} {'chord err':>9}")
    opts = SolverOptions(method="pcg", rtol=1e-9)
    for n in sizes:
        spec, law, x = arrays(n)
        t_lin, lin = median_time(lambda: read(spec, x, engine="nodal", options=opts), repeats)  # noqa: B023
        t_nl, nl = median_time(lambda: read_nonlinear(spec, law, x, opts), repeats)  # noqa: B023
        err = float(np.abs(nl.currents - lin.currents).max() / np.abs(nl.currents).max())
        print(f"{n:>6} {t_lin:>9.3f} {t_nl:>9.3f} {t_nl / t_lin:>6.2f} {nl.info['newton_steps']:>5} "
              f"{nl.info['iterations']:>7} {err:>9.2e}")


def part2(sizes, repeats):
    print("part 2: 1S1R (Stanford-PKU + sinh selector), every row driven: read_nonlinear vs ngspice -b")
    print(f"{'n':>6} {'cosim s':>9} {'ngspice s':>10} {'speed-up':>9} {'rel err':>9}")
    sel = load_access_card("selector_default")
    opts = SolverOptions(rtol=1e-9)
    for n in sizes:
        spec, law, x = arrays(n)
        cell = SeriesCell(law, sel.law(np.ones(n, bool), (n, n)))
        t_co, co = median_time(lambda: read_nonlinear(spec, cell, x, opts), repeats)  # noqa: B023
        t_sp, sp = median_time(lambda: ngspice_read(build_circuit(spec), cell, x), 1)  # noqa: B023
        err = float(np.abs(co.currents - sp).max() / np.abs(sp).max())
        print(f"{n:>6} {t_co:>9.3f} {t_sp:>10.2f} {t_sp / t_co:>9.0f} {err:>9.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--with-1024", action="store_true")
    ap.add_argument("--spice-sizes", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--with-128", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    kernels.load()
    part1(a.sizes + ([1024] if a.with_1024 else []), a.repeats)
    part2(a.spice_sizes + ([128] if a.with_128 else []), a.repeats)


if __name__ == "__main__":
    main()
