"""Cost of one programming step through the circuit, relative to one forward read of the same array.

Arrays are n×n (64 and 128 by default), 1 Ω wire segments, 1 Ω drivers and sense resistors (as
bench_engines.py), devices from a card (default ``imprecise``: pulse_nl, 1–100 µS, closed-form
pulses; ``--card vteam_default`` exercises the adaptive integrator), seeded, started at random
conductances in their windows. The nodal engine runs with ``--method`` (default auto, which
picks its line-block PCG at these sizes; ``direct`` is SuperLU).

Measured, each the median of ``--repeats`` runs in this process:

- read (reuse): ``Prepared.solve`` of one input vector on an already factorised circuit (what a
  tile's read costs while the conductances do not change);
- read (fresh): ``build_circuit`` + ``prepare`` + ``solve`` (what the first read after any
  update costs: the conductances changed, so the factorisation is redone);
- program step: one pulse of :func:`program_cells` on one cell with the V/2 scheme (build,
  factorise, solve with node voltages, chord check, device update for every device that moves),
  per pulse of a ``--pulses``-pulse write; also split into circuit and device time;
- the same with ``coupling="heun"`` (two solves and a trial integration per pulse), and one
  row-parallel step writing a whole row.

    python benchmarks/bench_program.py [--sizes 64 128] [--card imprecise] [--repeats 5] [--pulses 8]
                                       [--method auto|direct|pcg]

``--nonlinear`` instead programs a non-ohmic card (default ``stanford_pku_default``, sinh I–V)
both ways, interleaved, from the same start: the exact Newton read per pulse
(``iv_solver="newton"``, the default) against the chord-conductance fixed point
(``iv_solver="chord"``, Anderson-mixed, default cap: the plain fixed point did not settle within
50 solves at 16×16 from random states), and prints per pulse the circuit solves, the linear solves behind them,
the solve time (median of ``--repeats``), their ratios and the largest relative difference of the
delivered voltages and end conductances:

    python benchmarks/bench_program.py --nonlinear [--sizes 16 32 64] [--card stanford_pku_default]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def population(card, n: int):
    from cosim.devices import DevicePopulation

    pop = DevicePopulation.create(card, (n, n), seed=n)
    lo, hi = pop.window()
    pop.set_conductance(lo + np.random.default_rng(n).random((n, n)) * (hi - lo))
    return pop


def bench(n: int, card, repeats: int, pulses: int, method: str = "auto") -> dict:
    from cosim.array.program import ProgramOptions, program_cells
    from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, get_engine

    pop = population(card, n)
    spec = CrossbarSpec(conductances=pop.conductance(), r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0)
    engine, opts = get_engine("nodal"), SolverOptions(method=method)
    v = np.random.default_rng(0).uniform(0.0, 0.3, (1, n))
    prepared = engine.prepare(build_circuit(spec), opts)
    out = {"n": n, "method": prepared.solve(v).info.get("method", "?")}
    out["read_reuse"] = median_time(lambda: prepared.solve(v), repeats)
    out["read_fresh"] = median_time(lambda: engine.prepare(build_circuit(spec), opts).solve(v), repeats)

    target = np.zeros((n, n), bool)
    target[n // 2, n - 1] = True  # far column of a middle row: IR drop and real work
    results = {}
    for label, po in (("frozen", ProgramOptions(solver=opts, compare_direct=False)),
                      ("heun", ProgramOptions(solver=opts, compare_direct=False, coupling="heun"))):
        steps = []
        for _ in range(repeats):
            p = population(card, n)
            t0 = time.perf_counter()
            rep = program_cells(spec, p, target, scheme="v/2", n_pulses=pulses, options=po)
            steps.append(((time.perf_counter() - t0) / rep.n_steps, rep.time_solve / rep.n_steps,
                          rep.time_devices / rep.n_steps, rep.n_solves / rep.n_steps))
        results[label] = tuple(statistics.median(s[k] for s in steps) for k in range(4))
    row = np.zeros((n, n), bool)
    row[n // 2, :] = True
    rows = []
    for _ in range(repeats):
        p = population(card, n)
        t0 = time.perf_counter()
        rep = program_cells(spec, p, row, scheme="row-parallel", options=ProgramOptions(solver=opts, compare_direct=False))
        rows.append((time.perf_counter() - t0) / rep.n_steps)
    out["steps"] = results
    out["row_parallel"] = statistics.median(rows)
    return out


def bench_iv(n: int, card, repeats: int, pulses: int) -> dict:
    """Newton vs chord programming of ``pulses`` SET pulses on three cells of an n×n array."""
    from cosim.array.program import ProgramOptions, program_cells
    from cosim.circuit import CrossbarSpec

    spec = CrossbarSpec(conductances=np.zeros((n, n)), r_row=1.0, r_col=1.0, r_driver=1.0, r_sense=1.0)
    targets = np.zeros((n, n), bool)
    targets[0, n - 1] = targets[n // 2, n // 2] = targets[n - 1, 0] = True
    runs = {"newton": [], "chord": []}
    for _ in range(repeats):
        for how in runs:  # interleaved: both see the same machine load
            p = population(card, n)
            rep = program_cells(spec, p, targets, scheme="v/2", n_pulses=pulses,
                                options=ProgramOptions(iv_solver=how, compare_direct=False))
            runs[how].append(rep)
    new, old = runs["newton"][0], runs["chord"][0]
    with np.errstate(invalid="ignore", divide="ignore"):
        dv = np.nanmax(np.abs(new.v_delivered / old.v_delivered - 1))
        dg = np.nanmax(np.abs(new.g_after / old.g_after - 1))
    per = lambda how, k: statistics.median(getattr(r, k) / r.n_steps for r in runs[how])  # noqa: E731
    return {"n": n, "dv": dv, "dg": dg,
            **{f"{how}_{k}": per(how, k) for how in runs for k in ("n_solves", "n_linear", "time_solve")}}


def main_nonlinear(args) -> int:
    from cosim.devices import load_card
    from cosim.devices.paths import models_dir

    if args.method != "auto":  # the Newton read chooses its own linear method
        print("error: --method applies to the ohmic benchmark, not to --nonlinear", file=sys.stderr)
        return 2
    name = args.card or "stanford_pku_default"
    card = load_card(models_dir() / "cards" / f"{name}.toml")
    print(f"card {name} ({card.model}); 1 Ω segments, drivers and sense; V/2, {args.pulses} SET pulses on 3 "
          f"cells; per pulse; time = median of {args.repeats} interleaved runs (shared machine)")
    print(f"{'n':>5} {'newton solves':>13} {'linear':>7} {'ms':>8} {'chord solves':>13} {'linear':>7} {'ms':>8} "
          f"{'linear ratio':>13} {'time ratio':>11} {'max dV/V':>9} {'max dG/G':>9}")
    for n in args.sizes:
        r = bench_iv(n, card, args.repeats, args.pulses)
        print(f"{n:>5} {r['newton_n_solves']:>13.2f} {r['newton_n_linear']:>7.2f} {1e3 * r['newton_time_solve']:>8.2f} "
              f"{r['chord_n_solves']:>13.2f} {r['chord_n_linear']:>7.2f} {1e3 * r['chord_time_solve']:>8.2f} "
              f"{r['chord_n_linear'] / r['newton_n_linear']:>13.2f} {r['chord_time_solve'] / r['newton_time_solve']:>11.2f} "
              f"{r['dv']:>9.1e} {r['dg']:>9.1e}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--card", help="card name in models/cards (default imprecise; stanford_pku_default with --nonlinear)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pulses", type=int, default=8, help="pulses per programming run (default 8)")
    ap.add_argument("--method", default="auto", choices=("auto", "direct", "pcg"),
                    help="nodal method for reads and programming solves (default auto)")
    ap.add_argument("--nonlinear", action="store_true",
                    help="Newton vs chord programming of a non-ohmic card (see the module docstring)")
    args = ap.parse_args()
    if args.nonlinear:
        return main_nonlinear(args)

    from cosim.devices import load_card
    from cosim.devices.paths import models_dir

    args.card = args.card or "imprecise"
    card = load_card(models_dir() / "cards" / f"{args.card}.toml")
    print(f"card {args.card} ({card.model}); 1 Ω segments, drivers and sense; median of {args.repeats}; "
          f"times per pulse (one programming step) in ms")
    head = (f"{'n':>5} {'solver':>7} {'read reuse':>11} {'read fresh':>11} {'step':>9} {'circuit':>8} "
            f"{'devices':>8} {'step/reuse':>11} {'step/fresh':>11} {'heun step':>10} {'heun/fresh':>11} "
            f"{'row-par step':>13}")
    print(head)
    for n in args.sizes:
        r = bench(n, card, args.repeats, args.pulses, args.method)
        fz, hn = r["steps"]["frozen"], r["steps"]["heun"]
        ms = 1e3
        print(f"{n:>5} {r['method']:>7} {r['read_reuse'] * ms:>11.3f} {r['read_fresh'] * ms:>11.2f} "
              f"{fz[0] * ms:>9.2f} {fz[1] * ms:>8.2f} {fz[2] * ms:>8.2f} {fz[0] / r['read_reuse']:>11.1f} "
              f"{fz[0] / r['read_fresh']:>11.2f} {hn[0] * ms:>10.2f} {hn[0] / r['read_fresh']:>11.2f} "
              f"{r['row_parallel'] * ms:>13.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
