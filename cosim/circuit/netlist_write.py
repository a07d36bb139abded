"""SPICE netlists from a :class:`Circuit`: one writer function per dialect (only ngspice so far).

A crossbar circuit (one with a :class:`CrossbarLayout`) becomes a readable deck: header comments
stating the array, ``.param`` lines for uniform wire/driver/sense/access resistances, a
``.subckt xbar_{N}x{M}`` whose ports are the row ports ``d0 … d{N-1}`` and column ports
``s0 … s{M-1}``, one instance ``xarr`` of it, the port sources ``vd{i}``/``vs{j}`` and a
``.control`` block that runs ``op`` and prints the output currents with full precision, so
``ngspice -b deck.cir`` runs as is. Inside the instance ngspice names node ``r3_17`` as
``xarr.r3_17`` and a source ``v1`` as ``v.xarr.v1``. Any other circuit is written flat.

Three ngspice facts shape the text (checked on ngspice-39):

- ngspice clamps a 0 Ω resistor to 1 mΩ, so an ideal connection (``g = inf``) is written as a
  0 V source named ``v`` + the resistor's name, which is exact; ``g = 0`` elements are omitted.
- numbers use Python's shortest round-trip text (:func:`format_value`), so reading back is exact.
- the batch-mode ``.op`` printout has 7 digits; ``set numdgt=17`` and ``print`` give all 17.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from cosim.circuit import netlist_cells
from cosim.circuit.model import Circuit, GridNames, as_batch
from cosim.circuit.spec import CrossbarSpec
from cosim.circuit.units import format_resistance, format_value
from cosim.errors import NetlistError
from cosim.io import atomic_write

INSTANCE = "xarr"
PARAM_OF_BLOCK = {"rw": "r_row", "rc": "r_col", "rdl": "r_driver", "rdr": "r_driver",
                  "rsb": "r_sense", "rst": "r_sense", "ra": "r_access"}
BLOCK_NOTES = {
    "rg": "devices rg{i}_{j}: row node r{i}_{j} to column node c{i}_{j} (1T1R: to mid node m{i}_{j})",
    "ra": "access transistors ra{i}_{j}: m{i}_{j} to c{i}_{j} (absent when the row is off)",
    "rw": "row wire segments rw{i}_{j}: r{i}_{j} to r{i}_{j+1}",
    "rc": "column wire segments rc{i}_{j}: c{i}_{j} to c{i+1}_{j}",
    "rdl": "row drivers, left end: d{i} to r{i}_0",
    "rdr": "row drivers, right end: d{i} to r{i}_{M-1}",
    "rsb": "column sense resistors, bottom end: s{j} to c{N-1}_{j}",
    "rst": "column sense resistors, top end: s{j} to c0_{j}",
}
_NAME_OK = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:\[\]<>/|!@%&+-]*$")
_PORT = re.compile(r"^[ds]\d+$")
_WRAP = 100  # characters per line before a "+" continuation


@dataclass(frozen=True, slots=True)
class SpiceNaming:
    """How ngspice names the parts of a written circuit, for reading its results back.

    Attributes:
        nodes: per circuit node, the vector name ngspice prints ("" for ground).
        vsrc: per voltage source, the element name ngspice uses (its current is ``name#branch``).
        isrc: per current source, the element name as written.
        shorts: (resistor index, source name) of each 0 Ω resistor written as a 0 V source.
    """

    nodes: list[str]
    vsrc: list[str]
    isrc: list[str]
    shorts: list[tuple[int, str]]


def _all_names(names: Sequence[str]) -> list[str]:
    """Every name of a sequence; GridNames blocks are expanded without per-index arithmetic."""
    if not isinstance(names, GridNames):
        return [str(n) for n in names]
    out: list[str] = []
    for prefix, shape in names.blocks:
        if not shape:
            out.append(prefix)
        else:
            out.extend(prefix + "_".join(map(str, idx))
                       for idx in itertools.product(*(range(s) for s in shape)))
    return out


def _element_names(names: Sequence[str], count: int, letter: str) -> list[str]:
    """Element names as written: the circuit's, prefixed with ``letter`` when needed."""
    given = _all_names(names)
    if len(given) != count:
        given = [f"{letter}{k}" for k in range(count)]
    return [n if n[:1].lower() == letter else letter + n for n in given]


def _check_names(names: Sequence[str], what: str, skip_first: bool = False) -> None:
    seen: dict[str, str] = {}
    for k, name in enumerate(names):
        if skip_first and k == 0:
            continue
        if not _NAME_OK.match(name):
            raise NetlistError(f"{what} name {name!r} cannot be written to SPICE: use letters, digits, _ . : - etc.")
        low = name.lower()
        if low in seen:
            raise NetlistError(f"{what} names {seen[low]!r} and {name!r} are the same to SPICE (case-insensitive)")
        seen[low] = name
    if skip_first and {"0", "gnd"} & set(seen):
        raise NetlistError(f"{what} name '0' or 'gnd' is ground to SPICE; only node 0 may be ground")


def deck_source_values(circuit: Circuit, inputs) -> np.ndarray:
    """Voltage-source values (V) for the first input vector, or with every input at 0 V."""
    if inputs is None:
        return circuit.source_values(np.zeros((1, circuit.n_inputs)))[0]
    v, _ = as_batch(inputs, circuit.n_inputs)
    return circuit.source_values(v[:1])[0]


def _wrap(head: str, words: Sequence[str]) -> list[str]:
    """``head`` followed by ``words``, broken into ``+`` continuation lines."""
    lines, cur = [], head
    for w in words:
        if len(cur) + 1 + len(w) > _WRAP and cur.strip() not in ("", "+"):
            lines.append(cur)
            cur = "+"
        cur += " " + w
    lines.append(cur)
    return lines


def _resistor_lines(names, a, b, g, node, uniform: str | None, short_names) -> list[str]:
    """Resistor lines (``g = 0`` omitted, ``g = inf`` as a 0 V source) for one block."""
    lines = []
    for k in range(len(names)):
        gk = g[k]
        if gk == 0:
            continue
        if np.isinf(gk):
            lines.append(f"{short_names[k]} {node[a[k]]} {node[b[k]]} dc 0")
            continue
        value = f"{{{uniform}}}" if uniform else format_resistance(gk)
        lines.append(f"{names[k]} {node[a[k]]} {node[b[k]]} {value}")
    return lines


def _short_names(res_names: list[str], g: np.ndarray, taken: set[str]) -> dict[int, str]:
    out = {}
    for k in np.flatnonzero(np.isinf(g)):
        cand = "v" + res_names[k]
        while cand.lower() in taken:
            cand += "_"
        taken.add(cand.lower())
        out[int(k)] = cand
    return out


def _line_summary(g_block: np.ndarray) -> str:
    finite = g_block[np.isfinite(g_block) & (g_block > 0)]
    shorts = int(np.isinf(g_block).sum())
    parts = []
    if finite.size:
        r = 1.0 / finite
        lo, hi = r.min(), r.max()
        parts.append(f"{format_value(lo)} ohm" if lo == hi else f"{format_value(lo)}..{format_value(hi)} ohm (per segment)")
    if shorts:
        parts.append(f"{shorts} ideal (0 ohm)")
    return ", ".join(parts) if parts else "none (open)"


def _header(circuit: Circuit, spec: CrossbarSpec | None, blocks: dict[str, slice]) -> list[str]:
    lay = circuit.layout
    n, m = lay.n_rows, lay.n_cols
    cell = "1T1R" if lay.mid_node0 >= 0 else "0T1R"
    if circuit.cell_law is not None:
        cell = f"nonlinear ({spec.cell if spec is not None else type(circuit.cell_law).__name__})"
    if lay.transpose:
        read = f"transpose read: inputs drive the column ports s0..s{m - 1}, outputs are the currents of vd0..vd{n - 1}"
    else:
        read = f"forward read: inputs drive the row ports d0..d{n - 1}, outputs are the currents of vs0..vs{m - 1}"
    drive = spec.drive if spec else {("rdl",): "left", ("rdr",): "right"}.get(
        tuple(k for k in ("rdl", "rdr") if k in blocks), "both")
    sense = spec.sense if spec else {("rsb",): "bottom", ("rst",): "top"}.get(
        tuple(k for k in ("rsb", "rst") if k in blocks), "both")
    g = circuit.res_g
    lines = [
        "* cosim crossbar netlist, ngspice dialect (run: ngspice -b <this file>)",
        f"* array: {n} rows x {m} columns, {cell} cells; {read}",
        f"* drive side: {drive}; sense side: {sense}",
    ]
    dev = g[blocks["rg"]]
    if circuit.cell_law is not None:
        lines.append("* cells: I-V laws as behavioural sources bg/bs{i}_{j} and level-1 MOSFETs mt{i}_{j}, "
                     "as cosim's Newton read solves them (cosim/circuit/netlist_cells.py)")
    elif dev.size:
        lines.append(f"* device conductances: {format_value(dev.min())}..{format_value(dev.max())} S")
    for label, keys in (("r_row", ("rw",)), ("r_col", ("rc",)), ("r_driver", ("rdl", "rdr")),
                        ("r_sense", ("rsb", "rst")), ("r_access", ("ra",))):
        present = [blocks[k] for k in keys if k in blocks]
        if present:
            lines.append(f"* {label}: {_line_summary(np.concatenate([g[s] for s in present]))}")
    if spec is not None:
        def sel(mask):
            return "all" if mask.all() else f"{int(mask.sum())} of {mask.size}: " + " ".join(map(str, np.flatnonzero(mask)))
        lines += [
            f"* bias scheme: unselected lines {spec.unselected}; v_sense = {format_value(spec.v_sense)} V"
            + (f"; v_select = {format_value(spec.v_select)} V" if spec.v_select is not None else ""),
            f"* selected rows: {sel(spec.selected_rows)}",
            f"* selected columns: {sel(spec.selected_cols)}",
        ]
    else:
        lines.append("* bias scheme: not recorded (written without its spec)")
    lines += [
        "* nodes: r{i}_{j} row wire and c{i}_{j} column wire at cell (i, j)"
        + (", m{i}_{j} between device and access transistor" if cell == "1T1R" else "")
        + f"; d{{i}} row ports, s{{j}} column ports; inside {INSTANCE} ngspice prints {INSTANCE}.r{{i}}_{{j}}",
        "* 0 ohm connections are written as 0 V sources v<resistor> (ngspice would clamp R=0 to 1 mOhm);",
        "* elements of zero conductance (open) are left out",
    ]
    return lines


def _res_blocks(circuit: Circuit) -> dict[str, slice]:
    names = circuit.res_names
    if not isinstance(names, GridNames):
        return {}
    return {p: slice(int(names.starts[k]), int(names.starts[k + 1])) for k, (p, _) in enumerate(names.blocks)}


@dataclass(frozen=True, slots=True)
class _Written:
    """Names as they go into the deck, and whether the crossbar form applies."""

    node: list[str]
    res: list[str]
    vsrc: list[str]
    isrc: list[str]
    short: dict[int, str]
    blocks: dict[str, slice]
    crossbar: bool


def _written(c: Circuit) -> _Written:
    if c.controls is not None:
        raise NetlistError("a circuit with controlled sources (E/F/G/H) is not written back as a "
                           "deck; run ngspice on the original file (cosim solve --engine spice)")
    lay = c.layout
    blocks = _res_blocks(c) if lay is not None else {}
    node = _all_names(c.node_names)
    crossbar = lay is not None and "rg" in blocks and c.isrc_dc.size == 0
    if crossbar:
        # the port sources must be exactly vd{i}/vs{j} from a port to ground (build_circuit's)
        port = {f"d{i}" for i in range(lay.n_rows)} | {f"s{j}" for j in range(lay.n_cols)}
        crossbar = bool((c.vsrc_n == 0).all() and all(node[k] in port for k in c.vsrc_p))
    res = _element_names(c.res_names, c.res_g.size, "r")
    vsrc = _element_names(c.vsrc_names, c.vsrc_p.size, "v")
    isrc = _element_names(c.isrc_names, c.isrc_dc.size, "i")
    if not isinstance(c.node_names, GridNames):
        _check_names(node, "node", skip_first=True)
    node[0] = "0"
    if not isinstance(c.res_names, GridNames):
        _check_names(res + vsrc + isrc, "element")
    taken = {x.lower() for x in itertools.chain(res, vsrc, isrc)}
    return _Written(node, res, vsrc, isrc, _short_names(res, c.res_g, taken), blocks, crossbar)


def _naming(w: _Written) -> SpiceNaming:
    if not w.crossbar:
        return SpiceNaming(nodes=[""] + [x.lower() for x in w.node[1:]], vsrc=[x.lower() for x in w.vsrc],
                           isrc=[x.lower() for x in w.isrc],
                           shorts=[(k, s.lower()) for k, s in sorted(w.short.items())])
    nodes = [""] + [x if _PORT.match(x) else f"{INSTANCE}.{x}" for x in w.node[1:]]
    return SpiceNaming(nodes=nodes, vsrc=list(w.vsrc), isrc=[],
                       shorts=[(k, f"v.{INSTANCE}.{s}") for k, s in sorted(w.short.items())])


def spice_naming(circuit: Circuit) -> SpiceNaming:
    """How ngspice names the nodes and sources of ``circuit``'s deck (without writing it)."""
    return _naming(_written(circuit))


@dataclass(frozen=True, slots=True)
class CrossbarDeck:
    """A crossbar's ngspice deck in the pieces :func:`render_ngspice` joins, for writers that
    place them apart (the tape-out puts the subcircuit and its test bench in two files).

    Attributes:
        title: the first line.
        header: comment lines (array, sides, parasitics, bias, node names).
        params: ``.param`` lines of the uniform resistances (empty when none is uniform).
        subckt_open: the ``.subckt <name> <ports>`` line and its continuations.
        subckt_body: the elements through ``.ends <name>``.
        bench: the instance of the subcircuit and the sources driving it.
        control: the ``.control`` … ``.endc`` block (empty when none).
        naming: how cosim's nodes and sources are named in the deck.
        options: top-level ``.options`` lines the cells need (nonlinear cells: tolerances, gmin).
    """

    title: str
    header: list[str]
    params: list[str]
    subckt_open: list[str]
    subckt_body: list[str]
    bench: list[str]
    control: list[str]
    naming: SpiceNaming
    options: tuple[str, ...] = ()

    def text(self) -> str:
        params = ["", *self.params, *self.options] if self.params or self.options else []
        lines = [self.title, *self.header, *params, "", *self.subckt_open, *self.subckt_body, "", *self.bench]
        lines += ["", ".control", *self.control, ".endc"] if self.control else []
        return "\n".join([*lines, ".end"]) + "\n"


def crossbar_deck(circuit: Circuit, *, values: np.ndarray, title: str | None = None,
                  spec: CrossbarSpec | None = None, subckt: str | None = None,
                  control: Callable[[SpiceNaming], Sequence[str]] | None = None) -> CrossbarDeck:
    """The pieces of a crossbar circuit's deck (see :class:`CrossbarDeck`); ``subckt`` names the
    subcircuit (default ``xbar_<N>x<M>``)."""
    c = circuit
    w = _written(c)
    lay = c.layout
    if not w.crossbar:
        raise NetlistError("crossbar_deck needs a crossbar circuit (built from a spec)")
    if spec is not None and spec.shape != (lay.n_rows, lay.n_cols):
        raise NetlistError(f"spec is {spec.shape[0]}x{spec.shape[1]} but the circuit is {lay.n_rows}x{lay.n_cols}")
    naming = _naming(w)
    params, sub_open, sub_body, bench = _crossbar_body(c, w, values, subckt or f"xbar_{lay.n_rows}x{lay.n_cols}")
    return CrossbarDeck(title=" ".join((title or c.title or "cosim circuit").split()),
                        header=_header(c, spec, w.blocks), params=params, subckt_open=sub_open,
                        subckt_body=sub_body, bench=bench,
                        control=list(control(naming)) if control is not None else [], naming=naming,
                        options=(netlist_cells.OPTIONS,) if c.cell_law is not None else ())


def render_ngspice(circuit: Circuit, *, values: np.ndarray, title: str | None = None,
                   spec: CrossbarSpec | None = None,
                   control: Callable[[SpiceNaming], Sequence[str]] | None = None,
                   ) -> tuple[str, SpiceNaming]:
    """The ngspice deck of ``circuit`` with voltage sources at ``values`` (V), and its naming.

    ``control(naming)`` gives the lines of a ``.control`` block (none when None). Used by
    :func:`write_netlist` and by the spice engine, which needs the naming to read results.
    """
    c = circuit
    w = _written(c)
    if w.crossbar:
        deck = crossbar_deck(c, values=values, title=title, spec=spec, control=control)
        return deck.text(), deck.naming
    naming = _naming(w)
    lines = [" ".join((title or c.title or "cosim circuit").split())]
    lines.append("* cosim circuit netlist, ngspice dialect (run: ngspice -b <this file>)")
    lines += _resistor_lines(w.res, c.res_a, c.res_b, c.res_g, w.node, None, w.short)
    lines += _source_lines(c, w.node, w.vsrc, w.isrc, values)
    if control is not None:
        lines += ["", ".control", *control(naming), ".endc"]
    lines.append(".end")
    return "\n".join(lines) + "\n", naming


def _source_lines(c: Circuit, node, vsrc, isrc, values) -> list[str]:
    lines = [f"{vsrc[k]} {node[c.vsrc_p[k]]} {node[c.vsrc_n[k]]} dc {format_value(values[k])}"
             for k in range(c.vsrc_p.size)]
    lines += [f"{isrc[k]} {node[c.isrc_a[k]]} {node[c.isrc_b[k]]} dc {format_value(c.isrc_dc[k])}"
              for k in range(c.isrc_dc.size)]
    return lines


def _crossbar_body(c: Circuit, w: _Written, values, sub: str
                   ) -> tuple[list[str], list[str], list[str], list[str]]:
    """(.param lines, .subckt opening lines, elements through .ends, bench lines)."""
    lay = c.layout
    n, m = lay.n_rows, lay.n_cols
    ports = [f"d{i}" for i in range(n)] + [f"s{j}" for j in range(m)]
    g = c.res_g
    params = {}
    for prefix, sl in w.blocks.items():
        name = PARAM_OF_BLOCK.get(prefix)
        finite = g[sl][np.isfinite(g[sl]) & (g[sl] > 0)]
        if name and finite.size and (finite == finite[0]).all():
            if params.setdefault(name, finite[0]) != finite[0]:  # left/right drivers differ
                params[name] = None
    params = {k: v for k, v in params.items() if v is not None}
    param_lines = [".param " + " ".join(f"{k}={format_resistance(v)}" for k, v in params.items())] if params else []
    opening = _wrap(f".subckt {sub}", ports)
    body: list[str] = []
    for prefix, sl in w.blocks.items():
        if prefix == "rg" and c.cell_law is not None:
            a, b = c.res_a[sl], c.res_b[sl]
            pre, cells = netlist_cells.cell_lines(c.cell_law, (n, m), lambda i, j: w.node[a[i * m + j]],  # noqa: B023
                                                  lambda i, j: w.node[b[i * m + j]])  # noqa: B023
            body += [f"* {BLOCK_NOTES['rg']}, nonlinear", *pre, *cells]
            continue
        pname = PARAM_OF_BLOCK.get(prefix)
        idx = range(sl.start, sl.stop)
        lines = _resistor_lines(w.res[sl], c.res_a[sl], c.res_b[sl], g[sl], w.node,
                                pname if pname in params else None,
                                {k - sl.start: w.short[k] for k in idx if k in w.short})
        if lines:
            body += [f"* {BLOCK_NOTES.get(prefix, prefix)}", *lines]
    body.append(f".ends {sub}")
    bench = _wrap(INSTANCE, ports + [sub]) + _source_lines(c, w.node, w.vsrc, [], values)
    return param_lines, opening, body, bench


def default_control(circuit: Circuit, naming: SpiceNaming) -> list[str]:
    """``op`` and a full-precision ``print``: the outputs of a crossbar, everything otherwise."""
    lines = ["set numdgt=17", "op"]
    if circuit.layout is not None and circuit.out_src.size:
        vecs = [f"{naming.vsrc[k]}#branch" for k in circuit.out_src]
        lines += ["print " + " ".join(vecs[i:i + 8]) for i in range(0, len(vecs), 8)]
    else:
        lines.append("print all")
    # batch mode exits with status 1 when a deck has no .print line unless told otherwise
    return lines + ["* quit 0: ngspice -b exits 0; remove it to stay in interactive ngspice", "quit 0"]


def write_ngspice(circuit: Circuit, *, inputs=None, title: str | None = None,
                  spec: CrossbarSpec | None = None) -> str:
    """The ngspice deck of ``circuit``; sources take the first vector of ``inputs`` (V) or 0 V."""
    text, _ = render_ngspice(circuit, values=deck_source_values(circuit, inputs), title=title, spec=spec,
                             control=lambda naming: default_control(circuit, naming))
    return text


WRITERS = {"ngspice": write_ngspice}


def write_netlist(circuit: Circuit, *, inputs=None, title: str | None = None,
                  spec: CrossbarSpec | None = None, dialect: str = "ngspice") -> str:
    """SPICE text of ``circuit`` in ``dialect`` (only "ngspice"); see the module docstring.

    ``inputs`` (B, n_inputs) or (n_inputs,) volts: the port sources take the first vector's
    values (0 V for every input when None). ``spec`` adds the bias scheme and selected lines to
    a crossbar deck's header.
    """
    if dialect not in WRITERS:
        raise NetlistError(f"unknown netlist dialect {dialect!r}; choose one of {', '.join(WRITERS)}")
    return WRITERS[dialect](circuit, inputs=inputs, title=title, spec=spec)


def save_text(text: str, path) -> None:
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, then rename)."""
    atomic_write(path, text, what="netlist")
