"""Training metrics: the per-device pulse log, convergence, and the files a run writes.

- :class:`PulseLog`: per weight device (layer, row, col, side "+"/"−") the SET and RESET pulses
  the *optimizer* sent, the open-loop programming pulses (re-initialisation, refresh) and the
  write-verify operations, kept apart; optionally every step's pulses as events. Exported as NPZ
  (arrays) or CSV (one line per device, with its tile and cell coordinates, for a hardware team).
- :func:`convergence_epoch`: the first epoch (1-based) whose test accuracy reaches
  ``fraction`` (0.9) of a reference accuracy (the float software run's final one).
- :func:`write_json`, :func:`write_csv`: atomic writes (temporary name, then rename).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cosim.io import atomic_path, atomic_write

SIDES = ("+", "-")


class PulseLog:
    """Pulse counts per weight device of every layer (see the module docstring).

    ``shapes`` are the layers' (n_in, n_out); ``events`` keeps every training step's pulses.
    """

    def __init__(self, shapes: Sequence[tuple[int, int]], *, events: bool = False) -> None:
        self.shapes = [tuple(int(x) for x in s) for s in shapes]
        z = [np.zeros(s, dtype=np.int64) for s in self.shapes]
        self.train_set = {side: [a.copy() for a in z] for side in SIDES}
        self.train_reset = {side: [a.copy() for a in z] for side in SIDES}
        self.program = {side: [a.copy() for a in z] for side in SIDES}
        self.verify_writes = 0
        self.keep_events = events
        self._events: list[tuple[int, int, int, np.ndarray, np.ndarray]] = []

    def record(self, layer: int, side: str, n: np.ndarray | None, *, step: int, kind: str = "train") -> None:
        """Add signed counts ``n`` (n_in, n_out) of one side of a layer; ``kind`` "train" or "program"."""
        if n is None:
            return
        n = np.asarray(n, dtype=np.int64)
        if kind == "program":
            self.program[side][layer] += np.abs(n)
            return
        self.train_set[side][layer] += np.maximum(n, 0)
        self.train_reset[side][layer] += np.maximum(-n, 0)
        if self.keep_events and n.any():
            idx = np.flatnonzero(n)
            self._events.append((step, layer, SIDES.index(side), idx, n.ravel()[idx]))

    def totals(self) -> dict[str, int]:
        """Training SET/RESET pulses, programming pulses and write-verify operations, summed."""
        return {
            "pulses_set": int(sum(a.sum() for s in SIDES for a in self.train_set[s])),
            "pulses_reset": int(sum(a.sum() for s in SIDES for a in self.train_reset[s])),
            "program_pulses": int(sum(a.sum() for s in SIDES for a in self.program[s])),
            "verify_writes": int(self.verify_writes),
        }

    def events(self) -> dict[str, np.ndarray]:
        """Every recorded training pulse burst: step, layer, side (0 "+", 1 "−"), row, col, n."""
        if not self._events:
            e = np.zeros(0, dtype=np.int64)
            return {"step": e, "layer": e, "side": e, "row": e, "col": e, "n": e}
        parts = {k: [] for k in ("step", "layer", "side", "row", "col", "n")}
        for step, layer, side, idx, n in self._events:
            rows, cols = np.unravel_index(idx, self.shapes[layer])
            for k, v in (("step", np.full(idx.size, step)), ("layer", np.full(idx.size, layer)),
                         ("side", np.full(idx.size, side)), ("row", rows), ("col", cols), ("n", n)):
                parts[k].append(np.asarray(v, dtype=np.int64))
        return {k: np.concatenate(v) for k, v in parts.items()}

    def write_npz(self, path: str | Path, extra: dict[str, np.ndarray] | None = None) -> None:
        """Arrays ``train_set_L{l}_{p|m}``, ``train_reset_…``, ``program_…`` (+ ``events_*``)."""
        arrays: dict[str, np.ndarray] = {}
        for layer in range(len(self.shapes)):
            for side, tag in zip(SIDES, "pm"):
                arrays[f"train_set_L{layer}_{tag}"] = self.train_set[side][layer]
                arrays[f"train_reset_L{layer}_{tag}"] = self.train_reset[side][layer]
                arrays[f"program_L{layer}_{tag}"] = self.program[side][layer]
        if self.keep_events:
            arrays.update({f"events_{k}": v for k, v in self.events().items()})
        arrays.update(extra or {})
        with atomic_path(path) as tmp:
            np.savez_compressed(tmp, **arrays)

    def rows(self, coords: Sequence[Any] | None = None, g_initial=None, g_final=None):
        """One dict per device with any pulse: layer, row, col, side, its tile and cell, counts,
        initial/final conductance (S) when given. ``coords[l](row, col)`` → (bi, bj, i, j)."""
        for layer in range(len(self.shapes)):
            for side, k in zip(SIDES, (0, 1)):
                s, r, p = self.train_set[side][layer], self.train_reset[side][layer], self.program[side][layer]
                touched = np.argwhere((s + r + p) > 0)
                for i, j in touched:
                    row = {"layer": layer, "row": int(i), "col": int(j), "side": side}
                    if coords is not None:
                        bi, bj, ti, tj = coords[layer](int(i), int(j))
                        row.update(tile_row=bi, tile_col=bj, cell_row=ti, cell_col=tj)
                    row.update(set_pulses=int(s[i, j]), reset_pulses=int(r[i, j]), program_pulses=int(p[i, j]))
                    # A fast array's layers (after the weight layers) have no conductance snapshots.
                    if g_initial is not None and layer < len(g_initial):
                        row["g_initial_S"] = float(g_initial[layer][k][i, j])
                    if g_final is not None and layer < len(g_final):
                        row["g_final_S"] = float(g_final[layer][k][i, j])
                    yield row


def convergence_epoch(test_acc: Sequence[float], reference: float, fraction: float = 0.9) -> int | None:
    """First epoch (1-based) with accuracy ≥ fraction·reference, or None if never reached."""
    target = fraction * reference
    for k, a in enumerate(test_acc):
        if a >= target:
            return k + 1
    return None


def jsonable(value: Any) -> Any:
    """numpy scalars/arrays → Python; NaN/inf → None (no JSON spelling)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def write_json(path: str | Path, data: dict) -> None:
    atomic_write(path, json.dumps(jsonable(data), indent=2) + "\n")


def write_csv(path: str | Path, rows: Sequence[dict] | Any, fieldnames: Sequence[str] | None = None) -> None:
    """Rows of dicts as CSV (header from ``fieldnames`` or the first row)."""
    rows = list(rows)
    names = list(fieldnames or (rows[0].keys() if rows else []))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in names})
    atomic_write(path, buf.getvalue())
