"""Stored points as flat records, seed statistics, and CSV files for people.

A record is one point flattened to dotted keys (``array.rows``, ``device.g_max``) plus its
status, timing and scalar metrics (list-valued metrics such as ``loss_map`` stay out of CSV).
CSV headers carry units (DESIGN.md §2), from :data:`UNITS`; unitless ratios carry none.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cosim.io import atomic_write
from cosim.study.grid import flatten
from cosim.study.store import PointRow

# Known quantities → unit for CSV headers and axis labels.
UNITS = {
    "array.r_row": "ohm", "array.r_col": "ohm", "array.r_driver": "ohm", "array.r_sense": "ohm",
    "array.r_access": "ohm", "device.g_min": "S", "device.g_max": "S", "read.v_read": "V",
    "solve_time": "s", "i_ideal_max": "A", "seconds": "s", "started": "unix_s", "finished": "unix_s",
}
META = ("key", "status", "attempts", "seconds", "host", "error")


def records(rows: Iterable[PointRow]) -> list[dict[str, Any]]:
    """Flat dicts: point metadata, dotted config fields and metrics (lists kept, for figures)."""
    out = []
    for r in rows:
        rec: dict[str, Any] = {"key": r.key, "status": r.status, "attempts": r.attempts,
                               "seconds": r.seconds, "host": r.host, "error": r.error}
        rec.update(flatten(r.config))
        for name, value in (r.metrics or {}).items():
            rec[name] = value
        out.append(rec)
    return out


FIRST = ("array.rows", "array.cols", "array.size", "array.r_row", "array.r_col")


def varying(recs: Sequence[Mapping[str, Any]], fields: Iterable[str]) -> list[str]:
    """Those ``fields`` that take more than one value across ``recs``: array size and wires
    first, then the rest in the given order."""
    out = [f for f in fields if len({repr(r.get(f)) for r in recs}) > 1]
    return sorted(out, key=lambda f: FIRST.index(f) if f in FIRST else len(FIRST))


def legend_fields(recs: Sequence[Mapping[str, Any]], fields: Sequence[str], given: Sequence[str] = ()) -> list[str]:
    """The fewest of ``fields`` that still tell the records apart beyond the ``given`` ones.

    Fields are taken in order, names first within a section (``optimizer.name`` before the
    optimizer's own settings, ``solver.engine`` before its tolerances); one is kept only when it
    splits records that the given and the kept fields leave together. So fields that move with
    another (an optimizer's settings with its name, the engine with the wire resistance, r_col
    with r_row) name a series once, and a legend shows only what distinguishes its entries.
    """
    names = (".name", ".kind", ".engine", ".card", ".method")
    order = sorted(fields, key=lambda f: (FIRST.index(f) if f in FIRST else len(FIRST), not f.endswith(names)))
    kept: list[str] = []
    for f in order:
        if f in given:
            continue
        groups: dict[tuple, set] = {}
        for r in recs:
            groups.setdefault(tuple(repr(r.get(g)) for g in (*given, *kept)), set()).add(repr(r.get(f)))
        if any(len(v) > 1 for v in groups.values()):
            kept.append(f)
    return kept


def distinct(recs: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> list[str]:
    """``fields`` less those equal, in every record, to an earlier kept one (r_col = r_row)."""
    kept: list[str] = []
    for f in fields:
        if not any(all(r.get(f) == r.get(g) for r in recs) for g in kept):
            kept.append(f)
    return kept


def config_fields(recs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Dotted config fields present in the records (section.field), in first-seen order."""
    seen: dict[str, None] = {}
    for r in recs:
        for k in r:
            if "." in k and k != "task.kind":
                seen.setdefault(k, None)
    return list(seen)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def seed_stats(recs: Sequence[Mapping[str, Any]], by: Sequence[str], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Mean, sample std and count of each metric over the points that share the ``by`` fields.

    Groups come out sorted by their ``by`` values; a metric missing from a point is skipped
    for that point (``n_<metric>`` says how many points each mean is over).
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in recs:
        groups.setdefault(tuple(r.get(f) for f in by), []).append(r)
    out = []
    for key in sorted(groups, key=lambda t: tuple((v is None, v if is_number(v) else str(v)) for v in t)):
        members = groups[key]
        row: dict[str, Any] = dict(zip(by, key))
        for m in metrics:
            vals = [float(r[m]) for r in members if is_number(r.get(m))]
            n = len(vals)
            mean = sum(vals) / n if n else math.nan
            std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0 if n else math.nan
            row[f"{m}_mean"], row[f"{m}_std"], row[f"n_{m}"] = mean, std, n
        out.append(row)
    return out


def header(name: str) -> str:
    """A CSV column name: the dotted field's leaf with its unit, ``r_row_ohm``, ``solve_time_s``."""
    base = name
    for stat in ("_mean", "_std"):
        if name.endswith(stat) and name[: -len(stat)] in UNITS:
            unit = UNITS[name[: -len(stat)]]
            return f"{name[: -len(stat)]}_{unit}{stat}"
    unit = UNITS.get(base)
    return f"{base}_{unit}" if unit else base


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """A CSV with unit-carrying headers; list values and None are left empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([header(c) for c in columns])
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c)
            if v is None or isinstance(v, (list, dict)) or (isinstance(v, float) and math.isnan(v)):
                cells.append("")
            elif isinstance(v, float):
                cells.append(repr(v))
            else:
                cells.append(str(v))
        w.writerow(cells)
    atomic_write(path, buf.getvalue(), mkdir=True)


def scalar_metrics(recs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Names of metrics that hold a number in at least one record (not config or metadata)."""
    seen: dict[str, None] = {}
    for r in recs:
        for k, v in r.items():
            if "." not in k and k not in META and k != "seed" and is_number(v):
                seen.setdefault(k, None)
    return list(seen)
