"""Read the SPICE decks designers hand around into a flat :class:`Circuit`, or refuse them.

Stages, each a function you can test alone: files → logical lines
(:mod:`~cosim.circuit.netlist_lines`: continuations, comments, ``.include``, ``.lib`` sections,
``.control`` skipped), lines → definitions (:mod:`~cosim.circuit.netlist_defs`: ``.subckt``,
``.param``, ``.model``, ``.options``, ``.temp``, ``.if``), definitions → flat elements (here;
values by :mod:`~cosim.circuit.netlist_elements`).

Read at DC with ngspice's semantics: ``R`` (value, ``.model`` geometry, temperature
coefficients, ``m=``, ``scale=``; negative values are legal; 0 Ω becomes 1 mΩ as in ngspice),
``C`` (open), ``L`` (short: a 0 V source whose branch current is reported), ``V``/``I`` (DC
value, else the transient function at t = 0; AC specs ignored), linear ``E``/``F``/``G``/``H``,
``K`` (no effect at DC), ``X`` instances (nested, parameters, ``m=``), ``.options rshunt/temp/
tnom`` (and those that cannot change a linear DC answer), ``.global``, ground ``0``/``gnd``.
Nonlinear elements (D, M, Q, J, B, Z, S, W, A, N and behavioural E/G) raise
:class:`NonlinearDeck`; anything else that could change the answer is refused with
``file:line:``, never ignored.

Names follow ngspice, so results can be compared by name with ngspice's own output: everything
is lower-cased; inside instance ``xa`` a node ``mid`` is ``xa.mid`` and an element ``r1`` is
``r.xa.r1`` (its letter, the instance path, its name); nested instance ``xb`` in ``xa`` gives
``xa.xb.mid`` and ``r.xa.xb.r1``. Subcircuit ports named ``0``, ``gnd`` or a ``.global`` name
stay global, as in ngspice.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from pathlib import Path

import numpy as np

from cosim.circuit.model import Circuit, Controls, ListNames
from cosim.circuit.netlist_defs import (
    BAD_NAME_CHARS,
    Deck,
    Scope,
    Subckt,
    assignments,
    check_node_name,
    definitions,
    tokenize,
)
from cosim.circuit.netlist_elements import (
    R_MIN,
    TNOM_DEFAULT,
    NonlinearDeck,
    gain,
    resistance,
    source_value,
)
from cosim.circuit.netlist_lines import Line, logical_lines
from cosim.circuit.units import NUMBER, scale_of
from cosim.errors import NetlistError

__all__ = ["read_netlist", "tokenize", "NonlinearDeck"]
log = logging.getLogger(__name__)

GROUND = ("0", "gnd")
NONLINEAR = set("dmqjbzswan")
_PLAIN = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class _Builder:
    def __init__(self, deck: Deck, temp: float, tnom: float):
        self.globals = deck.globals
        self.temp, self.tnom = temp, tnom
        self.nodes = ["0"]
        self.node_id = {"0": 0}
        self.res: list[tuple[int, int, float, str]] = []
        self.vsrc: list[tuple[int, int, float, str]] = []
        self.isrc: list[tuple[int, int, float, str]] = []
        # control terms: (kind "v"/"i", source index, node index or controlling name, coef, where)
        self.terms: list[tuple[str, int, object, float, str]] = []
        self.seen: dict[str, str] = {}
        self.caps: list[tuple[int, int, str, str]] = []

    def node(self, name: str, path: str, ports: dict[str, str], where: str = "") -> int:
        if not path and name in self.node_id and name not in ports:  # most nodes of a big flat deck
            return self.node_id[name]
        check_node_name(name, where)
        if name in GROUND:
            name = "0"
        elif name in self.globals:
            pass
        elif name in ports:
            name = ports[name]
        elif path:
            name = f"{path}.{name}"
        if name not in self.node_id:
            self.node_id[name] = len(self.nodes)
            self.nodes.append(name)
        return self.node_id[name]

    def expand(self, sub: Subckt, scope: Scope, path: str, ports: dict[str, str],
               chain: tuple[str, ...], mult: float = 1.0) -> None:
        for toks, where in sub.body:
            name = toks[0]
            letter = name[0]
            if BAD_NAME_CHARS.search(name):  # ngspice splits "xa2," at the comma: names would differ
                raise NetlistError(f"{where}: {name!r} is not an element name")
            full = f"{letter}.{path}.{name}" if path else name
            if full in self.seen:
                raise NetlistError(f"{where}: duplicate element {full} (first at {self.seen[full]})")
            self.seen[full] = where
            if letter in NONLINEAR:
                raise NonlinearDeck(f"{where}: {name} is a nonlinear or behavioural element "
                                    f"({letter.upper()}); cosim's linear reader does not solve it")
            if letter == "x":
                self._instance(toks, where, scope, path, ports, chain, mult)
                continue
            if letter == "k":
                continue  # coupling between inductors: no effect at DC, where they are shorts
            if letter not in "rclvighef":
                raise NetlistError(f"{where}: unknown element {name!r}: cosim reads R, C, L, V, I, "
                                   "E, F, G, H, K and X (subcircuit instance)")
            if mult != 1.0 and letter not in "rci":
                raise NetlistError(f"{where}: m= on an instance containing {name} ({letter.upper()}) "
                                   "is not supported (only R, C and I scale with m)")
            if len(toks) < 3:
                raise NetlistError(f"{where}: {name} needs two nodes and a value")
            a = self.node(toks[1], path, ports, where)
            b = self.node(toks[2], path, ports, where)
            if len(toks) == 4 and letter in "riv" and _PLAIN.fullmatch(toks[3]):
                # "R1 a b 0.5": a plain number, no suffix, no parameters (power-grid decks) is
                # exactly what the general readers below would compute, without their cost
                x = float(toks[3])
                if letter == "r":
                    if x == 0:
                        x = R_MIN
                    self.res.append((a, b, mult / x, full))
                else:
                    (self.vsrc if letter == "v" else self.isrc).append((a, b, x * mult, full))
                if math.isinf(x):
                    raise NetlistError(f"{where}: the value of {name} is {x!r}; a finite number is needed")
                continue
            if letter == "r":
                g = resistance(toks, where, scope, self.temp, self.tnom)
                self.res.append((a, b, g * mult, full))
            elif letter == "c":
                self.res.append((a, b, 0.0, full))  # open at DC
                self.caps.append((a, b, full, where))
            elif letter == "l":
                self.vsrc.append((a, b, 0.0, full))  # short at DC, its current reported
            elif letter in "vi":
                value = source_value(toks, where, scope)
                (self.vsrc if letter == "v" else self.isrc).append((a, b, value * mult, full))
            else:
                self._controlled(toks, where, scope, path, ports, a, b, full)

    def _controlled(self, toks, where, scope, path, ports, a, b, full) -> None:
        letter = toks[0][0]
        kind = "v" if letter in "eh" else "i"
        (self.vsrc if kind == "v" else self.isrc).append((a, b, 0.0, full))
        k = len(self.vsrc if kind == "v" else self.isrc) - 1
        if letter in "eg":
            coef = gain(toks, 5, where, scope)
            if len(toks) < 5:
                raise NetlistError(f"{where}: {toks[0]} needs two control nodes")
            cp, cn = (self.node(t, path, ports, where) for t in toks[3:5])
            self.terms += [(kind, k, cp, coef, where), (kind, k, cn, -coef, where)]
        else:
            coef = gain(toks, 4, where, scope)
            ctrl = toks[3]
            ctrl_full = f"{ctrl[0]}.{path}.{ctrl}" if path else ctrl
            self.terms.append((kind + "i", k, ctrl_full, coef, where))

    def _instance(self, toks, where, scope: Scope, path: str, ports: dict[str, str], chain, mult) -> None:
        name = toks[0]
        args = toks[1:]
        first_kw = next((k for k, t in enumerate(args) if "=" in t or t == "params:"), len(args))
        if first_kw == 0:
            raise NetlistError(f"{where}: instance {name} needs nodes and a subcircuit name")
        sub_name, nodes = args[first_kw - 1], args[: first_kw - 1]
        found = scope.find(sub_name)
        if found is None:
            raise NetlistError(f"{where}: undefined subcircuit {sub_name!r} (instance {name})")
        sub, def_scope = found
        if sub_name in chain:
            loop = " → ".join((*chain, sub_name))
            raise NetlistError(f"{where}: subcircuit recursion {loop}")
        if len(nodes) != len(sub.ports):
            raise NetlistError(f"{where}: instance {name} gives {len(nodes)} nodes but subcircuit "
                               f"{sub_name} has {len(sub.ports)} ports ({' '.join(sub.ports)})")
        overrides = {}
        for key, (expr, w) in assignments(args[first_kw:], where, join=False).items():
            if key == "m" and key not in sub.defaults and key not in sub.params:
                m = scope.value(expr, w)
                if not (m > 0 and math.isfinite(m)):
                    raise NetlistError(f"{where}: m= of {name} must be a finite number > 0, got {m!r}")
                mult *= m
                continue
            # ngspice lets an instance set a .param of the body as well as a declared default
            if key not in sub.defaults and key not in sub.params:
                raise NetlistError(f"{where}: subcircuit {sub_name} has no parameter {key!r}")
            overrides[key] = scope.value(expr, w)
        for key in sub.params:
            if key in sub.defaults:
                raise NetlistError(f"{sub.params[key][1]}: .param {key} shadows a parameter of {sub_name}")
        # parameters: instance values, then defaults, then the .param lines of the body
        inner = Scope({**sub.params, **sub.defaults}, def_scope, sub.defs, overrides, sub.models)
        mapped = {port: self.nodes[self.node(node, path, ports, where)] for port, node in zip(sub.ports, nodes)
                  if port not in GROUND and port not in self.globals}
        inst_path = f"{path}.{name}" if path else name
        self.expand(sub, inner, inst_path, mapped, (*chain, sub_name), mult)

    def controls(self) -> Controls | None:
        if not self.terms:
            return None
        by_name = {full: k for k, (_, _, _, full) in enumerate(self.vsrc)}
        cols: dict[str, tuple[list, list, list]] = {key: ([], [], []) for key in ("v", "vi", "i", "ii")}
        for kind, k, target, coef, where in self.terms:
            if kind in ("vi", "ii"):
                if target not in by_name:
                    raise NetlistError(f"{where}: controlling source {str(target).split('.')[-1]!r} "
                                       "is not a voltage source or inductor of this circuit level")
                target = by_name[target]
            col = cols[kind]
            col[0].append(k)
            col[1].append(target)
            col[2].append(coef)
        return Controls(*cols["v"], *cols["vi"], *cols["i"], *cols["ii"])


def _check_capacitor_nodes(b: _Builder) -> None:
    """A node reached only through capacitors has no DC potential (ngspice's answer there is an
    artefact of its gmin stepping): refused."""
    if not b.caps:
        return
    touched = np.zeros(len(b.nodes), dtype=bool)
    for rows in (b.res, b.vsrc, b.isrc):
        for a, bb, g, _ in rows:
            if rows is not b.res or g != 0:
                touched[a] = touched[bb] = True
    touched[0] = True
    for kind, _k, target, _, _ in b.terms:
        if kind in ("v", "i"):
            touched[target] = True
    for a, bb, name, where in b.caps:
        for node in (a, bb):
            if not touched[node]:
                raise NetlistError(f"{where}: node {b.nodes[node]} is reached only through capacitors "
                                   f"({name}), so it has no DC potential")


def _option(deck: Deck, key: str, default: float | None) -> float | None:
    if key not in deck.options:
        return default
    expr, where = deck.options[key]
    m = NUMBER.fullmatch(expr)
    if m and m.group(2) and scale_of(m.group(3)) != 1.0:
        # ngspice's .options reader drops a scale suffix after an exponent (1e3k is 1e3 there,
        # 1e6 on an element line): refused rather than read either way
        raise NetlistError(f"{where}: {key}={expr} mixes an exponent and a scale suffix, which "
                           "ngspice reads differently in .options; write it with one of them")
    value = Scope(deck.top.params, None, {}).element_value(expr, where)  # ngspice evaluates no bare expression here
    if not math.isfinite(value):
        raise NetlistError(f"{where}: {key} must be finite, got {value!r}")
    return value


def read_netlist(source: str | Path, *, text: str | None = None) -> Circuit:
    """The flat circuit of a SPICE deck (file ``source``, or ``text`` with ``source`` as its name).

    Returns a general :class:`Circuit`: no layout, no inputs, and every voltage source an output
    (``currents`` are the source branch currents, SPICE sign). Raises :class:`NetlistError`
    with ``file:line`` for anything it cannot read or does not model (see the module
    docstring), :class:`NonlinearDeck` for nonlinear elements.
    """
    path = Path(source)
    if text is None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise NetlistError(f"{path}: cannot read the netlist: {exc.strerror}") from None
    lines: list[Line] = []
    title: list[str] = []
    base = path.resolve() if str(source) else Path.cwd() / "<text>"
    logical_lines(base, text, str(source) or "<text>", True, ((base, None),), lines, title)
    deck = definitions(lines)
    temp = _option(deck, ".temp", _option(deck, "temp", TNOM_DEFAULT))
    tnom = _option(deck, "tnom", TNOM_DEFAULT)
    rshunt = _option(deck, "rshunt", None)
    b = _Builder(deck, temp, tnom)
    b.expand(deck.top, Scope(deck.top.params, None, deck.top.defs, models=deck.top.models), "", {}, ())
    if rshunt is not None:
        if rshunt == 0:
            raise NetlistError(f"{deck.options['rshunt'][1]}: rshunt must be non-zero")
        # ngspice puts rshunt from every node to ground
        b.res += [(k, 0, 1.0 / rshunt, f"rshunt.{b.nodes[k]}") for k in range(1, len(b.nodes))]
    controls = b.controls()
    _check_capacitor_nodes(b)

    def cols(rows, k):
        return [r[k] for r in rows]

    nv = len(b.vsrc)
    digest = hashlib.sha256("\n".join(ln.text for ln in lines).encode()).hexdigest()[:16]
    return Circuit(
        node_names=ListNames(b.nodes),
        res_a=cols(b.res, 0), res_b=cols(b.res, 1), res_g=cols(b.res, 2), res_names=ListNames(cols(b.res, 3)),
        vsrc_p=cols(b.vsrc, 0), vsrc_n=cols(b.vsrc, 1), vsrc_dc=cols(b.vsrc, 2),
        vsrc_input=np.full(nv, -1), vsrc_scale=np.zeros(nv), vsrc_names=ListNames(cols(b.vsrc, 3)),
        isrc_a=cols(b.isrc, 0), isrc_b=cols(b.isrc, 1), isrc_dc=cols(b.isrc, 2),
        isrc_names=ListNames(cols(b.isrc, 3)),
        n_inputs=0, out_src=np.arange(nv), out_index=np.arange(nv), n_outputs=nv,
        title=title[0] if title else "", key=f"netlist-{digest}", controls=controls, spice_names=True,
    )
