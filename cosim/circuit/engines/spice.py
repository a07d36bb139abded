"""The spice engine: the circuit's ngspice netlist, solved by ngspice's DC operating point.

Two ways to run ngspice, chosen by ``SolverOptions.ngspice``:

- ``shared``: libngspice through PySpice's ``NgSpiceShared``. ngspice is not re-entrant and
  keeps one circuit loaded per process, so every call holds :data:`_LOCK`, and the deck of the
  ``Prepared`` that ran last stays loaded: consecutive solves only ``alter`` the source values
  that change before each ``op``. Results are read as float64 vectors straight from memory.
- ``subprocess``: ``ngspice -b`` on a deck whose ``.control`` block runs one ``op`` per input
  vector and ``write``s each operating point to a binary raw file (float64, exact).
- ``auto``: shared, falling back to the subprocess when the library cannot be loaded.

For a linear circuit ngspice's ``op`` is a sparse LU solve (its Newton loop stops after the
second, identical iterate), so results match the nodal engine to rounding; the deck carries
every value in shortest round-trip text and 0 Ω connections as 0 V sources (see
:mod:`cosim.circuit.netlist_write`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np

from cosim.circuit.engines.base import Engine, Prepared, ReadResult, SolverOptions, cell_currents
from cosim.circuit.model import Circuit, as_batch
from cosim.circuit.netlist_write import SpiceNaming, deck_source_values, render_ngspice
from cosim.circuit.units import format_value
from cosim.errors import EngineError

log = logging.getLogger(__name__)

MISSING = "ngspice not found: install Debian's ngspice and libngspice0-dev (make system)"
_LOCK = threading.RLock()
# The process-wide ngspice: the PySpice instance (None until loaded, False when unavailable)
# and the token of the Prepared whose deck it holds. ngspice itself is global state (one
# circuit per process); this only mirrors it.
_SHARED: dict = {"ng": None, "loaded": None}


def _load_shared():
    """The PySpice ``NgSpiceShared`` instance; raises when libngspice cannot be loaded."""
    from PySpice.Spice.NgSpice.Shared import NgSpiceShared

    # PySpice warns that it was not tested with ngspice 39; the API we use is unchanged.
    pylog = logging.getLogger("PySpice.Spice.NgSpice.Shared.NgSpiceShared")
    level = pylog.level
    pylog.setLevel(logging.ERROR)
    try:
        return NgSpiceShared.new_instance()
    finally:
        pylog.setLevel(level)


def shared_instance():
    """The shared ngspice, or None when the library is unavailable (the reason is logged once)."""
    with _LOCK:
        if _SHARED["ng"] is None:
            try:
                _SHARED["ng"] = _load_shared()
            except Exception as exc:  # OSError from dlopen, PySpice import or init errors
                log.warning("libngspice unavailable (%s: %s)", type(exc).__name__, exc)
                _SHARED["ng"] = False
        return _SHARED["ng"] or None


def ngspice_binary() -> str | None:
    """Path of the ``ngspice`` executable on PATH, or None (the one place cosim looks for it)."""
    return shutil.which("ngspice")


def require_ngspice() -> str:
    """Path of the ``ngspice`` executable, or :class:`EngineError` with the one install hint."""
    binary = ngspice_binary()
    if binary is None:
        raise EngineError(MISSING)
    return binary


def _tail(text: str, n: int = 15) -> str:
    """The lines of ngspice's output that say what went wrong (else its last lines)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    bad = [ln for ln in lines if any(w in ln.lower() for w in ("error", "abort", "fail", "singular"))]
    return "\n".join(list(dict.fromkeys(bad or lines))[-n:])  # repeated lines once


@contextlib.contextmanager
def _quiet_pyspice():
    """PySpice logs ngspice's chatter as errors; it is captured into EngineError instead."""
    pylog = logging.getLogger("PySpice")
    level = pylog.level
    pylog.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        pylog.setLevel(level)


def _vectors(ng) -> dict[str, float]:
    """Every vector of ngspice's current plot as {name: float64} (an operating point has 1 row)."""
    from PySpice.Spice.NgSpice.Shared import ffi

    lib = ng._ngspice_shared
    plot = ffi.string(lib.ngSpice_CurPlot()).decode()
    names_c = lib.ngSpice_AllVecs(plot.encode())
    out = {}
    k = 0
    while names_c[k] != ffi.NULL:
        name = ffi.string(names_c[k]).decode()
        info = lib.ngGet_Vec_Info(f"{plot}.{name}".encode())
        if info != ffi.NULL and info.v_realdata != ffi.NULL and info.v_length >= 1:
            out[name] = float(info.v_realdata[0])
        k += 1
    return out


def read_raw(path: Path) -> dict[str, float]:
    """One operating point from an ngspice binary raw file: {"v(node)"/"i(src)": value}."""
    data = path.read_bytes()
    cut = data.index(b"Binary:\n") + len(b"Binary:\n")
    header = data[:cut].decode("latin-1").splitlines()
    start = header.index("Variables:") + 1
    names = [ln.split("\t")[2] if "\t" in ln else ln.split()[1] for ln in header[start:-1] if ln.strip()]
    values = np.frombuffer(data[cut:cut + 8 * len(names)], dtype="<f8")
    return dict(zip(names, values.tolist()))


class SpicePrepared(Prepared):
    """A circuit's deck, ready for ``op`` runs; see the module docstring."""

    def __init__(self, circuit: Circuit, options: SolverOptions, mode: str, binary: str | None):
        self.circuit = circuit
        self.mode = mode
        self.binary = binary
        self.workdir = Path(tempfile.mkdtemp(prefix="cosim-spice-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.workdir, ignore_errors=True)
        self.token = object()  # identifies this deck in _SHARED without keeping self alive
        self.values0 = deck_source_values(circuit, None)
        self.deck, self.naming = render_ngspice(circuit, values=self.values0)
        self.deck_path = self.workdir / "deck.cir"
        self.deck_path.write_text(self.deck)

    # -- shared library ---------------------------------------------------------------------
    def _fail(self, deck: Path, status: str, output: str) -> EngineError:
        self._cleanup.detach()  # keep the deck for the designer to rerun
        return EngineError(f"ngspice failed on {deck} ({status}):\n{_tail(output)}")

    def _run_shared(self, values: np.ndarray) -> list[dict[str, float]]:
        from PySpice.Spice.NgSpice.Shared import NgSpiceCircuitError, NgSpiceCommandError

        names = self.naming.vsrc
        out = []
        with _LOCK, _quiet_pyspice():
            ng = shared_instance()
            if ng is None:
                raise EngineError(MISSING)
            try:
                if _SHARED["loaded"] is not self.token:
                    if _SHARED["loaded"] is not None:
                        _SHARED["loaded"] = None
                        ng.exec_command("destroy all")
                        ng.exec_command("remcirc")
                    ng.load_circuit(self.deck)
                    _SHARED["loaded"] = self.token
                    self._current = self.values0.copy()
                for row in values:
                    for k in np.flatnonzero(row != self._current):
                        ng.exec_command(f"alter {names[k]} dc={format_value(row[k])}")
                    self._current = row.copy()
                    ng.exec_command("op")
                    out.append(_vectors(ng))
                    ng.exec_command("destroy all")
            except (NgSpiceCommandError, NgSpiceCircuitError, NameError) as exc:
                _SHARED["loaded"] = None
                output = f"{exc}\n{ng.stdout}\n{ng.stderr}"
                try:
                    ng.exec_command("remcirc")
                except Exception:  # the circuit may not have loaded at all
                    pass
                raise self._fail(self.deck_path, "shared library reported an error", output) from None
        return [{self._key(k): v for k, v in vecs.items()} for vecs in out]

    @staticmethod
    def _key(name: str) -> str:
        """Common key for shared-library and raw-file names: "i(src)" and "v(node)"."""
        return f"i({name[:-7]})" if name.endswith("#branch") else f"v({name})"

    # -- subprocess -------------------------------------------------------------------------
    def _run_subprocess(self, values: np.ndarray) -> list[dict[str, float]]:
        names = self.naming.vsrc
        if self.binary is None:
            raise EngineError(MISSING)

        def control(_naming: SpiceNaming) -> list[str]:
            lines, cur = ["set filetype=binary"], values[0]
            for b, row in enumerate(values):
                lines += [f"alter {names[k]} dc={format_value(row[k])}" for k in np.flatnonzero(row != cur)]
                lines += ["op", f"write op{b}.raw"]
                cur = row
            return lines + ["quit 0"]

        deck, _ = render_ngspice(self.circuit, values=values[0], control=control)
        path = self.workdir / "batch.cir"
        path.write_text(deck)
        for old in self.workdir.glob("op*.raw"):
            old.unlink()
        try:
            proc = subprocess.run([self.binary, "-b", path.name], cwd=self.workdir,
                                  capture_output=True, text=True, errors="replace")
        except OSError as exc:
            raise EngineError(f"{MISSING} ({exc})") from None
        output = proc.stdout + "\n" + proc.stderr
        raws = [self.workdir / f"op{b}.raw" for b in range(values.shape[0])]
        # ngspice -b exits 0 even when an op aborts; then no raw file is written for it
        if proc.returncode != 0 or "simulation(s) aborted" in output or not all(p.exists() for p in raws):
            raise self._fail(path, f"exit status {proc.returncode}", output)
        return [{k.lower(): v for k, v in read_raw(p).items()} for p in raws]

    # -- the protocol -----------------------------------------------------------------------
    def solve(self, inputs, *, want_nodes: bool = False, want_cells: bool = False) -> ReadResult:
        c = self.circuit
        v, _ = as_batch(inputs, c.n_inputs)
        t0 = time.perf_counter()
        values = c.source_values(v)
        if not values.shape[0]:
            ops = []
        elif self.mode == "shared":
            ops = self._run_shared(values)
        else:
            ops = self._run_subprocess(values)
        nm = self.naming
        bsz = len(ops)
        branch = np.array([[op.get(f"i({s})", np.nan) for s in nm.vsrc] for op in ops]).reshape(bsz, len(nm.vsrc))
        if np.isnan(branch).any():
            k = int(np.argwhere(np.isnan(branch))[0, 1])
            raise EngineError(f"ngspice returned no current for source {nm.vsrc[k]} (deck {self.deck_path})")
        nodes = np.array([[0.0 if not name else op.get(f"v({name})", np.nan) for name in nm.nodes]
                          for op in ops]).reshape(bsz, len(nm.nodes))
        shorts = np.array([[op[f"i({s})"] for _, s in nm.shorts] for op in ops]).reshape(bsz, len(nm.shorts))
        resid = kcl_residual(c, nodes, branch, shorts, np.array([k for k, _ in nm.shorts], dtype=int))
        return ReadResult(
            currents=c.outputs_from_branches(branch), engine="spice",
            elapsed=time.perf_counter() - t0, branch_currents=branch,
            node_voltages=nodes if want_nodes else None,
            cell_currents=(law_currents(c, nodes) if c.cell_law is not None else cell_currents(c, nodes))
            if want_cells else None,
            residual=resid, info={"mode": self.mode, "deck": str(self.deck_path), "ops": bsz},
        )


def kcl_residual(c: Circuit, nodes: np.ndarray, branch: np.ndarray, shorts: np.ndarray,
                 short_res: np.ndarray) -> float:
    """Largest KCL imbalance at a non-ground node relative to the largest current (unitless).

    ``nodes`` (B, n_nodes) V with NaN for nodes ngspice never saw; ``branch`` (B, n_vsrc) and
    ``shorts`` (B, n_short) source currents, A, flowing + → − through each source.
    """
    v = np.nan_to_num(nodes)
    live = (c.res_g > 0) & np.isfinite(c.res_g)
    if c.cell_law is not None:  # the cells carry their laws' currents, not res_g's
        lay = c.layout
        live[lay.cell_res0:lay.cell_res0 + lay.n_rows * lay.n_cols] = False
    a, b, g = c.res_a[live], c.res_b[live], c.res_g[live]
    i_res = g * (v[:, a] - v[:, b])
    if c.cell_law is not None:
        cells = law_currents(c, nodes).reshape(v.shape[0], -1)
        k = np.arange(lay.cell_res0, lay.cell_res0 + lay.n_rows * lay.n_cols)
        a, b, i_res = np.concatenate([a, c.res_a[k]]), np.concatenate([b, c.res_b[k]]), np.hstack([i_res, cells])
    leave = np.zeros_like(v)
    np.add.at(leave.T, a, i_res.T)
    np.add.at(leave.T, b, -i_res.T)
    for pa, pb, cur in ((c.vsrc_p, c.vsrc_n, branch), (c.res_a[short_res], c.res_b[short_res], shorts),
                        (c.isrc_a, c.isrc_b, np.broadcast_to(c.isrc_dc, (v.shape[0], c.isrc_dc.size)))):
        # a branch current leaves its node at + (a) into the source and re-enters the circuit at − (b)
        np.add.at(leave.T, pa, cur.T)
        np.add.at(leave.T, pb, -cur.T)
    scale = max(float(np.abs(i_res).max(initial=0)), float(np.abs(branch).max(initial=0)), 1e-300)
    return float(np.abs(leave[:, 1:]).max(initial=0) / scale)


def law_currents(c: Circuit, nodes: np.ndarray) -> np.ndarray:
    """Cell currents (B, N, M), A, of a circuit with nonlinear cells at node voltages ``nodes``."""
    lay = c.layout
    k = np.arange(lay.cell_res0, lay.cell_res0 + lay.n_rows * lay.n_cols)
    v = np.nan_to_num(nodes)
    shape = (v.shape[0], lay.n_rows, lay.n_cols)
    return c.cell_law.branch(v[:, c.res_a[k]].reshape(shape), v[:, c.res_b[k]].reshape(shape))[0]


class SpiceEngine(Engine):
    name = "spice"
    nonlinear_cells = True  # written as behavioural sources and level-1 MOSFETs (netlist_cells.py)

    def prepare(self, circuit: Circuit, options: SolverOptions, *, spec=None) -> SpicePrepared:
        """Write the deck and pick the way to run ngspice (``options.ngspice``)."""
        want = options.ngspice
        binary = ngspice_binary()
        mode = "subprocess"
        if want in ("auto", "shared"):
            if shared_instance() is not None:
                mode = "shared"
            elif want == "shared":
                raise EngineError(MISSING)
            else:
                log.info("falling back to the ngspice executable (%s)", binary)
        if mode == "subprocess" and binary is None:
            raise EngineError(MISSING)
        if options.check_topology and circuit.layout is None:
            # ngspice papers over a singular circuit with gmin stepping; refuse it clearly instead
            from cosim.circuit.topology import check_topology

            check_topology(circuit)
        return SpicePrepared(circuit, options, mode, binary)


ENGINE = SpiceEngine()
