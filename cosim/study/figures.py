"""The report's figures, drawn with matplotlib's object API (no pyplot state, Agg-safe).

Every function takes flat records (:func:`cosim.study.tables.records`) and returns a
``matplotlib.figure.Figure``, or None when the study holds nothing to draw. Error bars are one
sample standard deviation over the seeds of a grid point. Axes carry units.

Training points are recognised by their metrics (what the ``train`` task must return):
``accuracy_ideal`` and ``accuracy_parasitic`` (test accuracy as a fraction 0–1, read through the
ideal and the parasitic circuit), ``pulses`` (programming pulses the run applied, a count) and
``convergence`` (test accuracy per epoch, fractions 0–1). Their device is named by
``device.card`` (file stem), ``device.model`` or ``device.name``; their optimizer by
``optimizer.name``, ``optimizer.kind`` or ``optimizer.type``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosim.study.tables import config_fields, is_number, legend_fields, seed_stats, varying

ACC_IDEAL, ACC_PARASITIC, PULSES, CONVERGENCE = "accuracy_ideal", "accuracy_parasitic", "pulses", "convergence"
SIZE_FIELDS = ("array.rows", "array.cols", "array.size")
SYMBOL = {"ohm": "Ω", "S": "S", "V": "V", "s": "s", "A": "A"}
FIELD_UNIT = {"r_row": "Ω", "r_col": "Ω", "r_driver": "Ω", "r_sense": "Ω", "r_access": "Ω",
              "g_min": "S", "g_max": "S", "v_read": "V"}


def fmt_field(name: str, value: Any) -> str:
    """``array.r_row``, 2.5 → ``r_row=2.5 Ω``."""
    leaf = name.rsplit(".", 1)[-1]
    unit = FIELD_UNIT.get(leaf, "")
    text = f"{value:g}" if is_number(value) else Path(str(value)).stem if leaf == "card" else str(value)
    return f"{leaf}={text}{' ' + unit if unit else ''}"


def device_label(rec: Mapping[str, Any]) -> str:
    if rec.get("device.card"):
        return Path(str(rec["device.card"])).stem
    return str(rec.get("device.model") or rec.get("device.name") or "device")


def optimizer_label(rec: Mapping[str, Any]) -> str:
    return str(rec.get("optimizer.name") or rec.get("optimizer.kind") or rec.get("optimizer.type") or "optimizer")


def _figure(ncols: int = 1, width: float = 6.4):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, 4.2), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _size_axis(ax, xs: Sequence[float], square: bool) -> None:
    ax.set_xscale("log", base=2)
    ticks = sorted(set(xs))
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("array size N (N×N cells)" if square else "array cells N·M (count)")
    ax.grid(True, alpha=0.3)


def _size(rec: Mapping[str, Any]) -> tuple[float | None, bool]:
    rows, cols = rec.get("array.rows", rec.get("array.size")), rec.get("array.cols", rec.get("array.size"))
    if not (is_number(rows) and is_number(cols)):
        return None, True
    return (float(rows), True) if rows == cols else (float(rows * cols), False)


def _series(recs: Sequence[Mapping[str, Any]], x_field: str, exclude: Sequence[str]) -> list[str]:
    """The fields naming the series of a figure whose x axis is ``x_field``: only those that tell
    series apart once x is known (:func:`legend_fields`); ``exclude`` are shown by the x axis."""
    fields = [f for f in varying(recs, config_fields(recs)) if f != x_field and f not in exclude and f != "seed"]
    return legend_fields(recs, fields, given=[x_field, *exclude])


def _plot_stats(ax, stats, x_field: str, series: Sequence[str], metric: str, scale: float,
                label: str | None = None, **kw) -> int:
    lines = 0
    by_series: dict[tuple, list] = {}
    for row in stats:
        by_series.setdefault(tuple(row[f] for f in series), []).append(row)
    for skey, rows in by_series.items():
        rows = [r for r in rows if r[f"n_{metric}"] > 0]
        if not rows:
            continue
        x = np.array([r[x_field] for r in rows], dtype=float)
        order = np.argsort(x)
        y = np.array([r[f"{metric}_mean"] for r in rows])[order] * scale
        e = np.array([r[f"{metric}_std"] for r in rows])[order] * scale
        text = label or ", ".join(fmt_field(f, v) for f, v in zip(series, skey)) or None
        ax.errorbar(x[order], y, yerr=e, marker="o", capsize=3, label=text, **kw)
        lines += 1
    return lines


def _with_size(recs, metric: str) -> list[dict]:
    out = []
    for r in recs:
        x, square = _size(r)
        if x is not None and is_number(r.get(metric)):
            out.append({**r, "_size": x, "_square": square})
    return out


def ir_vs_size(recs: Sequence[Mapping[str, Any]]):
    """Worst-case and mean relative IR-drop error (%) vs array size, a line per wire setting."""
    pts = _with_size(recs, "ir_err_max")
    if not pts:
        return None
    series = _series(pts, "_size", SIZE_FIELDS)
    stats = seed_stats(pts, ["_size", *series], ["ir_err_max", "ir_err_mean"])
    fig, (a1, a2) = _figure(2)
    _plot_stats(a1, stats, "_size", series, "ir_err_max", 100.0)
    _plot_stats(a2, stats, "_size", series, "ir_err_mean", 100.0)
    square = all(p["_square"] for p in pts)
    for ax, what in ((a1, "worst-case"), (a2, "mean")):
        _size_axis(ax, [p["_size"] for p in pts], square)
        ax.set_ylabel(f"{what} IR-drop error (% of ideal current)")
    a1.set_title("worst-case relative output-current error")
    a2.set_title("mean relative output-current error")
    if series:
        a2.legend(fontsize="small")
    return fig


def ir_vs_wire(recs: Sequence[Mapping[str, Any]]):
    """Worst-case IR-drop error and lowest cell voltage vs wire resistance, a line per size."""
    pts = [r for r in _with_size(recs, "ir_err_max") if is_number(r.get("array.r_row"))]
    if len({r["array.r_row"] for r in pts}) < 2:
        return None
    series = _series(pts, "array.r_row", ())
    stats = seed_stats(pts, ["array.r_row", *series], ["ir_err_max", "v_cell_min"])
    fig, (a1, a2) = _figure(2)
    _plot_stats(a1, stats, "array.r_row", series, "ir_err_max", 100.0)
    _plot_stats(a2, stats, "array.r_row", series, "v_cell_min", 100.0)
    for ax in (a1, a2):
        ax.set_xlabel("wire resistance r_row (Ω per segment)")
        ax.grid(True, alpha=0.3)
    a1.set_ylabel("worst-case IR-drop error (% of ideal current)")
    a2.set_ylabel("lowest cell voltage (% of applied voltage)")
    a1.set_title("worst-case error vs wire resistance")
    a2.set_title("worst cell in an all-rows-driven read")
    if series:
        a1.legend(fontsize="small")
    return fig


def loss_heatmap(rec: Mapping[str, Any]):
    """Cell-voltage loss (% of applied) across one array, from its ``loss_map`` metric."""
    lm = rec.get("loss_map")
    if not isinstance(lm, list) or not lm:
        return None
    loss = np.array([[np.nan if v is None else v for v in row] for row in lm], dtype=float) * 100.0
    rows = rec.get("array.rows", loss.shape[0])
    cols = rec.get("array.cols", loss.shape[1])
    fig, (ax,) = _figure(1, width=6.0)
    im = ax.imshow(loss, cmap="viridis", interpolation="nearest", aspect="auto",
                   extent=(-0.5, cols - 0.5, rows - 0.5, -0.5))
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("cell-voltage loss (% of applied voltage)")
    ax.set_xlabel("column j (bit line; drivers at j = 0)")
    ax.set_ylabel("row i (word line; sense amplifiers below the last row)")
    wires = ", ".join(fmt_field(f, rec[f]) for f in ("array.r_row", "array.r_col") if f in rec)
    ax.set_title(f"{rows}×{cols}, {wires}, seed {rec.get('seed')}\npoint {rec['key'][:12]}", fontsize="medium")
    return fig


# Fields the training figures already show: the size axis and the device and optimizer labels.
# Everything else (an optimizer's own options, its learning rate, the engine, the wires) names a
# series only when it tells series apart beyond those (:func:`legend_fields`).
_SHOWN = ("array.rows", "array.cols", "array.size", "device.card", "device.model", "device.name",
          "optimizer.name", "optimizer.kind", "optimizer.type")


def _variant_fields(recs) -> list[str]:
    fields = [f for f in varying(recs, config_fields(recs)) if f not in ("seed", "train.seed")]
    return legend_fields(recs, fields, given=[f for f in _SHOWN if any(f in r for r in recs)])


def _training(recs, metric: str) -> list[dict]:
    """Training records with the metric, labelled: size, device, optimizer, and ``_variant``
    (the other varying fields, e.g. the wire resistance), so that seeds alone are averaged."""
    out = []
    keep = [r for r in recs
            if is_number(r.get(metric)) or (metric == CONVERGENCE and isinstance(r.get(metric), list) and r[metric])]
    fields = _variant_fields(keep)
    # a device every run shares tells no series apart: the figures' titles name it instead
    one_device = len({device_label(r) for r in keep}) == 1
    for r in keep:
        x, square = _size(r)
        out.append({**r, "_size": x, "_square": square, "_device": "" if one_device else device_label(r),
                    "_optimizer": optimizer_label(r), "_variant": ", ".join(fmt_field(f, r.get(f)) for f in fields)})
    return out


def _device_title(recs) -> str:
    devices = {device_label(r) for r in recs}
    return f" — device {devices.pop()}" if len(devices) == 1 else ""


def _label(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def accuracy_vs_size(recs: Sequence[Mapping[str, Any]]):
    """Test accuracy (%) with ideal (solid) and parasitic (dashed) reads vs array size."""
    pts = [r for r in _training(recs, ACC_IDEAL) + _training(recs, ACC_PARASITIC) if r["_size"] is not None]
    pts = list({r["key"]: r for r in pts}.values())
    if not pts:
        return None
    stats = seed_stats(pts, ["_size", "_device", "_optimizer", "_variant"], [ACC_IDEAL, ACC_PARASITIC])
    fig, (ax,) = _figure(1, width=7.0)
    colors = {}
    for row in stats:
        colors.setdefault((row["_device"], row["_optimizer"], row["_variant"]), f"C{len(colors) % 10}")
    for (dev, opt, var), color in colors.items():
        sub = [r for r in stats if (r["_device"], r["_optimizer"], r["_variant"]) == (dev, opt, var)]
        for metric, style, what in ((ACC_IDEAL, "-", "ideal"), (ACC_PARASITIC, "--", "parasitic")):
            _plot_stats(ax, sub, "_size", [], metric, 100.0, label=_label(dev, opt, var, f"{what} read"),
                        color=color, linestyle=style)
    _size_axis(ax, [p["_size"] for p in pts], all(p["_square"] for p in pts))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs array size (solid: ideal read, dashed: parasitic read)" + _device_title(pts),
                 fontsize="medium")
    ax.legend(fontsize="small")
    return fig


def _size_text(size: float | None, square: bool) -> str:
    if size is None:
        return "all sizes"
    return f"N={size:g}" if square else f"{size:g} cells"


def pulses_and_convergence(recs: Sequence[Mapping[str, Any]]):
    """Programming pulses per optimizer and array size (bars, ± std over seeds), and the mean
    convergence curve of each optimizer at the largest array size (± std over seeds)."""
    pulses = _training(recs, PULSES)
    curves = _training(recs, CONVERGENCE)
    if not pulses and not curves:
        return None
    fig, axes = _figure(2 if pulses and curves else 1)
    if pulses:
        ax = axes[0]
        square = all(r["_square"] for r in pulses)
        stats = seed_stats(pulses, ["_device", "_optimizer", "_variant", "_size"], [PULSES])
        combos = list(dict.fromkeys((r["_device"], r["_optimizer"], r["_variant"]) for r in stats))
        sizes = list(dict.fromkeys(r["_size"] for r in stats))
        width = 0.8 / len(sizes)
        for k, size in enumerate(sizes):
            sub = {(r["_device"], r["_optimizer"], r["_variant"]): r for r in stats if r["_size"] == size}
            xs = [c + (k - (len(sizes) - 1) / 2) * width for c, combo in enumerate(combos) if combo in sub]
            rows = [sub[combo] for combo in combos if combo in sub]
            ax.bar(xs, [r[f"{PULSES}_mean"] for r in rows], width=width * 0.95,
                   yerr=[r[f"{PULSES}_std"] for r in rows], capsize=3, color=f"C{k % 10}",
                   label=_size_text(size, square))
        ax.set_xticks(range(len(combos)), [_label(opt, dev) + (f"\n{var}" if var else "") for dev, opt, var in combos],
                      fontsize="small")
        ax.set_ylabel("programming pulses per training run (count)")
        ax.set_title("training cost per optimizer" + _device_title(pulses), fontsize="medium")
        ax.grid(True, axis="y", alpha=0.3)
        if len(sizes) > 1:
            ax.legend(fontsize="small", title="array size")
    if curves:
        ax = axes[-1]
        sized = [r["_size"] for r in curves if r["_size"] is not None]
        largest = max(sized) if sized else None
        groups: dict[tuple, list] = {}
        for r in curves:
            if r["_size"] == largest:
                groups.setdefault((r["_device"], r["_optimizer"], r["_variant"]), []).append(
                    np.array([np.nan if v is None else v for v in r[CONVERGENCE]], dtype=float))
        for k, ((dev, opt, var), arrs) in enumerate(sorted(groups.items())):
            n = min(len(a) for a in arrs)
            stack = np.stack([a[:n] for a in arrs]) * 100.0
            epochs = np.arange(1, n + 1)
            mean = np.nanmean(stack, axis=0)
            ax.plot(epochs, mean, color=f"C{k % 10}", marker=".", label=f"{_label(opt, dev, var)} ({len(arrs)} run{'s' * (len(arrs) != 1)})")
            if len(arrs) > 1:
                sd = np.nanstd(stack, axis=0, ddof=1)
                ax.fill_between(epochs, mean - sd, mean + sd, color=f"C{k % 10}", alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (%)")
        where = _size_text(largest, all(r["_square"] for r in curves))
        ax.set_title(f"convergence per optimizer at {where} (mean ± std over seeds)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize="small")
    return fig
