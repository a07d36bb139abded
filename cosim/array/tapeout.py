"""Tape-out export: programmed tiles as ngspice netlists a circuit designer can run and probe.

For every tile (one physical crossbar of a trained network, or the single array of a study
point) :func:`write_tapeout` writes, into one folder, atomically (a temporary folder beside it,
renamed into place; a failure leaves nothing behind):

- ``tiles/<tile>.sub``: the tile as ``.subckt <tile> d0 … d{N-1} s0 … s{M-1}`` with its wires,
  driver/sense resistances and every device as a resistor of its programmed read conductance
  (the *true* device state, not the periphery's estimate), or, for nonlinear cells (device,
  1S1R, 1T1R-mos), each cell as the engine modelled it: behavioural sources for the device and
  selector laws and a level-1 MOSFET with its word-line source (the text of
  :mod:`cosim.circuit.netlist_cells`; the benches then carry its ``.options`` line); uniform
  wire values are local ``.param`` lines inside the subcircuit;
- ``tiles/<tile>.cir``: a test bench (``.include`` of the subcircuit, port sources at the
  recorded input vector, ``op`` and a 17-digit ``print`` of the sense currents) that runs as
  ``ngspice -b tiles/<tile>.cir`` from any folder;
- ``tiles/<tile>.json``: that input (V) and cosim's nodal (direct LU) and ideal (V·G) sense
  currents (A), so the comparison can be repeated;
- ``top.cir``: every subcircuit instantiated once, inputs on named nets per layer row, every
  sense port held at its virtual ground by its own 0 V source, the same prints;
- ``devices.csv`` (per cell: conductance, model state, pulses, fault), ``currents.csv`` (per
  sense port: cosim's current and the ngspice vectors that print it), ``manifest.json`` and a
  ``README.md`` naming the nodes and sources to probe.

Node names inside a subcircuit follow :mod:`cosim.circuit.build` (``r{i}_{j}``, ``c{i}_{j}``,
``m{i}_{j}``); ngspice prints them as ``xarr.r3_5`` in a bench and ``x<tile>.r3_5`` in ``top.cir``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import string
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cosim.circuit import CrossbarSpec, SolverOptions, build_circuit, netlist_cells, prepare
from cosim.circuit.engines.spice import require_ngspice
from cosim.circuit.netlist_write import crossbar_deck, default_control
from cosim.circuit.units import format_value
from cosim.errors import EngineError, InputError, NetlistError

log = logging.getLogger(__name__)

DEVICE_FIELDS = ("layer", "tile", "row", "col", "device", "weight_row", "weight_col", "conductance_S", "state",
                 "pulses_set", "pulses_reset", "program_pulses", "fault")
CURRENT_FIELDS = ("layer", "tile", "col", "current_A", "ideal_current_A", "bench_vector", "top_vector")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class TileExport:
    """One tile to write.

    Attributes:
        name: lower-case SPICE identifier (letters, digits, ``_``); subcircuit and file stem.
        spec: the physical array holding the programmed conductances (S).
        inputs: (rows,) row-port voltages of the bench's forward read, V.
        row_nets: per row port, the ``top.cir`` net that drives it (None: tied to ground, 0 V);
            tiles sharing a net must share its voltage.
        layer: the layer it belongs to ("" for a lone array).
        input_note: how ``inputs`` was chosen (for the README).
        devices: per-cell (rows, cols) columns of ``devices.csv`` besides layer/tile/row/col and
            the conductance: any of ``device`` (plus/minus/ref/unused/cell), ``weight_row``,
            ``weight_col`` (−1: none), ``state``, ``pulses_set``, ``pulses_reset``,
            ``program_pulses``, ``fault``.
    """

    name: str
    spec: CrossbarSpec
    inputs: np.ndarray
    row_nets: tuple[str | None, ...]
    layer: str = ""
    input_note: str = ""
    devices: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, _ = self.spec.shape
        for name in (self.name, *(x for x in self.row_nets if x is not None)):
            if not _NAME.match(name):
                raise NetlistError(f"tile {self.name!r}: name {name!r} must be lower-case letters, digits and _")
        if np.shape(self.inputs) != (n,) or len(self.row_nets) != n:
            raise InputError(f"tile {self.name}: inputs and row_nets need one entry per row ({n})")


@dataclass(frozen=True, slots=True)
class TapeoutFiles:
    """What :func:`write_tapeout` wrote: the folder, the tile names (in order) and cosim's nodal
    sense currents per tile (A), which the netlists reproduce."""

    directory: Path
    tiles: list[str]
    currents: dict[str, np.ndarray]

    @property
    def top(self) -> Path:
        return self.directory / "top.cir"

    def deck(self, tile: str) -> Path:
        return self.directory / "tiles" / f"{tile}.cir"


def check_output(output: str | Path, force: bool = False, hint: str = "") -> Path:
    """``output`` as a Path after checking it can receive a tape-out (call before long work);
    ``hint`` ends the message for a non-empty folder (e.g. the option that forces it)."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"{out}: output folder is not empty; refusing to overwrite it" + (f" ({hint})" if hint else ""))
    return out


def _wrap(words: Sequence[str], width: int = 100) -> list[str]:
    lines, cur = [], words[0]
    for w in words[1:]:
        if len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = "+"
        cur += " " + w
    return lines + [cur]


def _solve(spec: CrossbarSpec, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """cosim's nodal (direct LU; Newton for nonlinear cells) and ideal sense currents (A) for row
    voltages ``v`` (V)."""
    circuit = build_circuit(spec)
    opts = SolverOptions(engine="nodal", method="direct" if spec.law is None else "auto")
    res = prepare(circuit, opts).solve(v[None, :])
    ideal = prepare(circuit, opts.replace(engine="ideal")).solve(v[None, :]).currents[0]
    return res.currents[0], ideal, float(res.residual)


def _tile_files(t: TileExport, title: str) -> tuple[str, str, np.ndarray, dict]:
    """(.sub text, .cir text, nodal currents, JSON record) of one tile."""
    n, m = t.spec.shape
    circuit = build_circuit(t.spec)
    deck = crossbar_deck(circuit, values=circuit.source_values(t.inputs[None, :])[0],
                         title=f"{title}: tile {t.name}", spec=t.spec, subckt=t.name,
                         control=lambda nm: default_control(circuit, nm))
    naming = deck.naming
    head = [ln for ln in deck.header if "run: ngspice" not in ln]  # the bench says how it runs
    sub = [*deck.subckt_open, *deck.params, *deck.subckt_body]  # .param inside: the .sub stands alone
    bench = ["", *deck.options, *deck.bench, *(["", ".control", *deck.control, ".endc"] if deck.control else []), ".end"]
    sub_text = "\n".join([f"* cosim tape-out subcircuit {t.name} ({title}); include it, see README.md", *head, "",
                          *sub]) + "\n"
    note = [f"* input: {t.input_note}"] if t.input_note else []
    cir = [f"{title}: tile {t.name} test bench", f"* run: ngspice -b {t.name}.cir (from any folder)", *head, *note,
           "", f".include {t.name}.sub", *bench]
    currents, ideal, resid = _solve(t.spec, np.asarray(t.inputs, dtype=float))
    record = {"tile": t.name, "layer": t.layer, "input": t.input_note, "inputs_V": t.inputs.tolist(),
              "currents_A": currents.tolist(), "ideal_currents_A": ideal.tolist(),
              "vectors": [f"vs{j}#branch" for j in range(m)],
              "engine": "nodal (direct sparse LU)" if t.spec.law is None else
              f"nodal (Newton on the line blocks, certified to 1e-10), {t.spec.cell} cells",
              "kcl_residual": resid, "sources": list(naming.vsrc)}
    return sub_text, "\n".join(cir) + "\n", currents, record


def _top_text(tiles: Sequence[TileExport], title: str) -> str:
    """``top.cir``: every tile instantiated on named input nets, one sense source per port."""
    volts: dict[str, float] = {}
    for t in tiles:
        for net, v in zip(t.row_nets, t.inputs):
            if net is None:
                continue
            if volts.setdefault(net, float(v)) != float(v):
                raise InputError(f"net {net} is driven at {volts[net]!r} V and {float(v)!r} V by different tiles")
    lines = [f"{title}: all tiles", "* run: ngspice -b top.cir (from any folder; includes are relative to this file)",
             "* nets: <layer>_x<r> drives weight row r of a layer; <tile>_s<j> is sense port j of a tile, held",
             "* at v_sense by source v<tile>_s<j>, whose branch current is that port's sense current", ""]
    clash = set(volts) & {f"{t.name}_s{j}" for t in tiles for j in range(t.spec.n_cols)}
    if clash:
        raise NetlistError(f"net {sorted(clash)[0]} is both an input and a sense port")
    lines += [f".include tiles/{t.name}.sub" for t in tiles]
    if any(t.spec.law is not None for t in tiles):
        lines.append(netlist_cells.OPTIONS)
    lines += ["", "* inputs (V)"]
    lines += [f"v{net} {net} 0 dc {format_value(v)}" for net, v in volts.items()]
    prints = []
    for t in tiles:
        m = t.spec.n_cols
        sense = [f"{t.name}_s{j}" for j in range(m)]
        lines += ["", f"* tile {t.name}" + (f" (layer {t.layer})" if t.layer else "")]
        lines += _wrap([f"x{t.name}", *[net or "0" for net in t.row_nets], *sense, t.name])
        lines += [f"v{s} {s} 0 dc {format_value(t.spec.v_sense)}" for s in sense]
        prints += [f"v{s}#branch" for s in sense]
    lines += ["", ".control", "set numdgt=17", "op"]
    lines += ["print " + " ".join(prints[k:k + 8]) for k in range(0, len(prints), 8)]
    return "\n".join(lines + ["quit 0", ".endc", ".end"]) + "\n"


def _csv(rows: Sequence[Mapping[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _device_rows(t: TileExport) -> list[dict[str, Any]]:
    n, m = t.spec.shape
    g = t.spec.conductances
    cols = {k: np.asarray(v) for k, v in t.devices.items()}
    rows = []
    for i in range(n):
        for j in range(m):
            r: dict[str, Any] = {"layer": t.layer, "tile": t.name, "row": i, "col": j, "conductance_S": repr(float(g[i, j]))}
            for k, a in cols.items():
                x = a[i, j].item() if hasattr(a[i, j], "item") else a[i, j]
                r[k] = "" if k.startswith("weight_") and x < 0 else repr(x) if isinstance(x, float) else x
            rows.append(r)
    return rows


def _span(names: Sequence[str]) -> str:
    return f"`{names[0]}`" if len(names) == 1 else f"`{names[0]}` … `{names[-1]}`"


def readme_text(tiles: Sequence[TileExport], records: Sequence[Mapping[str, Any]], manifest: Mapping[str, Any]) -> str:
    """The tape-out's README.md: files, node names, the sources to probe and the inputs used,
    from the template ``tapeout_readme.md`` beside this module."""
    import cosim

    info = manifest.get("info") or {}
    probes = []
    for t, rec in zip(tiles, records):
        m = t.spec.n_cols
        big = max(abs(x) for x in rec["currents_A"])
        probes.append(f"| `{t.name}` | {t.layer or '–'} | {t.spec.n_rows}×{m} {t.spec.cell} | "
                      f"{_span([f'vs{j}#branch' for j in range(m)])} | "
                      f"{_span([f'v{t.name}_s{j}#branch' for j in range(m)])} | {big:.6g} | {t.input_note or '–'} |")
    template = string.Template((Path(__file__).with_name("tapeout_readme.md")).read_text(encoding="utf-8"))
    return template.substitute(
        title=manifest["title"], version=cosim.__version__, first_tile=tiles[0].name,
        info="".join(f"- {k}: {v}\n" for k, v in info.items() if not isinstance(v, Mapping | list)),
        device_fields=", ".join(f"`{f}`" for f in DEVICE_FIELDS), probes="".join(f"{p}\n" for p in probes))


def _publish(tmp: Path, out: Path, force: bool) -> None:
    """Move the finished ``tmp`` folder to ``out`` (replacing a non-empty one only with force)."""
    check_output(out, force)
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        os.replace(out, old / "x")
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)  # an empty folder is replaced by the rename itself


def write_tapeout(tiles: Sequence[TileExport], output: str | Path, *, force: bool = False, title: str = "cosim tape-out",
                  info: Mapping[str, Any] | None = None) -> TapeoutFiles:
    """Write the tape-out of ``tiles`` into ``output`` (see the module docstring); ``info`` (JSON-able:
    the point key, the config …) goes into ``manifest.json`` and the README."""
    if not tiles:
        raise InputError("nothing to export: no tiles")
    names = [t.name for t in tiles]
    if len(set(names)) != len(names):
        raise InputError(f"tile names must be unique, got {names}")
    out = check_output(output, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        (tmp / "tiles").mkdir()
        currents, records, devices, sense = {}, [], [], []
        for t in tiles:
            sub, cir, cur, rec = _tile_files(t, title)
            (tmp / "tiles" / f"{t.name}.sub").write_text(sub, encoding="utf-8")
            (tmp / "tiles" / f"{t.name}.cir").write_text(cir, encoding="utf-8")
            (tmp / "tiles" / f"{t.name}.json").write_text(json.dumps(rec, indent=1) + "\n", encoding="utf-8")
            currents[t.name] = cur
            records.append(rec)
            devices += _device_rows(t)
            sense += [{"layer": t.layer, "tile": t.name, "col": j, "current_A": repr(float(cur[j])),
                       "ideal_current_A": repr(float(rec["ideal_currents_A"][j])), "bench_vector": f"vs{j}#branch",
                       "top_vector": f"v{t.name}_s{j}#branch"} for j in range(cur.size)]
        (tmp / "top.cir").write_text(_top_text(tiles, title), encoding="utf-8")
        (tmp / "devices.csv").write_text(_csv(devices, DEVICE_FIELDS), encoding="utf-8")
        (tmp / "currents.csv").write_text(_csv(sense, CURRENT_FIELDS), encoding="utf-8")
        manifest = {"title": title, "info": dict(info or {}), "top": "top.cir",
                    "tiles": [{"name": t.name, "layer": t.layer, "rows": t.spec.n_rows, "cols": t.spec.n_cols,
                               "deck": f"tiles/{t.name}.cir", "subckt": f"tiles/{t.name}.sub", "input": t.input_note}
                              for t in tiles]}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(readme_text(tiles, records, manifest), encoding="utf-8")
        _publish(tmp, out, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("tape-out of %d tiles written to %s", len(tiles), out)
    return TapeoutFiles(directory=out, tiles=names, currents=currents)


def run_deck(path: str | Path) -> dict[str, float]:
    """Run ``ngspice -b`` on a deck; every ``name = value`` line it prints, as {name: float}."""
    binary = require_ngspice()
    path = Path(path)
    proc = subprocess.run([binary, "-b", str(path.resolve())], capture_output=True, text=True, errors="replace")
    found = dict(re.findall(r"^(\S+) = (\S+)$", proc.stdout, flags=re.M))
    if proc.returncode != 0 or not found:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise EngineError(f"ngspice failed on {path} (exit status {proc.returncode}):\n{tail}")
    return {k.lower(): float(v) for k, v in found.items()}


def verify_tapeout(directory: str | Path) -> dict[str, float]:
    """Run every deck of a tape-out in ngspice; per deck (``tiles/<tile>.cir``, ``top.cir``) the
    largest |I_ngspice − I_cosim| / |I_cosim| over its sense ports with current (unitless)."""
    d = Path(directory)
    with open(d / "currents.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    full = max((abs(float(r["current_A"])) for r in rows), default=0.0)

    def worst(printed: dict[str, float], pairs) -> float:
        err = 0.0
        for vec, ref in pairs:
            if vec not in printed:
                raise EngineError(f"ngspice printed no {vec} (deck in {d})")
            if abs(ref) > 1e-12 * full:  # a port with no current has no relative error
                err = max(err, abs(printed[vec] - ref) / abs(ref))
        return err

    out = {}
    for tile in dict.fromkeys(r["tile"] for r in rows):
        mine = [(r["bench_vector"], float(r["current_A"])) for r in rows if r["tile"] == tile]
        out[f"tiles/{tile}.cir"] = worst(run_deck(d / "tiles" / f"{tile}.cir"), mine)
    out["top.cir"] = worst(run_deck(d / "top.cir"), [(r["top_vector"], float(r["current_A"])) for r in rows])
    return out
