"""ngspice's own DC operating point of a user's deck, run on the file as written.

Used by ``cosim solve --engine spice`` and, for decks with nonlinear elements, by ``--engine
auto``: nothing is flattened or rewritten except the control flow. The deck's ``.control``
blocks and ``.end`` lines are dropped and one block is appended that runs ``op`` and writes
every vector to a binary raw file (float64, exact). The copy lives in a temporary folder and
ngspice runs with the deck's own folder as its working directory, so relative ``.include``
and ``.lib`` files resolve as they do for the designer.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from cosim.errors import EngineError

_CONTROL = re.compile(r"^\s*\.control\b.*?^\s*\.endc\b[^\n]*$", re.I | re.M | re.S)
_END = re.compile(r"^\s*\.end\s*$", re.I | re.M)


def _first_error(output: str) -> str:
    for line in output.splitlines():
        low = line.lower()
        if "error" in low or "abort" in low or "singular" in low or "fail" in low:
            return " ".join(line.split())
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


def run_deck(path: Path, text: str, *, timeout: float | None = None) -> tuple[dict[str, float], dict[str, float]]:
    """(node volts by name, source/inductor branch amperes by element name) from ngspice's ``op``.

    Raises :class:`EngineError` (one line, naming the deck) when ngspice is missing or fails.
    """
    from cosim.circuit.engines import spice

    binary = spice.ngspice_binary()
    if binary is None:
        raise EngineError(spice.MISSING)
    body = _END.sub("", _CONTROL.sub("", text)).rstrip("\n")
    with tempfile.TemporaryDirectory(prefix="cosim-ngspice-") as tmp:
        raw = Path(tmp) / "op.raw"
        deck = Path(tmp) / path.name
        deck.write_text(body + f"\n.control\nset filetype=binary\nop\nwrite {raw} all\nquit 0\n.endc\n.end\n")
        try:
            proc = subprocess.run([binary, "-b", str(deck)], cwd=path.resolve().parent,
                                  capture_output=True, text=True, errors="replace", timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineError(f"ngspice could not run {path}: {exc}") from None
        output = proc.stdout + "\n" + proc.stderr
        if proc.returncode != 0 or not raw.exists() or "simulation(s) aborted" in output:
            raise EngineError(f"ngspice failed on {path} (exit status {proc.returncode}): {_first_error(output)}")
        vectors = spice.read_raw(raw)
    nodes, branches = {}, {}
    for name, value in vectors.items():
        low = name.lower()
        if low.endswith("#branch"):
            branches[low[: -len("#branch")]] = value
        elif low.startswith("v(") and low.endswith(")"):
            nodes[low[2:-1]] = value
        elif low.startswith("i(") and low.endswith(")"):
            branches[low[2:-1]] = value
        elif "#" not in low and "(" not in low:
            nodes[low] = value
    return nodes, branches
