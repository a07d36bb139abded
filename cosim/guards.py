"""Size guards: estimate what a command will allocate before allocating it, and refuse with one
line naming the figure and the limit, instead of dying of a MemoryError (or the machine's
out-of-memory killer) half-way through.

The limit is the smallest of the machine's physical memory, the process's address-space limit
(``ulimit -v``) and its cgroup's ``memory.max``; the environment variable ``COSIM_MAX_MEMORY``
(``cosim --max-memory 64G`` sets it) replaces it, for a machine whose swap or whose other
limits cosim cannot see. Estimates are lower bounds measured on this project's reference
machine, so a refusal means the job certainly does not fit, never that it might not.
"""

from __future__ import annotations

import math
import os
import re
import resource
from pathlib import Path

from cosim.errors import InputError

ENV = "COSIM_MAX_MEMORY"
# Bytes per cell of a nodal read through the crossbar solvers (circuit, line blocks, CG vectors):
# peak RSS of `cosim compare --rows 1024 --cols 1024 --engines nodal` over the imported
# baseline was 438 B/cell (batch 1); the direct LU needs more (5.6 kB/cell at 512²).
NODAL_BYTES_PER_CELL = 400
# A planned study point (resolved config dict, key, label): planning 40,000 ir_drop points took
# 1.9 kB each on the reference machine.
POINT_BYTES = 1900
# Beyond this a study is refused before any planning: so many points take tens of seconds to
# plan and as many Dask tasks; split a bigger study (fewer seeds or grid values per store).
MAX_POINTS = 50_000
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}


def parse_bytes(text: str) -> int:
    """``"64G"``, ``"512M"``, ``"1.5T"`` or a plain byte count → bytes (binary units)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([kmgtp]?)i?b?\s*", str(text), re.IGNORECASE)
    if not m:
        raise InputError(f"memory size {text!r}: expected a number of bytes with an optional K, M, G or T")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise InputError(f"memory size {text!r} must be at least 1 byte")
    return int(value)


def fmt_bytes(n: float) -> str:
    """1.5 GiB, 7.28 TiB, 512 B."""
    if not math.isfinite(n):
        return "an unbounded amount"
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1e4 else f"{value:.3e} {unit}"
    return f"{n:.0f} B"


def _cgroup_limit() -> float:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return float(text)
    return math.inf


def memory_limit() -> tuple[float, str]:
    """(bytes a command may plan to use, where that figure comes from)."""
    if os.environ.get(ENV):
        return float(parse_bytes(os.environ[ENV])), f"{ENV}={os.environ[ENV]}"
    found = []
    try:
        found.append((float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")), "physical memory"))
    except (ValueError, OSError, AttributeError):
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft not in (resource.RLIM_INFINITY, -1):
        found.append((float(soft), "the address-space limit (ulimit -v)"))
    found.append((_cgroup_limit(), "the cgroup's memory.max"))
    return min(found) if found else (math.inf, "no limit found")


def check_memory(nbytes: float, what: str) -> None:
    """Raise :class:`InputError` when ``nbytes`` (an estimate, lower bound) exceeds the limit."""
    limit, source = memory_limit()
    if not nbytes <= limit:  # also refuses NaN
        raise InputError(f"{what} needs at least {fmt_bytes(nbytes)} of memory, over the limit of "
                         f"{fmt_bytes(limit)} ({source}); make it smaller, or raise the limit with "
                         f"cosim --max-memory SIZE if the machine really has it")


def read_bytes(rows: int, cols: int, batch: int = 1, *, engine: str = "nodal") -> float:
    """Lower-bound bytes of one read of a rows × cols array for ``batch`` input vectors."""
    cells = float(rows) * float(cols)
    if engine == "ideal":  # G, then inputs and outputs
        return 8.0 * (cells + float(batch) * (float(rows) + float(cols)))
    # the circuit, plus one potential per node (2 per cell) for every vector of the batch
    return cells * NODAL_BYTES_PER_CELL + 8.0 * float(batch) * (float(rows) + float(cols) + 2 * cells)


def check_points(n_points: float, what: str) -> None:
    """Refuse a study of more than :data:`MAX_POINTS` points, or one whose plan cannot fit."""
    if n_points > MAX_POINTS:
        raise InputError(f"{what} has {n_points:.4g} points, over the limit of {MAX_POINTS:,}; "
                         "split it into smaller studies (fewer seeds or grid values)")
    check_memory(n_points * POINT_BYTES, f"{what} ({n_points:.0f} points)")
