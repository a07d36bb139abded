"""Options shared by the circuit sub-commands: the array (physics) and the solver (numerics).

``add_array_options`` and ``add_solver_options`` add argparse groups; ``spec_from_args`` and
``options_from_args`` turn parsed arguments into a frozen :class:`CrossbarSpec` and
:class:`SolverOptions`. Values take SPICE engineering suffixes (``10k``, ``2.5u``; note ``m`` is
milli and ``meg`` mega). Only light modules are imported at the top so ``cosim --help`` stays
instant; the spec and solver classes are imported when arguments are turned into them.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cosim.catalog import ARRAY_FIELDS, ENGINES, METHODS, NGSPICE_MODES
from cosim.errors import CosimError, InputError, SpecError
from cosim.schema import SEED_MAX

if TYPE_CHECKING:
    from cosim.circuit.engines.base import ReadResult, SolverOptions
    from cosim.circuit.model import Circuit
    from cosim.circuit.spec import CrossbarSpec

_ARRAY_FILE = re.compile(r"\.(npy|csv)$", re.IGNORECASE)
DEFAULT_G_MIN = 1e-6  # S; 1–10 µS is the device range of DESIGN.md's reference measurements
DEFAULT_G_MAX = 1e-5


def value(text: str) -> float:
    """argparse type: a number with an optional SPICE suffix (``10k`` → 10000.0)."""
    from cosim.circuit.units import parse_value

    try:
        x = parse_value(text)
    except CosimError:
        raise argparse.ArgumentTypeError(f"expected a number such as 10, 2.5k or 1e-6, got {text!r}") from None
    if not np.isfinite(x):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return x


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {n}")
    return n


def seed(text: str) -> int:
    """argparse type: a random seed, an integer in [0, 2**63)."""
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text!r}") from None
    if not 0 <= n <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"a seed must be in [0, 2**63), got {n}")
    return n


def index_list(text: str) -> list[int]:
    """argparse type: ``"0-7,10,12-13"`` → [0, …, 7, 10, 12, 13] (sorted, unique)."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if not m:
            raise argparse.ArgumentTypeError(
                f"expected indices like 0,3,5-7 (0-based, ranges inclusive), got {part!r} in {text!r}")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise argparse.ArgumentTypeError(f"range {part!r} runs backwards; write it as {hi}-{lo}")
        out.update(range(lo, hi + 1))
    return sorted(out)


def add_array_options(parser: argparse.ArgumentParser, *, random: bool) -> None:
    """The physical array: conductances, wires, periphery, cell type and bias scheme.

    ``random`` adds --rows/--cols/--g-min/--g-max/--seed, used when --conductance is absent.
    """
    g = parser.add_argument_group("array (physics; SI units; SPICE suffixes such as 10k, 2.5u, 50m allowed: m is milli, meg is mega)")
    g.add_argument("--conductance", metavar="G.npy|G.csv", required=not random,
                   help="device conductances, N rows × M columns, siemens (.npy or comma-separated .csv)")
    if random:
        g.add_argument("--rows", type=positive_int, metavar="N",
                       help="rows of a random array drawn when --conductance is not given")
        g.add_argument("--cols", type=positive_int, metavar="M", help="columns of the random array")
        g.add_argument("--g-min", type=value, metavar="S",
                       help=f"lowest conductance of the random array, S (default {DEFAULT_G_MIN:g})")
        g.add_argument("--g-max", type=value, metavar="S",
                       help=f"highest conductance of the random array, S (default {DEFAULT_G_MAX:g})")
        g.add_argument("--seed", type=seed, default=0,
                       help="seed of the random array and random inputs (default 0: reproducible)")
    for name, shape in (("r_row", "a .npy/.csv of M-1 values (shared by all rows) or N×(M-1)"),
                        ("r_col", "N-1 values or (N-1)×M"), ("r_driver", "one per row"),
                        ("r_sense", "one per column")):
        g.add_argument(_option(name), default="0", metavar="OHM|FILE",
                       help=f"{ARRAY_FIELDS[name].doc}, Ω: one value, or {shape} (default 0: ideal)")
    for name in ("v_sense", "drive", "sense", "cell", "r_access", "unselected"):
        f = ARRAY_FIELDS[name]
        unit = f", {f.unit}" if f.unit else ""
        kind = dict(choices=f.choices) if f.choices else dict(type=value, metavar=f.unit.replace("Ω", "OHM"))
        g.add_argument(_option(name), default=f.default, help=f"{f.doc}{unit} (default {f.default})", **kind)
    g.add_argument("--selected-rows", type=index_list, metavar="LIST",
                   help="rows in use, 0-based, e.g. 0-7,12 (default all)")
    g.add_argument("--selected-cols", type=index_list, metavar="LIST",
                   help="columns in use, 0-based (default all)")
    g.add_argument("--v-select", type=value, metavar="V", help=f"{ARRAY_FIELDS['v_select'].doc}, V")
    g.add_argument("--access-card", metavar="CARD", help=ARRAY_FIELDS["access_card"].doc)
    g.add_argument("--v-gate", type=value, metavar="V", help=f"{ARRAY_FIELDS['v_gate'].doc}, V")
    g.add_argument("--device-card", metavar="CARD",
                   help="device card (a name in models/cards or a TOML path) whose I(V, state) the nonlinear "
                        "cells follow (--cell device, 1S1R, 1T1R-mos); the conductances are then each "
                        "device's read conductance at --v-read")
    g.add_argument("--v-read", type=value, metavar="V",
                   help="voltage at which the conductances of nonlinear cells were read, V (default: the "
                        "device card's v_read)")


def add_solver_options(parser: argparse.ArgumentParser, *, engine: bool = True,
                       engines: tuple[str, ...] | None = None) -> None:
    """Numerics: engine, nodal method, tolerance and how ngspice runs."""
    g = parser.add_argument_group("solver (numerics)")
    if engine:
        g.add_argument("--engine", choices=engines or tuple(ENGINES), default="nodal",
                       help="ideal: V·G without parasitics; nodal: exact sparse nodal analysis; "
                            "spice: ngspice DC operating point (default nodal)")
    g.add_argument("--method", choices=METHODS, default="auto",
                   help="nodal solver: direct sparse LU (the reference), pcg (line-block "
                        "preconditioned CG), transfer (precomputed matrix) or auto (default)")
    g.add_argument("--rtol", type=value, default=1e-10, metavar="X",
                   help="relative tolerance of iterative methods, unitless (default 1e-10)")
    g.add_argument("--ngspice", choices=NGSPICE_MODES, default="auto",
                   help="how the spice engine runs ngspice: shared library, `ngspice -b`, or auto "
                        "(library, else executable)")


def _option(field: str) -> str:
    """The option that sets a spec field (``r_row`` → ``--r-row``; the conductances: --conductance)."""
    return "--conductance" if field == "conductances" else "--" + field.replace("_", "-")


def _spec_error(exc: SpecError, files: dict[str, str]) -> SpecError:
    """``exc`` reworded to start with the option (and file) that set the offending field."""
    if not exc.path.startswith("spec."):
        return exc
    opt = _option(exc.field)
    return exc.prefixed(f"{opt} {files[opt]}" if opt in files else opt)


def _resistance(text: str, opt: str, files: dict[str, str]) -> float | np.ndarray:
    """A resistance option: one value (Ω) or a .npy/.csv of values (1-row/1-column CSVs as vectors)."""
    from cosim.circuit.units import parse_value
    from cosim.io import load_array

    if not _ARRAY_FILE.search(text):
        try:
            return parse_value(text)
        except CosimError:
            if not Path(text).exists():  # an existing file falls through to the extension check
                raise SpecError(f"{opt}: expected a resistance in Ω such as 10 or 2.5k, or a .npy/.csv "
                                f"file, got {text!r}") from None
    files[opt] = text
    arr = load_array(text, what=opt)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.ravel()
    return arr


def conductances_from_args(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    """(N×M conductances in S, where they came from) from --conductance or the random options."""
    from cosim.guards import check_memory, read_bytes
    from cosim.io import load_array

    engine, batch = getattr(args, "engine", "nodal"), getattr(args, "batch", None) or 1
    random_opts = {k: getattr(args, k.replace("-", "_"), None) for k in ("rows", "cols", "g-min", "g-max")}
    if args.conductance is not None:
        given = [f"--{k}" for k, v in random_opts.items() if v is not None]
        if given:
            raise SpecError(f"{', '.join(given)} describe a random array; leave them out with --conductance")
        g = load_array(args.conductance, what="--conductance")
        if g.ndim != 2:
            raise InputError(f"--conductance {args.conductance} must be a 2-D N×M array of siemens, "
                             f"got shape {g.shape}")
        check_memory(read_bytes(*g.shape, batch, engine=engine), f"a {g.shape[0]}×{g.shape[1]} array ({engine} read)")
        return g, args.conductance
    if args.rows is None or args.cols is None:
        raise SpecError("give --conductance G.npy, or --rows N and --cols M for a random array")
    g_min = DEFAULT_G_MIN if args.g_min is None else args.g_min
    g_max = DEFAULT_G_MAX if args.g_max is None else args.g_max
    if g_min < 0:
        raise SpecError(f"--g-min must be ≥ 0 S, got {g_min!r}")
    if g_max < g_min:
        raise SpecError(f"--g-max ({g_max!r} S) must be ≥ --g-min ({g_min!r} S)")
    check_memory(read_bytes(args.rows, args.cols, batch, engine=engine),
                 f"--rows {args.rows} --cols {args.cols}" + (f" --batch {batch}" if batch > 1 else "")
                 + f" ({engine} read)")
    rng = np.random.default_rng(args.seed)
    g = rng.uniform(g_min, g_max, size=(args.rows, args.cols))
    return g, f"random uniform in [{g_min:g}, {g_max:g}] S, seed {args.seed}"


def spec_from_args(args: argparse.Namespace, conductances: np.ndarray | None = None) -> CrossbarSpec:
    """The :class:`CrossbarSpec` the array options describe; errors name the option at fault."""
    from cosim.circuit.spec import CrossbarSpec

    files: dict[str, str] = {}
    if conductances is None:
        conductances, _ = conductances_from_args(args)
    if getattr(args, "conductance", None):
        files["--conductance"] = args.conductance
    kw: dict[str, Any] = {}
    for field in ("r_row", "r_col", "r_driver", "r_sense"):
        kw[field] = _resistance(str(getattr(args, field)), _option(field), files)
    law = cell_law_from_args(args, conductances)
    try:
        return CrossbarSpec(
            conductances=conductances, v_sense=args.v_sense, drive=args.drive, sense=args.sense,
            cell=args.cell, r_access=args.r_access, unselected=args.unselected,
            selected_rows=args.selected_rows, selected_cols=args.selected_cols,
            v_select=args.v_select, law=law, **kw,
        )
    except SpecError as exc:
        raise _spec_error(exc, files) from None


def cell_law_from_args(args: argparse.Namespace, conductances: np.ndarray):
    """The nonlinear cells' law the options describe (None for 0T1R/1T1R); the options that a
    cell kind would ignore are refused."""
    from cosim.catalog import NONLINEAR_CELLS

    cell = args.cell
    given = {"--access-card": args.access_card, "--v-gate": args.v_gate, "--device-card": args.device_card,
             "--v-read": args.v_read}
    if cell not in NONLINEAR_CELLS:
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise SpecError(f"{extra[0]} applies to the nonlinear cells (--cell device, 1S1R, 1T1R-mos), "
                            f"not --cell {cell}")
        return None
    if args.access_card is not None and cell == "device":
        raise SpecError("--access-card applies to --cell 1S1R and 1T1R-mos, not --cell device")
    if args.v_gate is not None and cell != "1T1R-mos":
        raise SpecError(f"--v-gate applies to --cell 1T1R-mos, not --cell {cell}")
    if args.device_card is None:
        raise SpecError(f"--cell {cell} reads the devices' own I-V: give --device-card CARD (e.g. "
                        "stanford_pku_default); --conductance is then each device's read conductance")
    from cosim.array.cells import access_card_for, compose, law_from_conductances
    from cosim.devices import load_card
    from cosim.devices.paths import models_dir

    path = Path(args.device_card)
    if not path.suffix and not path.exists():
        path = models_dir() / "cards" / f"{path.name}.toml"
    try:
        device = law_from_conductances(conductances, load_card(path), args.v_read)
    except SpecError as exc:
        raise SpecError(f"--device-card {args.device_card}: {exc}") from None
    try:
        access = access_card_for(cell, args.access_card, args.v_gate)
    except SpecError as exc:
        raise SpecError(f"--access-card {args.access_card or '(default)'}: {exc.reason or exc}") from None
    return compose(cell, device, access, conductances.shape)


def options_from_args(args: argparse.Namespace, *, engine: str | None = None) -> SolverOptions:
    """The :class:`SolverOptions` of the solver options (``engine`` overrides ``--engine``)."""
    from cosim.circuit.engines.base import SolverOptions

    return SolverOptions(engine=engine or getattr(args, "engine", "nodal"), method=args.method,
                         rtol=args.rtol, ngspice=args.ngspice)


def run_engine(circuit: Circuit, options: SolverOptions, inputs: np.ndarray) -> tuple[ReadResult, float]:
    """Prepare and solve ``circuit`` with ``options.engine``; (result, prepare + solve time in s)."""
    from cosim.circuit.read import solve_circuit

    t0 = time.perf_counter()
    result = solve_circuit(circuit, inputs, options)
    return result, time.perf_counter() - t0


def relative_errors(currents: np.ndarray, reference: np.ndarray) -> tuple[float, float, int]:
    """(max, mean, worst output index) of |I − I_ref| / max |I_ref| over a (B, K) batch.

    Normalising by the full-scale current (not entry by entry) keeps near-zero outputs from
    dominating; NaN when the reference is all zero and the currents are not.
    """
    diff = np.abs(np.atleast_2d(currents) - np.atleast_2d(reference))
    scale = float(np.abs(reference).max(initial=0.0))
    worst = int(np.argmax(diff.max(axis=0))) if diff.size else -1
    if scale == 0.0:
        return (0.0, 0.0, worst) if not diff.any() else (float("nan"), float("nan"), worst)
    return float(diff.max() / scale), float(diff.mean() / scale), worst


def fmt_ohm(r) -> str:
    """A resistance option for a summary line: ``1 Ω``, ``0.5..2 Ω`` or ``ideal (0 Ω)``."""
    arr = np.asarray(r, dtype=float)
    if arr.size == 0:
        return "none"
    lo, hi = float(arr.min()), float(arr.max())
    if hi == 0:
        return "0 Ω"
    return f"{lo:g} Ω" if lo == hi else f"{lo:g}..{hi:g} Ω"


def describe_spec(spec: CrossbarSpec) -> str:
    """One line: size, cell type and the parasitics of ``spec``."""
    n, m = spec.shape
    parts = [f"{n}×{m} {spec.cell} array", f"r_row {fmt_ohm(spec.r_row)}", f"r_col {fmt_ohm(spec.r_col)}",
             f"r_driver {fmt_ohm(spec.r_driver)}", f"r_sense {fmt_ohm(spec.r_sense)}"]
    if spec.cell == "1T1R":
        parts.append(f"r_access {spec.r_access:g} Ω")
    if spec.law is not None:
        parts.append(f"cells follow their I-V law ({type(spec.law).__name__})")
    if not (spec.selected_rows.all() and spec.selected_cols.all()):
        parts.append(f"{int(spec.selected_rows.sum())}×{int(spec.selected_cols.sum())} selected, "
                     f"unselected {spec.unselected}")
    return ", ".join(parts)


def fmt_err(x: float) -> str:
    """A relative error as ``3.12e-02 (3.1 %)``, or ``n/a``."""
    if not np.isfinite(x):
        return "n/a"
    return f"{x:.3g}" if x == 0 else f"{x:.3e} ({100 * x:.3g} %)"
