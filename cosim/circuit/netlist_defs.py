"""Stage 2 of the netlist reader: logical lines → definitions.

Splits lines into tokens, collects ``.subckt`` bodies, ``.param``, ``.model``, ``.global``,
``.options`` and ``.temp``, and keeps the branch of each ``.if``/``.elseif``/``.else``/``.endif``
whose condition holds. Parameters are evaluated lazily by :class:`Scope`, dependencies first on
an explicit stack (a 500-deep ``.param`` chain is ordinary input, not a RecursionError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cosim.circuit.expressions import eval_expression, names_in
from cosim.circuit.netlist_lines import Line
from cosim.circuit.units import NUMBER, parse_value
from cosim.errors import NetlistError

# a token: words with {…} (one level of nesting inside), '…' or "…" parts, no blanks outside them
_TOKENS = re.compile(r"""(?:\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}|'[^']*'|"[^"]*"|[^\s{'"])+""")
_NAME = re.compile(r"\s*[a-z_][a-z0-9_.]*\s*")
_SPECIAL = re.compile(r"[{'\"=]")
_IDENT = re.compile(r"[a-z_][a-z0-9_.]*")
# directives with no effect on a linear DC operating point (analyses, output, hints)
IGNORED = {".op", ".tran", ".dc", ".ac", ".noise", ".tf", ".sens", ".pz", ".disto", ".four",
           ".fourier", ".print", ".plot", ".save", ".probe", ".meas", ".measure", ".nodeset",
           ".ic", ".width", ".csparam", ".title"}
# .options that cannot change a linear DC operating point (tolerances, output, iteration
# limits, integration, MOS defaults); rshunt, temp and tnom are modelled; the rest is refused.
HARMLESS_OPTIONS = {
    "gmin", "reltol", "abstol", "vntol", "chgtol", "trtol", "itl1", "itl2", "itl3", "itl4",
    "itl5", "itl6", "method", "maxord", "noacct", "acct", "nopage", "list", "node", "opts",
    "numdgt", "keepopinfo", "savecurrents", "klu", "sparse", "noinit", "warn", "interp",
    "norefvalue", "gminsteps", "srcsteps", "trytocompact", "seed", "post", "ingold", "measdgt",
    "nomod", "badmos3", "pivtol", "pivrel", "defl", "defw", "defad", "defas", "bypass", "cshunt",
    "xmu", "maxwarns", "autostop", "noopiter", "nosubckt", "filetype", "probe", "brief",
    "accurate", "pivot", "lvltim", "gshunt_tran",
}


@dataclass(slots=True)
class Subckt:
    name: str
    ports: list[str]
    defaults: dict[str, tuple[str, str]]  # param → (expression, where)
    where: str
    body: list[tuple[list[str], str]] = field(default_factory=list)
    params: dict[str, tuple[str, str]] = field(default_factory=dict)
    defs: dict[str, Subckt] = field(default_factory=dict)
    models: dict[str, tuple[str, dict[str, tuple[str, str]], str]] = field(default_factory=dict)


@dataclass(slots=True)
class Deck:
    """Everything stage 2 collects: the top level, globals and the options that matter."""

    top: Subckt
    globals: set[str]
    options: dict[str, tuple[str, str]]  # rshunt / temp / tnom → (expression, where)


class Scope:
    """Parameters visible at one level: lazily evaluated, with cycle detection."""

    def __init__(self, exprs: dict[str, tuple[str, str]], parent: Scope | None,
                 defs: dict[str, Subckt], values: dict[str, float] | None = None,
                 models: dict | None = None):
        self.exprs, self.parent, self.defs = exprs, parent, defs
        self.models = models or {}
        self.values = dict(values or {})

    def _owner(self, name: str) -> Scope | None:
        scope = self
        while scope is not None:
            if name in scope.values or name in scope.exprs:
                return scope
            scope = scope.parent
        return None

    def lookup(self, name: str, where: str) -> float:
        owner = self._owner(name)
        if owner is None:
            raise NetlistError(f"{where}: undefined parameter {name!r}")
        if name not in owner.values:
            owner._resolve(name)
        return owner.values[name]

    def _resolve(self, name: str) -> None:
        """Evaluate ``name`` after every parameter it depends on, without recursion."""
        stack: list[tuple[Scope, str]] = [(self, name)]
        expanded: set[tuple[int, str]] = set()
        while stack:
            scope, nm = stack[-1]
            if nm in scope.values:
                stack.pop()
                continue
            text, where = scope.exprs[nm]
            key = (id(scope), nm)
            pending = []
            if key not in expanded:
                expanded.add(key)
                for dep in names_in(text[1:-1] if text[:1] in "{'\"" else text):
                    owner = scope._owner(dep)
                    if owner is None or dep in owner.values:
                        continue
                    if (id(owner), dep) in expanded:
                        raise NetlistError(f"{owner.exprs[dep][1]}: parameter {dep!r} is defined in "
                                           "terms of itself (recursion)")
                    pending.append((owner, dep))
            if pending:
                stack.extend(pending)
                continue
            scope.values[nm] = scope.value(text, where)
            stack.pop()

    def value(self, token: str, where: str) -> float:
        """A number, ``{expr}``, ``'expr'``, bare expression or parameter name."""
        if token[:1] in "{'\"":
            token = token[1:-1]
        if NUMBER.fullmatch(token):
            return parse_value(token, where=where)
        if _NAME.fullmatch(token):  # {r_row}: a bare parameter, no expression to parse
            return self.lookup(token.strip(), where)
        return eval_expression(token, lambda n: self.lookup(n, where), where=where)

    def element_value(self, token: str, where: str) -> float:
        """A value on an element or .model line: a number, a parameter name or ``{expr}``/``'expr'``.

        An unbraced expression is refused: ngspice reads its leading number and drops the rest
        (``3.1+04`` is 3.1 there) or fails (``1k*2``), so no reading of it is safe.
        """
        if token[:1] in "{'\"" or NUMBER.fullmatch(token) or _NAME.fullmatch(token):
            return self.value(token, where)
        raise NetlistError(f"{where}: {token!r} is not a number or a parameter name; write an "
                           "expression in {…} (ngspice would read only its leading number)")

    def find(self, name: str) -> tuple[Subckt, Scope] | None:
        scope = self
        while scope is not None:
            if name in scope.defs:
                return scope.defs[name], scope
            scope = scope.parent
        return None

    def model(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.models:
                return scope.models[name]
            scope = scope.parent
        return None


# A node or element name with one of these is a value or an expression where a name belongs; a comma
# is a field separator to ngspice ("p, q" are two ports), so "p," would silently be another node.
BAD_NAME_CHARS = re.compile(r"[=(){}'\",]")


def check_node_name(name: str, where: str) -> None:
    """Raise :class:`NetlistError` unless ``name`` can be a node (element, port or .global)."""
    if BAD_NAME_CHARS.search(name):
        raise NetlistError(f"{where}: {name!r} is not a node name (a value or parameter where "
                           "a node belongs?)")


def tokenize(text: str, where: str) -> list[str]:
    """Split on blanks, keeping ``{…}``, ``'…'`` and ``"…"`` whole and gluing ``a = b`` to ``a=b``."""
    if not _SPECIAL.search(text):
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


def assignments(tokens: list[str], where: str, join: bool = True) -> dict[str, tuple[str, str]]:
    """``name=value`` tokens (blanks inside a bare expression re-joined) → {name: (expr, where)}.

    ``join=False`` (instance lines) refuses such blanks: ngspice keeps only the first part there.
    """
    out: dict[str, tuple[str, str]] = {}
    last = None
    several = sum(1 for t in tokens if "=" in t and t[:1] not in "{'\"") > 1
    for t in tokens:
        if t == "params:":
            continue
        name, eq, expr = t.partition("=")
        if not eq and last is not None and join:  # ".param a = 1 + 2": blanks in a bare expression
            if several:  # ngspice drops the rest of "a=2 -1" when more assignments share the line
                raise NetlistError(f"{where}: {last}={out[last][0]} {t}: an expression with blanks "
                                   "among several assignments is read differently by ngspice; "
                                   "put it in {…}")
            out[last] = (f"{out[last][0]} {t}", where)
            continue
        if not eq or not name or not expr:
            raise NetlistError(f"{where}: expected name=value, got {t!r}")
        if not _IDENT.fullmatch(name):
            raise NetlistError(f"{where}: {name!r} is not a parameter name (user functions, "
                               ".func and f(x)=…, are not supported)")
        out[name] = (expr, where)
        last = name
    return out


def _model(toks: list[str], where: str) -> tuple[str, str, dict[str, tuple[str, str]]]:
    if len(toks) < 3:
        raise NetlistError(f"{where}: .model needs a name and a type")
    text = " ".join(toks[2:]).replace("(", " ").replace(")", " ")
    kind, *rest = text.split()
    return toks[1], kind, assignments(tokenize(" ".join(rest), where), where)


class _Conditions:
    """The ``.if`` stack: each entry (parent active, a branch already taken, this branch active)."""

    def __init__(self):
        self.stack: list[list[bool]] = []

    @property
    def active(self) -> bool:
        return not self.stack or self.stack[-1][2]

    def handle(self, word: str, line: Line, cond) -> bool:
        """Process a conditional directive; False when ``word`` is not one."""
        w = line.where
        if word == ".if":
            parent = self.active
            hit = parent and cond()
            self.stack.append([parent, hit, hit])
        elif word in (".elseif", ".elif", ".else"):
            if not self.stack:
                raise NetlistError(f"{w}: {word} without .if")
            parent, taken, _ = self.stack[-1]
            hit = parent and not taken and (word == ".else" or cond())
            self.stack[-1] = [parent, taken or hit, hit]
        elif word == ".endif":
            if not self.stack:
                raise NetlistError(f"{w}: .endif without .if")
            self.stack.pop()
        else:
            return False
        return True


def definitions(lines: list[Line]) -> Deck:
    """Collect the deck's definitions; see the module docstring."""
    top = Subckt("", [], {}, "")
    stack = [top]
    globals_: set[str] = set()
    options: dict[str, tuple[str, str]] = {}
    conds = _Conditions()
    opened = []
    for line in lines:
        word = line.text.split(None, 1)[0]
        cur = stack[-1]
        if word[0] != "." and conds.active:  # an element line: most of a large deck
            cur.body.append((tokenize(line.text, line.where), line.where))
            continue

        def condition(line=line, cur=cur):  # evaluated only for .if/.elseif lines
            expr = line.text.split(None, 1)[1] if " " in line.text else ""
            if not expr.strip():
                raise NetlistError(f"{line.where}: {line.text.split()[0]} needs a condition")
            inner = set(cur.defaults) | set(cur.params)
            for sub in stack[1:]:
                inner |= set(sub.defaults) | set(sub.params)
            used = set(names_in(expr)) & inner
            if len(stack) > 1 and used:
                raise NetlistError(f"{line.where}: a .if inside a subcircuit that depends on its "
                                   f"parameters ({', '.join(sorted(used))}) is not supported")
            return bool(Scope(top.params, None, {}).value("{" + expr + "}", line.where))

        if word in (".if", ".elseif", ".elif", ".else", ".endif"):
            conds.handle(word, line, condition)
            if word == ".if":
                opened.append(line.where)
            elif word == ".endif":
                opened.pop()
            continue
        if conds.stack and word in (".param", ".option", ".options", ".opt"):
            # ngspice applies these whatever the condition (checked): no reading of them is safe
            raise NetlistError(f"{line.where}: {word} inside .if/.else is applied by ngspice whether "
                               "or not its branch is taken; move it out of the block")
        if not conds.active:
            continue
        toks = tokenize(line.text, line.where)
        if word == ".subckt":
            if len(toks) < 2:
                raise NetlistError(f"{line.where}: .subckt needs a name and its ports")
            rest = toks[2:]
            first_kw = next((k for k, t in enumerate(rest) if "=" in t or t == "params:"), len(rest))
            for port in rest[:first_kw]:
                check_node_name(port, line.where)
            sub = Subckt(toks[1], rest[:first_kw], assignments(rest[first_kw:], line.where), line.where)
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
            cur.params.update(assignments(toks[1:], line.where))
        elif word == ".global":
            for name in toks[1:]:
                check_node_name(name, line.where)
            globals_.update(toks[1:])
        elif word == ".model":
            name, kind, params = _model(toks, line.where)
            if name in cur.models:  # ngspice silently keeps one of them: refused
                raise NetlistError(f"{line.where}: model {name} is already defined at {cur.models[name][2]}")
            cur.models[name] = (kind, params, line.where)
        elif word in (".option", ".options", ".opt"):
            _options(toks[1:], line.where, options, nested=len(stack) > 1)
        elif word == ".temp":
            if len(toks) != 2:
                raise NetlistError(f"{line.where}: .temp takes one temperature (°C); cosim solves one operating point")
            if not (_PLAIN_NUMBER.fullmatch(toks[1]) or toks[1].startswith("{")):
                # ngspice ignores such a .temp line and solves at 27 °C (checked: 21.788a, 21.788m, 1k,
                # 21.788C); cosim would apply the suffix, so the two would differ silently
                raise NetlistError(f"{line.where}: .temp {toks[1]}: ngspice reads .temp only as a plain "
                                   "number or a {{expression}} (it ignores this line); write the °C value without a suffix")
            options[".temp"] = (toks[1], line.where)  # wins over .options temp (ngspice, checked)
        elif word in IGNORED:
            continue
        elif word.startswith("."):
            raise NetlistError(f"{line.where}: unsupported directive {word} (cosim reads .subckt, "
                               ".param, .include, .lib, .global, .model, .options, .temp, .if)")
        else:
            cur.body.append((toks, line.where))
    if len(stack) > 1:
        raise NetlistError(f"{stack[-1].where}: .subckt {stack[-1].name} is not closed by .ends")
    if opened:
        raise NetlistError(f"{opened[-1]}: .if is not closed by .endif")
    return Deck(top, globals_, options)


#: What ngspice's .temp reads (a suffix or unit letter makes it ignore the line).
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _options(toks: list[str], where: str, options: dict, nested: bool) -> None:
    for t in toks:
        key, eq, value = t.partition("=")
        if key in ("rshunt", "temp", "tnom"):
            if not eq:
                raise NetlistError(f"{where}: .options {key} needs a value")
            if nested:
                raise NetlistError(f"{where}: .options {key} inside a subcircuit is not supported")
            options[key] = (value, where)
        elif key not in HARMLESS_OPTIONS:
            raise NetlistError(f"{where}: unsupported .options {key}: it may change the DC "
                               "answer and cosim does not model it")
