"""The report section of ``inference`` points: accuracy against tile size, wire resistance, ADC
resolution and programming scheme, and the per-tile IR-drop map of one deployed network.

Records are recognised by the metric ``prog_error_rms``. Each panel puts one swept field on the x
axis (only those the study varies) and names its series by :func:`legend_fields` of the other
swept fields; error bars are one sample standard deviation over the seeds.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from cosim.study.figures import _figure, fmt_field
from cosim.study.tables import config_fields, is_number, legend_fields, seed_stats, varying

PROGRAMMING = "_programming"
AXES = (("array.rows", "tile size N (N×N cells)"), ("array.r_row", "wire resistance r_row (Ω per segment)"),
        ("converters.adc_bits", "ADC resolution (bits; 'ideal' = none)"), (PROGRAMMING, "programming (method / scheme)"))


def inference_records(recs: Sequence[Mapping[str, Any]]) -> list[dict]:
    out = []
    for r in recs:
        if is_number(r.get("prog_error_rms")) and is_number(r.get("accuracy")):
            out.append({**r, PROGRAMMING: f"{r.get('deploy.method', 'write-verify')} / {r.get('deploy.scheme', 'direct')}"})
    return out


def _x_positions(values: list) -> tuple[dict, list[str], bool]:
    numeric = all(is_number(v) for v in values)
    if numeric:
        vs = sorted(set(values))
        return {v: float(v) for v in vs}, [f"{v:g}" for v in vs], True
    vs = sorted(set(values), key=lambda v: (v is not None, str(v)))
    return {v: float(k) for k, v in enumerate(vs)}, ["ideal" if v is None else str(v) for v in vs], False


def _fmt(field: str, value: Any) -> str:
    return str(value) if field == PROGRAMMING else fmt_field(field, value)


def _hold(pts: list[dict], fields: Sequence[str]) -> tuple[list[dict], dict[str, Any]]:
    """The points with each of ``fields`` at its last value (largest number, e.g. the widest ADC,
    the largest tile, the strongest wires), so a panel shows one axis at a time."""
    held = {}
    for f in fields:
        values = {r.get(f) for r in pts}
        if len(values) > 1:
            nums = [v for v in values if is_number(v)]
            held[f] = max(nums) if len(nums) == len(values) else sorted(values, key=str)[-1]
            pts = [r for r in pts if r.get(f) == held[f]]
    return pts, held


def accuracy_panels(recs: Sequence[Mapping[str, Any]]):
    """One panel per swept axis among tile size, wire resistance, ADC bits and programming."""
    pts = inference_records(recs)
    fields = [f for f in varying(pts, [*config_fields(pts), PROGRAMMING])
              if f not in ("seed", "deploy.seed", "deploy.method", "deploy.scheme")]
    axes = [(f, label) for f, label in AXES if f in fields]
    if not pts or not axes:
        return None
    fig, panels = _figure(len(axes), width=5.2)
    for ax, (xf, label) in zip(panels, axes):
        given = [xf, "array.cols"] if xf == "array.rows" else [xf]
        sub, held = _hold(pts, [f for f, _ in axes if f not in given and f != PROGRAMMING])
        series = legend_fields(sub, [f for f in fields if f not in given and f not in held], given=given)
        stats = seed_stats(sub, [xf, *series], ["accuracy"])
        pos, ticks, numeric = _x_positions([r[xf] for r in stats])
        groups: dict[tuple, list] = {}
        for row in stats:
            groups.setdefault(tuple(row[f] for f in series), []).append(row)
        for k, (skey, rows) in enumerate(groups.items()):
            rows = sorted(rows, key=lambda r: pos[r[xf]])
            x = [pos[r[xf]] for r in rows]
            ax.errorbar(x, [100 * r["accuracy_mean"] for r in rows], yerr=[100 * r["accuracy_std"] for r in rows],
                        marker="o", capsize=3, color=f"C{k % 10}",
                        label=", ".join(_fmt(f, v) for f, v in zip(series, skey)) or None)
        if numeric and xf == "array.rows":
            ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(pos.values()), ticks, fontsize="small", rotation=0 if numeric else 15)
        ax.minorticks_off()
        ax.set_xlabel(label)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, alpha=0.3)
        if held:
            ax.set_title("at " + ", ".join(_fmt(f, v) for f, v in held.items()), fontsize="medium")
        if series:
            ax.legend(fontsize="small")
    fig.suptitle("deployed network: test accuracy (mean ± std over seeds); other swept axes held at their last value")
    return fig


def irdrop_map(rec: Mapping[str, Any]):
    """Per weight layer, the grid of tiles coloured by the IR-drop error of their forward read."""
    tiles = rec.get("tile_irdrop")
    if not isinstance(tiles, list) or not tiles:
        return None
    layers = sorted({int(t[0]) for t in tiles})
    fig, axes = _figure(len(layers), width=3.6)
    vmax = max(100 * t[3] for t in tiles) or 1.0
    im = None
    for ax, li in zip(axes, layers):
        sel = [t for t in tiles if int(t[0]) == li]
        grid = np.zeros((max(int(t[1]) for t in sel) + 1, max(int(t[2]) for t in sel) + 1))
        for _, bi, bj, e in sel:
            grid[int(bi), int(bj)] = max(grid[int(bi), int(bj)], 100 * e)
        im = ax.imshow(grid, cmap="magma", vmin=0, vmax=vmax, aspect="auto")
        ax.set_title(f"layer {li}: {grid.shape[0]}×{grid.shape[1]} tile pairs", fontsize="medium")
        ax.set_xticks(range(grid.shape[1]))
        ax.set_yticks(range(grid.shape[0]))
        ax.set_xlabel("column block")
        ax.set_ylabel("row block")
    fig.colorbar(im, ax=axes, label="IR-drop error (% of largest ideal current)")
    wires = ", ".join(fmt_field(f, rec[f]) for f in ("array.rows", "array.r_row") if f in rec)
    fig.suptitle(f"per-tile IR drop, point {rec['key'][:12]} ({wires})", fontsize="medium")
    return fig


def report(ctx) -> str:
    """The report's inference section (a :class:`~cosim.study.report.ReportContext` hook), with
    tables/inference.csv (mean and std over seeds per grid point)."""
    parts = section(ctx.done, ctx.figure)
    inf = inference_records(ctx.done)
    if inf:
        keep = [m for m in ("accuracy", "accuracy_ideal_reads", "float_accuracy", "prog_error_rms", "prog_time_s",
                            "prog_energy_J", "irdrop_max") if any(is_number(r.get(m)) for r in inf)]
        stats = seed_stats(inf, ctx.grid, keep)
        ctx.csv("inference", stats, [*ctx.grid, *(f"{m}_{s}" for m in keep for s in ("mean", "std")), f"n_{keep[0]}"])
    return "".join(parts)


def section(recs: Sequence[Mapping[str, Any]], show: Callable[[Any, str, str], str]) -> list[str]:
    """HTML parts of the inference section; ``show(fig, name, alt)`` saves a figure and returns
    its HTML. Empty when the study has no inference points."""
    pts = inference_records(recs)
    if not pts:
        return []
    parts = ["<h2>Inference: a trained network deployed ex situ</h2>",
             "<p>Accuracy of the deployed network through the configured reads (DAC, circuit, ADC) "
             "against each swept axis; legends name only what tells the series apart.</p>"]
    fig = accuracy_panels(pts)
    if fig is not None:
        parts.append(show(fig, "inference_accuracy", "test accuracy vs tile size, wires, ADC bits, programming"))
    worst = max(pts, key=lambda r: r.get("irdrop_max") or 0.0)
    fig = irdrop_map(worst)
    if fig is not None:
        parts.append(show(fig, "inference_irdrop_map", "per-tile IR-drop error of the deployed network"))
        parts.append(f"<p>The point with the largest IR drop: <code>{html.escape(worst['key'])}</code>.</p>")
    return parts
