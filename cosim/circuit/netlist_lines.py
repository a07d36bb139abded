"""Stage 1 of the netlist reader: files → logical lines.

Joins ``+`` continuations, drops ``*`` comment lines and ``;``/``$`` inline comments and
``.control`` blocks, lower-cases, and splices in ``.include`` files and ``.lib 'file' SECTION``
sections (both relative to the including file, as ngspice resolves them). A ``.lib NAME`` …
``.endl`` section met outside a ``.lib`` call is a definition and is skipped. ``.end`` is a
no-op: ngspice-39 reads on past it (checked), and a warning says so.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from cosim.errors import NetlistError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Line:
    """A logical line (continuations joined), lower-cased, and where it starts."""

    text: str
    where: str


def _strip_comment(raw: str) -> str:
    if raw.lstrip().startswith("*"):
        return ""
    cut = raw.find(";")
    if cut >= 0:
        raw = raw[:cut]
    if "$" not in raw:
        return raw
    m = re.search(r"(^|\s)\$", raw)
    return raw[: m.start()] if m else raw


def _file_arg(text: str, base: Path, where: str, what: str) -> tuple[Path, list[str]]:
    parts = text.split(None, 1)
    if len(parts) < 2:
        raise NetlistError(f"{where}: {what} needs a file name")
    rest = parts[1].strip()
    if rest[:1] in "'\"":
        end = rest.find(rest[0], 1)
        if end < 0:
            raise NetlistError(f"{where}: unterminated quote in {what}")
        name, tail = rest[1:end], rest[end + 1:].split()
    else:
        name, *tail = rest.split()
    path = Path(name).expanduser()
    return (path if path.is_absolute() else base / path), tail


def _read(path: Path, where: str) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise NetlistError(f"{where}: cannot read included file {path}: {exc.strerror or exc}") from None


def logical_lines(path: Path, text: str, label: str, top: bool, stack: tuple, out: list[Line],
                  title: list[str], section: str | None = None) -> None:
    """Append the logical lines of ``text`` (file ``path``, shown as ``label``) to ``out``.

    ``section``: read only the lines of ``.lib section`` … ``.endl`` (a ``.lib`` call).
    """
    raw_lines = text.splitlines()
    in_control = False
    ended = ""
    start = 0
    # ``.lib`` nesting: (name, reading?) for each open section
    libs: list[tuple[str, bool]] = []
    found = section is None
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
        if word == ".lib" and len(low.split()) == 2 and low.split()[1][:1] not in "'\"":
            name = low.split()[1]
            libs.append((name, name == section and not libs))
            found = found or libs[-1][1]
            continue
        if word == ".endl":
            if not libs:
                raise NetlistError(f"{where}: .endl without a .lib section")
            libs.pop()
            continue
        reading = (section is None and not libs) or (section is not None and any(r for _, r in libs))
        if not reading:
            continue
        if word == ".control":
            in_control = True
            continue
        if raw.startswith("+"):
            if not out:
                raise NetlistError(f"{where}: continuation line '+' with no line to continue")
            out[-1].text += " " + low[1:].strip()
            continue
        if word in (".include", ".inc", ".lib"):
            inc, tail = _file_arg(raw, path.parent, where, word)
            inc = inc.resolve()
            sec = None
            if word == ".lib":
                if len(tail) != 1:
                    raise NetlistError(f"{where}: .lib needs a file and one section name")
                sec = tail[0].lower()
            key = (inc, sec)
            if key in stack:
                raise NetlistError(f"{where}: recursive {word} of {inc}")
            logical_lines(inc, _read(inc, where), str(inc), False, (*stack, key), out, title, sec)
            continue
        if word == ".end":
            ended = where
            continue
        if ended:
            log.warning("%s: %s follows .end at %s; ngspice reads it, and so does cosim", where, word, ended)
            ended = ""
        out.append(Line(low, where))
    if in_control:
        raise NetlistError(f"{label}: .control block not closed by .endc")
    if libs:
        raise NetlistError(f"{label}: .lib section {libs[-1][0]} is not closed by .endl")
    if not found:
        raise NetlistError(f"{label}: no .lib section {section!r} in this file")
