"""``cosim report``: a study store → one self-contained HTML page, PNG/SVG figures, CSV tables.

Layout of the output folder::

    index.html          figures embedded as base64 PNG; no script, no external URL
    figures/<name>.png  and .svg, the same figures for slides and papers
    tables/points.csv   every point: status, config, scalar metrics, timing, error
    tables/failed.csv   failed points and their errors
    tables/<task>.csv   what each task's section adds (ir_drop.csv, training.csv: mean and std
                        over seeds per grid point)

The page is built in named steps: gather the store, the common tables, one section per task
that registered a ``report`` hook (in registration order: :func:`cosim.study.irdrop.report`,
:func:`cosim.study.training.report`), failures and provenance. A section is drawn from whatever
points carry its metrics, so a task's section may say "no … points in this study". Every file
is written atomically, so an interrupted report never leaves a half-written file.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cosim.errors import InputError
from cosim.io import atomic_write, make_output_dir
from cosim.study.export import export_spec, selected_points
from cosim.study.store import Store
from cosim.study.tables import META, config_fields, records, scalar_metrics, varying, write_csv
from cosim.study.tasks import TASKS, resolve

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    html: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)  # name → [png, svg]
    tables: list[Path] = field(default_factory=list)
    heatmap_point: str | None = None


@dataclass(slots=True)
class ReportContext:
    """What a task's report section (``register_task(..., report=…)``) is handed.

    Attributes:
        out: the report folder; ``files`` records what is written into it.
        records: every point, flattened (``tables.records``); ``done`` the finished ones.
        grid: the dotted config fields that vary between finished points.
        point: the point the user picked with ``--point`` (a full key), or None.
    """

    out: Path
    records: list[dict[str, Any]]
    done: list[dict[str, Any]]
    grid: list[str]
    files: ReportFiles
    point: str | None = None

    def figure(self, fig, name: str, alt: str) -> str:
        """Write ``fig`` as figures/<name>.png and .svg; its HTML (embedded PNG, links)."""
        return _img(_save(fig, self.out, name, self.files), alt, name)

    def csv(self, name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
        """Write tables/<name>.csv (listed under "Files and provenance")."""
        path = self.out / "tables" / f"{name}.csv"
        write_csv(path, rows, columns)
        self.files.tables.append(path)

    @staticmethod
    def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
              headers: Sequence[str] | None = None) -> str:
        """An HTML table of ``rows`` (floats to 4 significant digits)."""
        return _table(rows, columns, headers)

    @staticmethod
    def note(text: str) -> str:
        """A grey note (e.g. "no IR-drop points in this study")."""
        return f'<p class="note">{html.escape(text)}</p>'


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


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
figure{margin:1em 0}img{max-width:100%;border:1px solid #eee}figcaption{color:#555;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .5em;text-align:right}
th{background:#f4f4f4}.note{color:#666;font-style:italic}.err td{text-align:left}code{font-size:.9em}"""


@dataclass(slots=True)
class _Study:
    """What the report reads from the store (step 1), closed before anything is drawn."""

    rows: list
    meta: dict
    export: Any
    picked: list[str]
    counts: dict
    records: list[dict[str, Any]]
    done: list[dict[str, Any]]
    point: str | None


def _gather(store_path: str | Path, point: str | None) -> _Study:
    with Store(store_path, create=False) as store:
        rows = list(store.rows())
        export = export_spec(store)
        recs = records(rows)
        return _Study(rows=rows, meta=store.get_meta("study", {}) or {}, export=export,
                      picked=[r.key for r in selected_points(store)] if export.netlists else [],
                      counts=store.counts(), records=recs, done=[r for r in recs if r["status"] == "done"],
                      point=store.get(point).key if point is not None else None)


def _common_tables(st: _Study, out: Path, files: ReportFiles) -> tuple[list[str], list[dict]]:
    """tables/points.csv and tables/failed.csv; (the varied fields, the failed points)."""
    cfg = config_fields(st.records)
    tables = out / "tables"
    write_csv(tables / "points.csv", st.records, [*META[:5], *cfg, "seed", *scalar_metrics(st.records), "error"])
    failed = [r for r in st.records if r["status"] == "failed"]
    write_csv(tables / "failed.csv", failed, ["key", "attempts", *cfg, "seed", "error"])
    files.tables += [tables / "points.csv", tables / "failed.csv"]
    return list(varying(st.done, cfg)), failed


def _task_sections(ctx: ReportContext) -> list[str]:
    """One section per registered task with a ``report`` hook, in registration order."""
    return [resolve(task.report)(ctx) for task in TASKS.values() if task.report is not None]


def _failures_and_provenance(st: _Study, failed: list[dict], grid: list[str], files: ReportFiles) -> list[str]:
    parts = [f"<h2>Failed points ({len(failed)})</h2>"]
    if failed:
        parts.append('<div class="err">' + _table(failed, ["key", *grid, "seed", "attempts", "error"]) + "</div>")
    else:
        parts.append('<p class="note">none</p>')
    export = st.export
    if export.netlists:
        parts.append(f"<p>Export: {len(st.picked)} finished point(s) selected for {html.escape(export.dialect)} "
                     f"netlists (export.where = <code>{html.escape(json.dumps(dict(export.where)))}</code>): "
                     + ", ".join(f"<code>{k[:12]}</code>" for k in st.picked) + "</p>")
    versions = sorted({json.dumps(r.versions, sort_keys=True) for r in st.rows if r.versions})
    parts.append("<h2>Files and provenance</h2><ul>"
                 + "".join(f'<li><a href="tables/{p.name}">{p.name}</a></li>' for p in files.tables)
                 + "</ul>" + "".join(f"<p>versions: <code>{html.escape(v)}</code></p>" for v in versions))
    return parts


def _page(st: _Study, store_path: str | Path, grid: list[str], parts: list[str]) -> str:
    name = st.meta.get("name") or Path(store_path).stem
    counts_text = ", ".join(f"{n} {s}" for s, n in st.counts.items() if n)
    head = (f"<h1>Study {html.escape(name)}</h1><p>task <code>{html.escape(str(st.meta.get('task', '?')))}</code>; "
            f"{len(st.rows)} points ({html.escape(counts_text or 'none')}); varied: "
            f"{html.escape(', '.join(grid) or 'nothing')}; seeds {html.escape(str(st.meta.get('seeds', '?')))}; "
            f"store <code>{html.escape(str(store_path))}</code>; written "
            f"{dt.datetime.now().isoformat(timespec='seconds')}</p>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>cosim study '
            f"{html.escape(name)}</title><style>{CSS}</style></head><body>{head}{''.join(parts)}</body></html>\n")


def write_report(store_path: str | Path, out_dir: str | Path, *, point: str | None = None) -> ReportFiles:
    """Write the report of the study in ``store_path`` into ``out_dir`` (created if needed).

    ``point`` (a key or an unambiguous prefix) is handed to the task sections (the ir_drop
    section draws that point's cell-voltage heat map; by default the worst one).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--output {out}: exists and is not a folder")
    st = _gather(store_path, point)
    made = make_output_dir(out, what="--output")
    try:
        files = ReportFiles(html=out / "index.html")
        grid, failed = _common_tables(st, out, files)
        ctx = ReportContext(out=out, records=st.records, done=st.done, grid=grid, files=files, point=st.point)
        parts = _task_sections(ctx) + _failures_and_provenance(st, failed, grid, files)
        atomic_write(files.html, _page(st, store_path, grid, parts), mkdir=True)
    except BaseException:
        if made is not None:  # a folder this call created holds only a partial report: remove it
            shutil.rmtree(made, ignore_errors=True)
        raise
    log.info("report of %s written to %s", store_path, files.html)
    return files
