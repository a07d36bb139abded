"""``cosim report``: a study store → one self-contained HTML page, PNG/SVG figures, CSV tables.

Layout of the output folder::

    index.html          figures embedded as base64 PNG; no script, no external URL
    figures/<name>.png  and .svg, the same figures for slides and papers
    tables/points.csv   every point: status, config, scalar metrics, timing, error
    tables/ir_drop.csv  IR-drop metrics, mean and std over seeds per grid point
    tables/training.csv accuracy and pulses, mean and std over seeds (training studies)
    tables/failed.csv   failed points and their errors

Sections that need training metrics (see :mod:`cosim.study.figures`) are drawn from whatever
points carry them, and say "no training points in this study" otherwise. Every file is written
atomically, so an interrupted report never leaves a half-written file.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.errors import InputError
from cosim.io import atomic_write
from cosim.study import figures as F
from cosim.study.export import export_spec, selected_points
from cosim.study.store import Store
from cosim.study.tables import (
    META,
    config_fields,
    is_number,
    records,
    scalar_metrics,
    seed_stats,
    varying,
    write_csv,
)

log = logging.getLogger(__name__)
NO_TRAINING = "no training points in this study"


@dataclass(slots=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    html: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)  # name → [png, svg]
    tables: list[Path] = field(default_factory=list)
    heatmap_point: str | None = None


def _save(fig, out: Path, name: str, files: ReportFiles) -> str:
    """Write ``fig`` as PNG and SVG; return the PNG as a data URI for the page."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    svg = io.BytesIO()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    paths = [out / "figures" / f"{name}.png", out / "figures" / f"{name}.svg"]
    atomic_write(paths[0], png.getvalue(), mkdir=True)
    atomic_write(paths[1], svg.getvalue(), mkdir=True)
    files.figures[name] = paths
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()


def _img(uri: str, alt: str, name: str) -> str:
    return (f'<figure><img src="{uri}" alt="{html.escape(alt)}">'
            f'<figcaption>{html.escape(alt)} — <a href="figures/{name}.svg">SVG</a>, '
            f'<a href="figures/{name}.png">PNG</a></figcaption></figure>')


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], headers: Sequence[str] | None = None) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape("" if v is None else str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in (headers or columns))
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pick_heatmap(done: Sequence[Mapping[str, Any]], store: Store, point: str | None):
    if point is not None:
        row = store.get(point)
        rec = next((r for r in done if r["key"] == row.key), None)
        if rec is None or not isinstance(rec.get("loss_map"), list):
            raise InputError(f"point {point!r} has no cell-voltage loss map (status {row.status}); "
                             "pick a finished ir_drop point")
        return rec
    with_map = [r for r in done if isinstance(r.get("loss_map"), list)]
    if not with_map:
        return None
    return max(with_map, key=lambda r: (r.get("ir_err_max") or 0.0, r["key"]))


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}.note{color:#666;font-style:italic}.err td{text-align:left}code{font-size:.9em}"""


def write_report(store_path: str | Path, out_dir: str | Path, *, point: str | None = None) -> ReportFiles:
    """Write the report of the study in ``store_path`` into ``out_dir`` (created if needed).

    ``point`` (a key or an unambiguous prefix) picks the array of the cell-voltage heat map;
    by default the finished point with the largest worst-case IR-drop error.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    with Store(store_path, create=False) as store:
        rows = list(store.rows())
        meta = store.get_meta("study", {}) or {}
        export = export_spec(store)
        picked = [r.key for r in selected_points(store)] if export.netlists else []
        counts = store.counts()
        recs = records(rows)
        done = [r for r in recs if r["status"] == "done"]
        heat = _pick_heatmap(done, store, point)
    files = ReportFiles(html=out / "index.html", heatmap_point=heat["key"] if heat else None)
    parts: list[str] = []
    name = meta.get("name") or Path(store_path).stem

    # -- tables -------------------------------------------------------------------------------
    cfg = config_fields(recs)
    metrics = scalar_metrics(recs)
    tables = out / "tables"
    write_csv(tables / "points.csv", recs, [*META[:5], *cfg, "seed", *metrics, "error"])
    files.tables.append(tables / "points.csv")
    failed = [r for r in recs if r["status"] == "failed"]
    write_csv(tables / "failed.csv", failed, ["key", "attempts", *cfg, "seed", "error"])
    files.tables.append(tables / "failed.csv")
    grid = [f for f in varying(done, cfg)]

    # -- IR drop ------------------------------------------------------------------------------
    parts.append("<h2>IR drop</h2>")
    ir_pts = [r for r in done if is_number(r.get("ir_err_max"))]
    if ir_pts:
        ir_metrics = [m for m in ("ir_err_max", "ir_err_mean", "v_cell_min", "v_cell_mean", "solve_time")
                      if any(is_number(r.get(m)) for r in ir_pts)]
        stats = seed_stats(ir_pts, grid, ir_metrics)
        write_csv(tables / "ir_drop.csv", stats, [*grid, *(f"{m}_{s}" for m in ir_metrics for s in ("mean", "std")),
                                                  f"n_{ir_metrics[0]}"])
        files.tables.append(tables / "ir_drop.csv")
        parts.append("<p>Relative error of the output currents of a parasitic read against the ideal "
                     "product I = V·G over a batch of random inputs, and the voltage left across each cell "
                     "when every row is driven. Error bars: one standard deviation over seeds.</p>")
        for fname, fn, alt in (("ir_vs_size", F.ir_vs_size, "IR-drop error vs array size"),
                               ("ir_vs_wire", F.ir_vs_wire, "IR-drop error and lowest cell voltage vs wire resistance")):
            fig = fn(ir_pts)
            if fig is not None:
                parts.append(_img(_save(fig, out, fname, files), alt, fname))
        shown = [{**s, **{f"{m}_pct": 100 * s[f"{m}_mean"] for m in ir_metrics if m != "solve_time"}} for s in stats]
        pct = [m for m in ir_metrics if m != "solve_time"]
        parts.append(_table(shown, [*grid, *(f"{m}_pct" for m in pct), "solve_time_mean", f"n_{ir_metrics[0]}"],
                            [*grid, *(f"{m} (%)" for m in pct), "solve time (s)", "seeds"]))
    else:
        parts.append('<p class="note">no IR-drop points in this study</p>')

    parts.append("<h2>Cell-voltage loss map</h2>")
    if heat is not None:
        fig = F.loss_heatmap(heat)
        parts.append(_img(_save(fig, out, "loss_map", files), "cell-voltage loss across the array", "loss_map"))
        parts.append(f"<p>Point <code>{heat['key']}</code> (choose another with <code>--point KEY</code>); "
                     "each pixel is the mean over a block of cells when the array is larger than 64×64.</p>")
    else:
        parts.append('<p class="note">no point of this study carries a cell-voltage loss map</p>')

    # -- training -----------------------------------------------------------------------------
    parts.append("<h2>Training: accuracy vs array size</h2>")
    fig = F.accuracy_vs_size(done)
    if fig is not None:
        parts.append(_img(_save(fig, out, "accuracy_vs_size", files), "test accuracy vs array size", "accuracy_vs_size"))
    else:
        parts.append(f'<p class="note">{NO_TRAINING}</p>')
    parts.append("<h2>Training: pulses and convergence per optimizer</h2>")
    fig = F.pulses_and_convergence(done)
    if fig is not None:
        parts.append(_img(_save(fig, out, "pulses_convergence", files),
                          "programming pulses and convergence per optimizer", "pulses_convergence"))
    else:
        parts.append(f'<p class="note">{NO_TRAINING}</p>')
    train_metrics = [m for m in (F.ACC_IDEAL, F.ACC_PARASITIC, F.PULSES) if any(is_number(r.get(m)) for r in done)]
    if train_metrics:
        stats = seed_stats(done, grid, train_metrics)
        write_csv(tables / "training.csv", stats,
                  [*grid, *(f"{m}_{s}" for m in train_metrics for s in ("mean", "std")), f"n_{train_metrics[0]}"])
        files.tables.append(tables / "training.csv")

    # -- failures and provenance ----------------------------------------------------------------
    parts.append(f"<h2>Failed points ({len(failed)})</h2>")
    if failed:
        parts.append('<div class="err">' + _table(failed, ["key", *grid, "seed", "attempts", "error"]) + "</div>")
    else:
        parts.append('<p class="note">none</p>')
    if export.netlists:
        parts.append(f"<p>Export: {len(picked)} finished point(s) selected for {html.escape(export.dialect)} "
                     f"netlists (export.where = <code>{html.escape(json.dumps(dict(export.where)))}</code>): "
                     + ", ".join(f"<code>{k[:12]}</code>" for k in picked) + "</p>")
    versions = sorted({json.dumps(r.versions, sort_keys=True) for r in rows if r.versions})
    parts.append("<h2>Files and provenance</h2><ul>"
                 + "".join(f'<li><a href="tables/{p.name}">{p.name}</a></li>' for p in files.tables)
                 + "</ul>" + "".join(f"<p>versions: <code>{html.escape(v)}</code></p>" for v in versions))

    counts_text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    head = (f"<h1>Study {html.escape(name)}</h1><p>task <code>{html.escape(str(meta.get('task', '?')))}</code>; "
            f"{len(rows)} points ({html.escape(counts_text or 'none')}); varied: "
            f"{html.escape(', '.join(grid) or 'nothing')}; seeds {html.escape(str(meta.get('seeds', '?')))}; "
            f"store <code>{html.escape(str(store_path))}</code>; written "
            f"{dt.datetime.now().isoformat(timespec='seconds')}</p>")
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>cosim study '
            f"{html.escape(name)}</title><style>{CSS}</style></head><body>{head}{''.join(parts)}</body></html>\n")
    atomic_write(files.html, page, mkdir=True)
    log.info("report of %s written to %s", store_path, files.html)
    return files
