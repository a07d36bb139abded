"""Array and text files at the edge of cosim: load checked, write atomically (DESIGN.md §3).

Matrices and vectors are ``.npy`` or ``.csv`` (comma separated). A plain matrix CSV has no
header; a CSV meant for people may carry one header line of column names (``current_A``), which
:func:`load_array` skips when every cell of the first line is a name rather than a number.
Values are SI floats (S, V, A); nothing here knows units beyond naming them in messages.

Every failure is an :class:`InputError` with one line naming the file and the problem. Writes go
to a temporary file in the target folder and are renamed over the target only when complete, so
a failure never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from cosim.errors import CosimError, InputError, OutputError

log = logging.getLogger(__name__)

ARRAY_LOAD_EXTS = (".npy", ".csv")
ARRAY_SAVE_EXTS = (".npy", ".csv", ".json")
_HEADER_CELL = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ()\[\]/.%-]*$")


def _ext(path: Path) -> str:
    return path.suffix.lower()


def _check_ext(path: Path, allowed: Sequence[str], what: str) -> None:
    if _ext(path) not in allowed:
        got = repr(path.suffix) if path.suffix else "no extension"
        choices = allowed[0] if len(allowed) == 1 else f"{', '.join(allowed[:-1])} or {allowed[-1]}"
        raise InputError(f"{what} file {path} must end in {choices}, got {got}")


def load_array(path, *, what: str) -> np.ndarray:
    """A float64 array from ``path`` (.npy any shape; .csv always 2-D, one row per line).

    ``what`` names the array in messages (e.g. ``"--conductance"``). NaN and inf are returned as
    read; the caller decides what a valid value is.
    """
    path = Path(path)
    _check_ext(path, ARRAY_LOAD_EXTS, what)
    try:
        path.stat()
    except FileNotFoundError:
        pass
    except OSError as exc:  # a name too long, a loop of links …: exists() would raise these
        raise InputError(f"{what} file {str(path)[:60]}… cannot be read: {exc.strerror or exc}") from None
    if not path.exists():
        raise InputError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise InputError(f"{what} file {path} is a folder, expected a {_ext(path)} file")
    try:
        if _ext(path) == ".npy":
            return _load_npy(path, what)
        text = path.read_text(encoding="utf-8")
    except PermissionError:
        raise InputError(f"{what} file {path} is not readable (permission denied)") from None
    except UnicodeDecodeError:
        raise InputError(f"{what} file {path} is not a text CSV file (not UTF-8)") from None
    except OSError as exc:
        raise InputError(f"{what} file {path} cannot be read: {exc.strerror or exc}") from None
    return parse_csv(text, where=f"{what} file {path}")


def _load_npy(path: Path, what: str) -> np.ndarray:
    with path.open("rb") as fh:
        magic = fh.read(6)
    if not magic:
        raise InputError(f"{what} file {path} cannot be read: the file is empty")
    if magic != b"\x93NUMPY":  # np.load would try to unpickle anything else
        raise InputError(f"{what} file {path} cannot be read: not a valid .npy file (no NumPy header)")
    _check_npy_header(path, what)
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:  # truncated data, or an object array (needs pickle)
        reason = "it holds Python objects" if "pickle" in str(exc) else f"not a valid .npy file ({exc})"
        raise InputError(f"{what} file {path} cannot be read: {reason}") from None
    except EOFError:
        raise InputError(f"{what} file {path} cannot be read: the file is truncated") from None
    if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{what} file {path} must hold numbers, got dtype {getattr(arr, 'dtype', type(arr))}")
    if np.iscomplexobj(arr):
        raise InputError(f"{what} file {path} holds complex numbers; expected real values")
    return np.asarray(arr, dtype=float)


def _check_npy_header(path: Path, what: str) -> None:
    """Read the header alone and refuse, before numpy allocates anything, a header that does not
    parse or that claims more data than the file holds (a 128-byte file saying 1e8 × 1e8)."""
    from numpy.lib import format as npf

    from cosim.guards import check_memory, fmt_bytes

    try:
        with path.open("rb") as fh:
            version = npf.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = npf.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = npf.read_array_header_2_0(fh)
            else:
                raise ValueError(f"unknown .npy version {version}")
            offset = fh.tell()
    except Exception as exc:  # numpy raises ValueError, SyntaxError or tokenize's TokenError here
        raise InputError(f"{what} file {path} cannot be read: not a valid .npy file "
                         f"(bad header: {' '.join(str(exc).split())[:120]})") from None
    claimed = math.prod(shape) * dtype.itemsize
    held = path.stat().st_size - offset
    if dtype.hasobject:
        return  # np.load refuses it with its own message (pickle)
    if claimed > held:
        raise InputError(f"{what} file {path} cannot be read: its header claims shape {tuple(shape)} "
                         f"({fmt_bytes(claimed)}) but the file holds {fmt_bytes(held)} of data (truncated?)")
    check_memory(claimed * (1 if dtype == np.float64 else 2), f"{what} file {path} (shape {tuple(shape)})")


def parse_csv(text: str, *, where: str) -> np.ndarray:
    """The (rows, cols) float array of comma-separated ``text``; ``where`` prefixes messages."""
    rows: list[list[float]] = []
    width = 0
    first_line = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if not rows and not first_line:
            first_line = lineno
            if all(_HEADER_CELL.match(c) and not is_number(c) for c in cells):
                log.debug("%s: line %d read as a header: %s", where, lineno, line.strip())
                width = len(cells)
                continue
        if width and len(cells) != width:
            raise InputError(f"{where}: line {lineno} has {len(cells)} values, expected {width} "
                             f"like line {first_line} (ragged CSV)")
        width = len(cells)
        values = []
        for col, cell in enumerate(cells, start=1):
            try:
                values.append(float(cell))
            except ValueError:
                shown = repr(cell) if cell else "an empty cell"
                raise InputError(f"{where}: line {lineno}, column {col}: {shown} is not a number") from None
        rows.append(values)
    if not rows:
        what = f"only a header line (line {first_line})" if first_line else "no numbers (empty file)"
        raise InputError(f"{where} holds {what}")
    return np.array(rows, dtype=float)


def is_number(cell: str) -> bool:
    """Whether a CSV cell parses as a float (a header cell does not)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def check_output_path(path, *, what: str, exts: Sequence[str] | None = ARRAY_SAVE_EXTS) -> Path:
    """``path`` as a Path once its extension and folder are fit to write; checked before work starts."""
    path = Path(path)
    if exts is not None:
        _check_ext(path, exts, what)
    _check_name_length(path, what)  # first: stat() of such a name raises ENAMETOOLONG
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, expected a file name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{what} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{what} {path}: folder {parent} is not writable")
    return path


def _check_name_length(path: Path, what: str) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    try:
        limit = os.pathconf(parent if parent.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    n = len(os.fsencode(path.name))
    if n > limit:
        raise InputError(f"{what} {path.name[:40]}…: the file name is {n} bytes long, over the file "
                         f"system's limit of {limit}")


def make_output_dir(path, *, what: str) -> Path | None:
    """Create the folder ``path`` (and missing parents) for outputs; the topmost folder this
    created (to remove if the work fails), or None when it existed. Errors are one line."""
    path = Path(path)
    top = None
    for p in [path, *path.parents]:
        if p.exists():
            if not p.is_dir():
                raise InputError(f"{what} {path}: {p} is a file, not a folder")
            break
        top = p
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot create the folder ({exc.strerror or exc})") from None
    probe = path / ".cosim-write-test"
    try:  # a folder that exists is not yet one we may write (read-only mount, /proc, permissions)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
        raise InputError(f"{what} {path}: cannot write into the folder ({exc.strerror or exc})") from None
    return top


@contextmanager
def atomic_path(path, *, what: str = "output file", mkdir: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` for any writer (``np.savez``, ``savefig``, ``onnx.save``);
    renamed over ``path`` when the block ends normally, removed when it raises.

    The one write-then-rename of cosim: the temporary name keeps ``path``'s suffix (writers
    infer the format from it) and lives in the same folder (so the rename is atomic).
    ``mkdir`` creates the folder first; otherwise a missing or read-only folder is an
    :class:`InputError` naming ``what``.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        if mkdir:
            parent.mkdir(parents=True, exist_ok=True)
        # a short temporary name: the target's own may already be at the file system's limit
        fd, name = tempfile.mkstemp(prefix=f".{path.stem[:32]}.", suffix=f".tmp{path.suffix[:16]}", dir=parent)
    except FileNotFoundError:
        raise InputError(f"{what} {path}: folder {parent} does not exist") from None
    except PermissionError:
        raise InputError(f"{what} {path}: folder {parent} is not writable") from None
    except OSError as exc:  # a file where a folder should be, a read-only file system, /proc …
        raise InputError(f"{what} {path}: cannot write in folder {parent} ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, CosimError):
            raise OutputError(f"{what} {path} cannot be written: {exc.strerror or exc}") from None
        raise


def atomic_write(path, data: str | bytes, *, what: str = "output file", mkdir: bool = False) -> None:
    """Write ``data`` to ``path`` atomically: bytes as they are, text as UTF-8 with ``\n`` ends."""
    with atomic_path(path, what=what, mkdir=mkdir) as tmp:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(data)


def save_figure(fig, path, *, what: str = "figure", **savefig: Any) -> None:
    """A matplotlib figure saved atomically (format from ``path``'s suffix, ``savefig`` options)."""
    with atomic_path(path, what=what) as tmp:
        fig.savefig(tmp, **savefig)


def atomic_write_text(path, text: str, *, what: str = "output file") -> None:
    """Write ``text`` (UTF-8, ``\n`` line ends) to ``path`` atomically."""
    atomic_write(path, text, what=what)


def _csv_text(arr: np.ndarray, header: Sequence[str] | None) -> str:
    lines = []
    if header is not None:
        lines.append(",".join(header))
    for row in np.atleast_2d(arr) if arr.ndim < 2 else arr:
        lines.append(",".join(repr(float(x)) for x in row))
    return "\n".join(lines) + "\n"


def _json_text(arr: np.ndarray, header: Sequence[str] | None) -> str:
    if not np.isfinite(arr).all():
        raise InputError("cannot write NaN or inf to JSON")
    if header is None:
        return json.dumps(arr.tolist()) + "\n"
    rows = np.atleast_2d(arr)
    return json.dumps([dict(zip(header, map(float, row))) for row in rows], indent=1) + "\n"


def save_array(path, array, *, header: Sequence[str] | str | None = None, what: str = "output file") -> None:
    """Write ``array`` to ``path`` (.npy, .csv or .json) atomically.

    ``header`` (column names, e.g. ``["current_A"]`` or ``"current_A"``) is for files meant for
    people: a first CSV line, or JSON rows as objects keyed by column name; .npy ignores it.
    CSV and JSON numbers use the shortest text that reads back exactly; arrays must be 1-D or 2-D.
    """
    path = Path(path)
    _check_ext(path, ARRAY_SAVE_EXTS, what)
    arr = np.asarray(array, dtype=float)
    ext = _ext(path)
    if isinstance(header, str):
        header = [header]
    if ext != ".npy":
        if arr.ndim > 2:
            raise InputError(f"{what} {path}: a {arr.ndim}-D array needs .npy, not {ext}")
        if header is not None:
            width = 1 if arr.ndim == 0 else arr.shape[-1]
            if len(header) != width:
                raise InputError(f"{what} {path}: header has {len(header)} names for {width} columns")
            if any("," in h or "\n" in h for h in header):
                raise InputError(f"{what} {path}: header names must not contain commas or line breaks")
    if ext == ".npy":
        with atomic_path(path, what=what) as tmp, open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
        return
    text = _csv_text(np.atleast_1d(arr), header) if ext == ".csv" else _json_text(arr, header)
    atomic_write_text(path, text, what=what)


def finite_or_raise(arr: np.ndarray, *, what: str, unit: str) -> None:
    """Raise naming the first NaN/inf entry of ``arr`` (by index) when there is one."""
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(arr[idx])
        kind = "NaN" if math.isnan(value) else "infinite"
        raise InputError(f"{what}[{','.join(map(str, idx))}] is {kind}; expected finite {unit}")
