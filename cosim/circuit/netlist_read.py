"""Read the SPICE subset designers hand around into a flat :class:`Circuit`.

Supported: the title line; ``R``, ``V``, ``I`` elements with DC values (``DC`` optional, ``AC``
specs ignored); ``X`` instances of ``.subckt`` definitions (nested, with default and instance
parameters); ``.param`` with expressions (``+ - * / ** ^``, parentheses, functions, other
params, as ``{expr}`` or ``'expr'``); ``.include`` (relative to the including file); ``.global``;
``+`` continuation lines; ``*`` comment lines and ``;``/``$`` inline comments; engineering
suffixes (:mod:`cosim.circuit.units`); ``.end`` (a no-op, as in ngspice-39, which reads on
past it; a warning is logged). ``.control`` blocks, analyses, ``.options`` and
``.model`` cards are ignored (cosim computes the DC operating point itself).

Names follow ngspice, so results can be compared by name with ngspice's own output: everything
is lower-cased; inside instance ``xa`` a node ``mid`` is ``xa.mid`` and an element ``r1`` is
``r.xa.r1`` (its letter, the instance path, its name); nested instance ``xb`` in ``xa`` gives
``xa.xb.mid`` and ``r.xa.xb.r1``. A source ``v1`` in ``xa`` prints as ``v.xa.v1#branch``.

Every error is a :class:`NetlistError` that starts with ``file:line:``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cosim.circuit.model import Circuit, ListNames
from cosim.circuit.units import NUMBER, eval_expression, parse_value
from cosim.errors import NetlistError

log = logging.getLogger(__name__)

GROUND = ("0", "gnd")
# a token: words with {…} (one level of nesting inside), '…' or "…" parts, no blanks outside them
_TOKENS = re.compile(r"""(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}|'[^']*'|"[^"]*"|[^\s{'"])+""")
_NAME = re.compile(r"\s*[a-z_][a-z0-9_.]*\s*")
IGNORED = {".op", ".option", ".options", ".opt", ".temp", ".tran", ".dc", ".ac", ".noise", ".tf",
           ".sens", ".pz", ".disto", ".four", ".fourier", ".print", ".plot", ".save", ".probe",
           ".meas", ".measure", ".ic", ".nodeset", ".width", ".model", ".csparam", ".title"}
# resistor instance parameters with no effect on a DC operating point at nominal temperature
R_IGNORED = {"tc1", "tc2", "tce", "temp", "dtemp", "noisy", "ac"}


@dataclass(slots=True)
class Line:
    """A logical line (continuations joined), lower-cased, and where it starts."""

    text: str
    where: str


@dataclass(slots=True)
class Subckt:
    name: str
    ports: list[str]
    defaults: dict[str, tuple[str, str]]  # param → (expression, where)
    where: str
    body: list[tuple[list[str], str]] = field(default_factory=list)
    params: dict[str, tuple[str, str]] = field(default_factory=dict)
    defs: dict[str, Subckt] = field(default_factory=dict)


class Scope:
    """Parameters visible at one level: lazily evaluated, with cycle detection."""

    def __init__(self, exprs: dict[str, tuple[str, str]], parent: Scope | None,
                 defs: dict[str, Subckt], values: dict[str, float] | None = None):
        self.exprs, self.parent, self.defs = exprs, parent, defs
        self.values = dict(values or {})
        self._busy: set[str] = set()

    def lookup(self, name: str, where: str) -> float:
        scope = self
        while scope is not None:
            if name in scope.values:
                return scope.values[name]
            if name in scope.exprs:
                return scope._evaluate(name)
            scope = scope.parent
        raise NetlistError(f"{where}: undefined parameter {name!r}")

    def _evaluate(self, name: str) -> float:
        text, where = self.exprs[name]
        if name in self._busy:
            raise NetlistError(f"{where}: parameter {name!r} is defined in terms of itself (recursion)")
        self._busy.add(name)
        try:
            value = self.value(text, where)
        finally:
            self._busy.discard(name)
        self.values[name] = value
        return value

    def value(self, token: str, where: str) -> float:
        """A number, ``{expr}``, ``'expr'``, bare expression or parameter name."""
        if token[:1] in "{'\"":
            token = token[1:-1]
        if NUMBER.fullmatch(token):
            return parse_value(token, where=where)
        if _NAME.fullmatch(token):  # {r_row}: a bare parameter, no expression to parse
            return self.lookup(token.strip(), where)
        return eval_expression(token, lambda n: self.lookup(n, where), where=where)

    def find(self, name: str) -> tuple[Subckt, Scope] | None:
        scope = self
        while scope is not None:
            if name in scope.defs:
                return scope.defs[name], scope
            scope = scope.parent
        return None


# -- stage 1: files → logical lines -------------------------------------------------------------
def _strip_comment(raw: str) -> str:
    if raw.lstrip().startswith("*"):
        return ""
    cut = raw.find(";")
    if cut >= 0:
        raw = raw[:cut]
    m = re.search(r"(^|\s)\$", raw)
    return raw[: m.start()] if m else raw


def _include_path(line: str, base: Path, where: str) -> Path:
    parts = line.split(None, 1)
    if len(parts) < 2:
        raise NetlistError(f"{where}: .include needs a file name")
    name = parts[1].strip().strip("'\"")
    path = Path(name).expanduser()
    return path if path.is_absolute() else base / path


def _logical_lines(path: Path, text: str, label: str, top: bool, stack: tuple[Path, ...],
                   out: list[Line], title: list[str]) -> None:
    raw_lines = text.splitlines()
    in_control = False
    ended = ""
    start = 0
    if top:
        title.append(raw_lines[0].strip() if raw_lines else "")
        start = 1
    for k in range(start, len(raw_lines)):
        where = f"{label}:{k + 1}"
        raw = _strip_comment(raw_lines[k]).strip()
        if not raw:
            continue
        low = raw.lower()
        word = low.split(None, 1)[0]
        if in_control:
            in_control = word != ".endc"
            continue
        if word == ".control":
            in_control = True
            continue
        if raw.startswith("+"):
            if not out:
                raise NetlistError(f"{where}: continuation line '+' with no line to continue")
            out[-1].text += " " + low[1:].strip()
            continue
        if word in (".include", ".inc"):
            inc = _include_path(raw, path.parent, where).resolve()
            if inc in stack:
                raise NetlistError(f"{where}: recursive .include of {inc}")
            try:
                inc_text = inc.read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise NetlistError(f"{where}: cannot read included file {inc}: {exc.strerror}") from None
            _logical_lines(inc, inc_text, str(inc), False, (*stack, inc), out, title)
            continue
        if word == ".end":
            # ngspice-39 reads on past .end (checked), so cosim does too, and says so
            ended = where
            continue
        if ended:
            log.warning("%s: %s follows .end at %s; ngspice reads it, and so does cosim", where, word, ended)
            ended = ""
        out.append(Line(low, where))
    if in_control:
        raise NetlistError(f"{label}: .control block not closed by .endc")


# -- stage 2: logical lines → definitions -------------------------------------------------------
def tokenize(text: str, where: str) -> list[str]:
    """Split on blanks, keeping ``{…}``, ``'…'`` and ``"…"`` whole and gluing ``a = b`` to ``a=b``."""
    if not any(ch in text for ch in "{'\"="):
        return text.split()  # most lines of a large deck
    toks = _TOKENS.findall(text)
    if "".join("".join(toks).split()) != "".join(text.split()):  # deeper nesting or unbalanced
        toks = _walk(text, where)
    glued: list[str] = []
    for t in toks:
        if len(glued) > 1 and (t.startswith("=") or glued[-1].endswith("=")):
            glued[-1] += t
        else:
            glued.append(t)
    return glued


def _walk(text: str, where: str) -> list[str]:
    toks, cur, i, n = [], "", 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            if cur:
                toks.append(cur)
                cur = ""
            i += 1
            continue
        if ch == "{":
            depth, j = 0, i
            while j < n:
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
        elif ch in "'\"":
            j = text.find(ch, i + 1)
        else:
            cur += ch
            i += 1
            continue
        if j < 0 or j >= n:
            raise NetlistError(f"{where}: unbalanced {ch} in {text.strip()!r}")
        cur += text[i:j + 1]
        i = j + 1
    if cur:
        toks.append(cur)
    return toks


def _assignments(tokens: list[str], where: str) -> dict[str, tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    last = None
    for t in tokens:
        if t == "params:":
            continue
        name, eq, expr = t.partition("=")
        if not eq and last is not None:  # ".param a = 1 + 2": blanks inside a bare expression
            out[last] = (f"{out[last][0]} {t}", where)
            continue
        if not eq or not name or not expr:
            raise NetlistError(f"{where}: expected name=value, got {t!r}")
        out[name] = (expr, where)
        last = name
    return out


def _definitions(lines: list[Line]) -> tuple[Subckt, set[str]]:
    top = Subckt("", [], {}, "")
    stack = [top]
    globals_: set[str] = set()
    for line in lines:
        toks = tokenize(line.text, line.where)
        word = toks[0]
        cur = stack[-1]
        if word == ".subckt":
            if len(toks) < 2:
                raise NetlistError(f"{line.where}: .subckt needs a name and its ports")
            rest = toks[2:]
            first_kw = next((k for k, t in enumerate(rest) if "=" in t or t == "params:"), len(rest))
            sub = Subckt(toks[1], rest[:first_kw], _assignments(rest[first_kw:], line.where), line.where)
            if sub.name in cur.defs:
                raise NetlistError(f"{line.where}: subcircuit {sub.name} is already defined at {cur.defs[sub.name].where}")
            cur.defs[sub.name] = sub
            stack.append(sub)
        elif word == ".ends":
            if len(stack) == 1:
                raise NetlistError(f"{line.where}: .ends without a matching .subckt")
            if len(toks) > 1 and toks[1] != cur.name:
                raise NetlistError(f"{line.where}: .ends {toks[1]} closes subcircuit {cur.name}")
            stack.pop()
        elif word == ".param":
            cur.params.update(_assignments(toks[1:], line.where))
        elif word == ".global":
            globals_.update(toks[1:])
        elif word in IGNORED:
            continue
        elif word.startswith("."):
            raise NetlistError(f"{line.where}: unsupported directive {word} (cosim reads R, V, I, X, "
                               ".subckt, .param, .include, .global)")
        elif word[0] in "rvix":
            cur.body.append((toks, line.where))
        else:
            raise NetlistError(f"{line.where}: unknown element {word!r}: cosim reads R (resistor), "
                               "V and I (DC sources) and X (subcircuit instance)")
    if len(stack) > 1:
        raise NetlistError(f"{stack[-1].where}: .subckt {stack[-1].name} is not closed by .ends")
    return top, globals_


# -- stage 3: flatten ----------------------------------------------------------------------------
class _Builder:
    def __init__(self, globals_: set[str]):
        self.globals = globals_
        self.nodes = ["0"]
        self.node_id = {"0": 0}
        self.res: list[tuple[int, int, float, str]] = []
        self.vsrc: list[tuple[int, int, float, str]] = []
        self.isrc: list[tuple[int, int, float, str]] = []
        self.seen: dict[str, str] = {}

    def node(self, name: str, path: str, ports: dict[str, str]) -> int:
        if name in ports:
            name = ports[name]
        elif name in GROUND:
            name = "0"
        elif path and name not in self.globals:
            name = f"{path}.{name}"
        if name not in self.node_id:
            self.node_id[name] = len(self.nodes)
            self.nodes.append(name)
        return self.node_id[name]

    def expand(self, sub: Subckt, scope: Scope, path: str, ports: dict[str, str],
               chain: tuple[str, ...]) -> None:
        for toks, where in sub.body:
            name = toks[0]
            full = f"{name[0]}.{path}.{name}" if path else name
            if full in self.seen:
                raise NetlistError(f"{where}: duplicate element {full} (first at {self.seen[full]})")
            self.seen[full] = where
            if name[0] == "x":
                self._instance(toks, where, scope, path, ports, chain)
                continue
            if len(toks) < 3:
                raise NetlistError(f"{where}: {name} needs two nodes and a value")
            a, b = (self.node(t, path, ports) for t in toks[1:3])
            if name[0] == "r":
                self.res.append((a, b, self._resistance(toks, where, scope), full))
            else:
                value = self._source_value(toks, where, scope)
                (self.vsrc if name[0] == "v" else self.isrc).append((a, b, value, full))

    @staticmethod
    def _resistance(toks: list[str], where: str, scope: Scope) -> float:
        value, mult = None, 1.0
        for t in toks[3:]:
            key, eq, expr = t.partition("=")
            if not eq:
                if value is not None:
                    raise NetlistError(f"{where}: unexpected {t!r} after the value of {toks[0]}")
                value = scope.value(t, where)
            elif key in ("r", "resistance"):
                value = scope.value(expr, where)
            elif key == "m":
                mult = scope.value(expr, where)
            elif key not in R_IGNORED:
                raise NetlistError(f"{where}: unsupported resistor parameter {key!r} on {toks[0]}")
        if value is None:
            raise NetlistError(f"{where}: resistor {toks[0]} has no value")
        if mult <= 0:
            raise NetlistError(f"{where}: m= of {toks[0]} must be > 0, got {mult!r}")
        if value == 0:
            return np.inf
        return mult / value

    @staticmethod
    def _source_value(toks: list[str], where: str, scope: Scope) -> float:
        rest, value, k = toks[3:], 0.0, 0
        while k < len(rest):
            t = rest[k]
            if t in ("dc", "ac"):
                if k + 1 < len(rest) and "(" not in rest[k + 1] and rest[k + 1] not in ("dc", "ac"):
                    if t == "dc":
                        value = scope.value(rest[k + 1], where)
                    k += 2
                    # an AC phase may follow the magnitude
                    if t == "ac" and k < len(rest) and rest[k] not in ("dc", "ac") and "(" not in rest[k]:
                        k += 1
                    continue
                k += 1
                continue
            if t.startswith("dc="):
                value = scope.value(t[3:], where)
            elif k == 0 and "(" not in t and "=" not in t:
                value = scope.value(t, where)
            else:
                raise NetlistError(f"{where}: only DC values are supported on {toks[0]}, got {t!r}")
            k += 1
        return value

    def _instance(self, toks, where, scope: Scope, path: str, ports: dict[str, str], chain) -> None:
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
        for key, (expr, w) in _assignments(args[first_kw:], where).items():
            if key not in sub.defaults:
                raise NetlistError(f"{where}: subcircuit {sub_name} has no parameter {key!r}")
            overrides[key] = scope.value(expr, w)
        # parameters: instance values, then defaults, then the .param lines of the body
        inner = Scope({**sub.params, **sub.defaults}, def_scope, sub.defs, overrides)
        for key in sub.params:
            if key in sub.defaults:
                raise NetlistError(f"{sub.params[key][1]}: .param {key} shadows a parameter of {sub_name}")
        mapped = {port: self.nodes[self.node(node, path, ports)] for port, node in zip(sub.ports, nodes)}
        inst_path = f"{path}.{name}" if path else name
        self.expand(sub, inner, inst_path, mapped, (*chain, sub_name))


def read_netlist(source: str | Path, *, text: str | None = None) -> Circuit:
    """The flat circuit of a SPICE deck (file ``source``, or ``text`` with ``source`` as its name).

    Returns a general :class:`Circuit`: no layout, no inputs, and every voltage source an output
    (``currents`` are the source branch currents, SPICE sign). Raises :class:`NetlistError`
    with ``file:line`` for malformed lines, unknown elements or directives, undefined
    subcircuits or parameters, wrong port counts and recursion.
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
    _logical_lines(base, text, str(source) or "<text>", True, (base,), lines, title)
    top, globals_ = _definitions(lines)
    builder = _Builder(globals_)
    builder.expand(top, Scope(top.params, None, top.defs), "", {}, ())
    b = builder

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
        title=title[0] if title else "", key=f"netlist-{digest}",
    )
