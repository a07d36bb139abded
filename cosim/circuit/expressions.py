"""SPICE parameter expressions, evaluated without recursion.

What ngspice's numparam reads in ``.param`` values and ``{expr}`` / ``'expr'`` element values:
numbers with engineering suffixes, parameter names, ``+ - * / % ** ^``, unary ``+ - !``,
comparisons ``== != < <= > >=``, ``&& ||``, the conditional ``c ? a : b``, parentheses and the
functions in :data:`FUNCTIONS`. Comparisons and logic give 1.0 or 0.0; any non-zero value is true.
Checked against ngspice-39 (tests/test_netlist_constructs.py): ``**`` and ``^`` are
left-associative (``2**3**2`` is 64) and raise the magnitude of the base (``(-2)**3`` is 8),
unary minus binds below them (``-2**2`` is −4), ``%`` is fmod, ``log`` is natural.

The parser is a shunting-yard over an explicit operator stack and the evaluator walks the
postfix form with a value stack, so nesting depth is bounded by memory, not by Python's
recursion limit (200 nested parentheses or 1,000 unary minuses are ordinary input). An error
inside the branch a conditional does not take (``x > 0 ? 1/x : 0``) is discarded, as in a
lazily evaluated ``?:``; one in the result is raised with the file and line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from cosim.errors import NetlistError

_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[a-zA-Z_]*)"
    r"|(?P<name>[a-zA-Z_][a-zA-Z0-9_.]*)"
    r"|(?P<op>\*\*|==|!=|<=|>=|&&|\|\||[-+*/%^(),<>!?:]))"
)


def _pwr(x: float, y: float) -> float:
    return abs(x) ** y  # ngspice-39: pwr(-3, 2) = 9, pwr(-2, 3) = 8


def _sgn(x: float) -> float:
    return float((x > 0) - (x < 0))


FUNCTIONS: dict[str, Callable[..., float]] = {
    "sqrt": math.sqrt, "exp": math.exp, "ln": math.log, "log": math.log, "log10": math.log10,
    "abs": abs, "min": min, "max": max, "pow": math.pow, "pwr": _pwr, "sgn": _sgn,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "sinh": math.sinh, "cosh": math.cosh, "tanh": math.tanh,
    "asinh": math.asinh, "acosh": math.acosh, "atanh": math.atanh,
    "floor": math.floor, "ceil": math.ceil, "int": math.trunc, "nint": round,
    "ternary_fcn": lambda c, a, b: a if c else b,
}

# binary operators: precedence (higher binds tighter), right-associative?
_BINARY = {"||": (1, False), "&&": (2, False), "==": (3, False), "!=": (3, False),
           "<": (4, False), "<=": (4, False), ">": (4, False), ">=": (4, False),
           "+": (5, False), "-": (5, False), "*": (6, False), "/": (6, False), "%": (6, False),
           "**": (8, False), "^": (8, False)}
_UNARY_PREC = 7  # below the power: -2**2 is -4, as in ngspice
_TERNARY_PREC = 0


class _Bad:
    """A failed sub-result, carried until it is used (an error) or discarded (a ?: branch)."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message


def _tokens(text: str, where: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise NetlistError(f"{where}: cannot read the expression {text!r} at {text[pos:].strip()!r}")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def names_in(text: str) -> list[str]:
    """Parameter names an expression refers to (function names excluded); [] if it does not scan."""
    try:
        toks = _tokens(text, "")
    except NetlistError:
        return []
    return [v for k, (kind, v) in enumerate(toks) if kind == "name"
            and not (k + 1 < len(toks) and toks[k + 1][1] == "(" and v in FUNCTIONS)]


def _postfix(text: str, where: str) -> list[tuple[str, object]]:
    """Shunting-yard: the expression as postfix items ("num", text) | ("name", n) | ("op", o) |
    ("fn", (name, n_args)) | ("tern", None)."""
    toks = _tokens(text, where)
    out: list[tuple[str, object]] = []
    ops: list[tuple[str, object]] = []  # ("bin", op) | ("un", op) | ("(", None) | ("fn(", [name, n]) | ("?", None) | ("tern", None)
    expect_operand = True

    def bad(what: str) -> NetlistError:
        return NetlistError(f"{where}: {what} in expression {text!r}")

    def pop_while(prec: int, right: bool) -> None:
        while ops:
            kind, op = ops[-1]
            if kind == "bin":
                p = _BINARY[op][0]
            elif kind == "un":
                p = _UNARY_PREC
            elif kind == "tern":
                p = _TERNARY_PREC
            else:
                return
            if p > prec or (p == prec and not right):
                out.append(("op", op) if kind != "tern" else ("tern", None))
                if kind == "un":
                    out[-1] = ("unop", op)
                ops.pop()
            else:
                return

    for k, (kind, value) in enumerate(toks):
        if expect_operand:
            if kind == "num":
                out.append(("num", value))
                expect_operand = False
            elif kind == "name":
                if k + 1 < len(toks) and toks[k + 1][1] == "(":
                    if value not in FUNCTIONS:
                        raise bad(f"unknown function {value}()")
                    ops.append(("fn", value))
                else:
                    out.append(("name", value))
                    expect_operand = False
            elif value in ("-", "+", "!"):
                ops.append(("un", value))
            elif value == "(":
                if ops and ops[-1][0] == "fn":
                    name = ops.pop()[1]
                    ops.append(("fn(", [name, 1]))
                else:
                    ops.append(("(", None))
            else:
                raise bad(f"unexpected {value!r}")
            continue
        # an operand was just read: expect an operator, ',' or ')'
        if kind != "op" or value in ("!",):
            raise bad(f"unexpected {value!r}")
        if value in _BINARY:
            prec, right = _BINARY[value]
            pop_while(prec, right)
            ops.append(("bin", value))
            expect_operand = True
        elif value == "?":
            pop_while(_TERNARY_PREC, True)
            ops.append(("?", None))
            expect_operand = True
        elif value == ":":
            pop_while(_TERNARY_PREC, True)
            if not ops or ops[-1][0] != "?":
                raise bad("':' without '?'")
            ops.pop()
            ops.append(("tern", None))
            expect_operand = True
        elif value in (")", ","):
            pop_while(-1, False)
            if not ops or ops[-1][0] not in ("(", "fn("):
                raise bad(f"unbalanced {value!r}")
            if value == ",":
                if ops[-1][0] != "fn(":
                    raise bad("',' outside a function call")
                ops[-1][1][1] += 1
                expect_operand = True
            else:
                kind0, payload = ops.pop()
                if kind0 == "fn(":
                    out.append(("fn", (payload[0], payload[1])))
        else:
            raise bad(f"unexpected {value!r}")
    if expect_operand:
        raise bad("unexpected end" if toks else "no value")
    pop_while(-1, False)
    if ops:
        what = {"(": "expected ')'", "fn(": "expected ')'", "?": "'?' without ':'"}.get(ops[-1][0], "dangling operator")
        raise bad(what)
    return out


def _binary(op: str, x: float, y: float) -> float | _Bad:
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if op == "/":
        return _Bad("division by zero") if y == 0 else x / y
    if op == "%":
        return _Bad("modulo by zero") if y == 0 else math.fmod(x, y)
    if op in ("**", "^"):
        try:
            r = abs(x) ** y  # ngspice-39: (-2)**3 = 8, (-8)**0.5 = 2.83
        except (OverflowError, ZeroDivisionError) as exc:
            return _Bad(str(exc))
        return r if isinstance(r, float | int) else _Bad(f"{x!r}**{y!r} is not real")
    if op == "&&":
        return float(bool(x) and bool(y))
    if op == "||":
        return float(bool(x) or bool(y))
    return float({"==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op])


def eval_expression(text: str, lookup: Callable[[str], float], *, where: str = "") -> float:
    """Value of a SPICE parameter expression (see the module docstring); ``lookup(name)`` gives
    a parameter's value. Raises :class:`NetlistError` naming ``where`` for a malformed
    expression, a division by zero, a function outside its domain or a non-finite result."""
    from cosim.circuit.units import parse_value

    stack: list[float | _Bad] = []
    for kind, item in _postfix(text, where):
        if kind == "num":
            stack.append(parse_value(item, where=where))
        elif kind == "name":
            stack.append(float(lookup(item)))
        elif kind == "unop":
            x = stack.pop()
            if not isinstance(x, _Bad):
                x = -x if item == "-" else (float(not x) if item == "!" else x)
            stack.append(x)
        elif kind == "op":
            y, x = stack.pop(), stack.pop()
            stack.append(x if isinstance(x, _Bad) else y if isinstance(y, _Bad) else _binary(item, x, y))
        elif kind == "tern":
            b, a, c = stack.pop(), stack.pop(), stack.pop()
            stack.append(c if isinstance(c, _Bad) else (a if c else b))
        else:  # function call
            name, n = item
            args = stack[len(stack) - n:]
            del stack[len(stack) - n:]
            bad = next((a for a in args if isinstance(a, _Bad)), None)
            if bad is None:
                try:
                    bad = float(FUNCTIONS[name](*args))
                except (ValueError, TypeError, OverflowError, ZeroDivisionError) as exc:
                    bad = _Bad(f"{name}() failed: {exc}")
            stack.append(bad)
    result = stack[-1]
    if isinstance(result, _Bad):
        raise NetlistError(f"{where}: {result.message} in expression {text!r}")
    if not math.isfinite(result):
        raise NetlistError(f"{where}: expression {text!r} evaluates to {result!r}, not a finite number")
    return float(result)
