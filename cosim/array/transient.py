"""ngspice transients of devices and small arrays built from the behavioural subcircuits.

:mod:`cosim.devices.behavioural` writes each compact model as a SPICE subcircuit (pure text);
this module runs decks with ``ngspice -b`` and reads the ``wrdata`` tables back, for

- :func:`device_pulse_train`: one device driven by a pulse train (optionally through a series
  resistor), the cross-check of cosim's own pulse integration;
- :func:`array_pulse_deck` / :func:`array_pulse_train`: a crossbar whose cells are device
  subcircuits instead of resistors (the circuit of :func:`cosim.circuit.build_circuit`, with
  every port source pulsing between 0 V and its bias value), the fully coupled reference for
  programming through the circuit (:mod:`cosim.array.program`). Meant for small arrays: every
  cell adds a state node and a few B-sources.

An ngspice failure raises :class:`EngineError` with the deck path, the exit status and the tail
of ngspice's output.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cosim.circuit.build import build_circuit
from cosim.circuit.engines.spice import MISSING, ngspice_binary
from cosim.circuit.spec import CrossbarSpec
from cosim.devices.behavioural import instance, num, pulse_train_deck, spice_subckt, state_scale
from cosim.devices.pulse import Pulse
from cosim.errors import EngineError, SpecError

log = logging.getLogger(__name__)
# ngspice -b exits 0 after some failures (an aborted transient still writes a partial table).
_FAILED = re.compile(r"(?i)\berror\b|timestep too small|aborted")


def run_ngspice(deck: str, *, out_file: str = "out.txt", timeout: float = 600.0,
                keep: str | Path | None = None) -> dict[str, np.ndarray]:
    """Run ``deck`` with ``ngspice -b`` and return the columns of its ``wrdata`` table by name.

    The deck must ``wrdata out_file ...`` with ``wr_singlescale`` and ``wr_vecnames`` set (as
    the decks of this module do). keep: directory to leave the deck and table in (default a
    temporary directory, removed afterwards).
    """
    binary = ngspice_binary()
    if binary is None:
        raise EngineError(MISSING)
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="cosim-tran-"))
    work.mkdir(parents=True, exist_ok=True)
    deck_path = work / "deck.cir"
    try:
        deck_path.write_text(deck, encoding="utf-8")
        try:
            proc = subprocess.run([binary, "-b", deck_path.name], cwd=work, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EngineError(f"ngspice timed out after {timeout:g} s on {deck_path}") from None
        out = work / out_file
        text = proc.stdout + proc.stderr
        if proc.returncode != 0 or not out.exists() or _FAILED.search(text):
            tail = "\n".join(ln for ln in text.splitlines() if ln.strip())[-2000:]
            raise EngineError(f"ngspice failed on {deck_path} (exit status {proc.returncode}):\n{tail}")
        return _read_wrdata(out)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _read_wrdata(path: Path) -> dict[str, np.ndarray]:
    with path.open(encoding="utf-8") as fh:
        names = fh.readline().split()
    data = np.loadtxt(path, skiprows=1, ndmin=2)
    if data.shape[1] != len(names):
        raise EngineError(f"{path}: {len(names)} column names but {data.shape[1]} columns")
    return {name: data[:, k] for k, name in enumerate(names)}


# -- one device ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DeviceTrain:
    """Waveforms of a one-device pulse train in ngspice.

    Attributes:
        time: s. v_source: source voltage, V. v_device: voltage across the device, V.
        current: device current, A. state: state in model units.
        state_after: (n_pulses,) state after each pulse (sampled mid-way between pulses).
        period, delay: pulse timing, s (pulse k starts at delay + k·period).
    """

    time: np.ndarray
    v_source: np.ndarray
    v_device: np.ndarray
    current: np.ndarray
    state: np.ndarray
    state_after: np.ndarray
    period: float
    delay: float


def device_pulse_train(model_name: str, params, *, state: float, pulse: Pulse, n_pulses: int,
                       period: float | None = None, r_series: float = 0.0, **deck_options) -> DeviceTrain:
    """Drive one behavioural device with ``n_pulses`` pulses in ngspice; see :func:`pulse_train_deck`.

    period defaults to twice the pulse duration.
    """
    duration = (pulse.rise or 1e-3 * pulse.width) + pulse.width + (pulse.fall or 1e-3 * pulse.width)
    period = 2.0 * duration if period is None else float(period)
    deck = pulse_train_deck(model_name, params, state=state, pulse=pulse, n_pulses=n_pulses,
                            period=period, r_series=r_series, **deck_options)
    cols = run_ngspice(deck)
    t = cols["time"]
    x = cols["v(xd.x)"] * state_scale(model_name)
    delay = period / 4.0
    samples = delay + np.arange(n_pulses) * period + 0.5 * (duration + period)
    return DeviceTrain(time=t, v_source=cols["v(in)"], v_device=cols["v(a)"], current=cols["i(vam)"],
                       state=x, state_after=np.interp(samples, t, x), period=period, delay=delay)


# -- a small array -------------------------------------------------------------------------------
def array_pulse_deck(spec: CrossbarSpec, model_name: str, params: dict, states: np.ndarray,
                     inputs: np.ndarray, *, pulse_shape: Pulse, n_pulses: int, period: float,
                     out_file: str = "out.txt", max_step: float | None = None, reltol: float = 1e-7,
                     max_cells: int = 400) -> str:
    """The ngspice deck of ``spec`` with device subcircuits as cells, every source pulsed.

    Each port source of :func:`build_circuit` (``vd{i}``/``vs{j}``) becomes a PULSE from 0 V to
    the value it has for the forward read of ``inputs`` (the selected rows' write voltages and
    the bias of the V/2 / V/3 scheme), with ``pulse_shape``'s ramps and width (its amplitude is
    ignored), ``n_pulses`` times every ``period``; between pulses every line is at 0 V.

    Args:
        spec: the array and its bias scheme (its conductances are ignored: the devices replace them).
        model_name, params: the device model; each value of ``params`` a float or an (N, M) array.
        states: (N, M) initial states, model units.
        inputs: (N,) row-port values, V (as for a forward read).
    The table written holds time and every cell's state node ``v(xg{i}_{j}.x)``.
    """
    n, m = spec.shape
    if n * m > max_cells:
        raise SpecError(f"array_pulse_deck writes one subcircuit per cell; {n}x{m} exceeds max_cells={max_cells}")
    states = np.broadcast_to(np.asarray(states, float), (n, m))
    circuit = build_circuit(spec)
    lay = circuit.layout
    names = circuit.node_names
    values = circuit.source_values(np.asarray(inputs, float).reshape(1, -1))[0]
    edge = 1e-3 * pulse_shape.width
    rise, fall = pulse_shape.rise or edge, pulse_shape.fall or edge
    delay = period / 4.0
    nominal = {k: float(np.mean(v)) for k, v in params.items()}
    varied = {k: np.broadcast_to(np.asarray(v, float), (n, m)) for k, v in params.items() if np.ndim(v)}
    lines = [f"cosim {n}x{m} {spec.cell} array, {model_name} cells, {n_pulses} pulse(s)",
             spice_subckt(model_name, nominal).rstrip("\n")]

    def node(k: int) -> str:
        return "0" if k == 0 else str(names[k])

    cell = slice(lay.cell_res0, lay.cell_res0 + n * m)
    for k in range(circuit.res_g.size):
        a, b, g = node(circuit.res_a[k]), node(circuit.res_b[k]), circuit.res_g[k]
        if cell.start <= k < cell.stop:
            i, j = divmod(k - cell.start, m)
            over = {name: float(v[i, j]) for name, v in varied.items()}
            lines.append(instance(f"g{i}_{j}", a, b, model_name, state=states[i, j], params=over))
        elif np.isinf(g):
            lines.append(f"v{circuit.res_names[k]} {a} {b} 0")
        elif g > 0:
            lines.append(f"r{circuit.res_names[k]} {a} {b} {num(1.0 / g)}")
    for k in range(circuit.vsrc_p.size):
        p, q, val = node(circuit.vsrc_p[k]), node(circuit.vsrc_n[k]), float(values[k])
        lines.append(f"{circuit.vsrc_names[k]} {p} {q} PULSE(0 {num(val)} {num(delay)} {num(rise)} "
                     f"{num(fall)} {num(pulse_shape.width)} {num(period)} {n_pulses})")
    h = max_step or min(pulse_shape.width, max(min(rise, fall), pulse_shape.width / 20.0)) / 100.0
    probes = " ".join(f"v(xg{i}_{j}.x)" for i in range(n) for j in range(m))
    lines += [
        f".options reltol={num(reltol)} abstol=1e-18 vntol=1e-12 chgtol=1e-20 method=gear",
        f".tran {num(h)} {num(delay + n_pulses * period)} 0 {num(h)} uic",
        ".control", "set wr_singlescale", "set wr_vecnames", "set numdgt=16", "run",
        f"wrdata {out_file} {probes}", "quit", ".endc", ".end", "",
    ]
    return "\n".join(lines)


def array_pulse_train(spec: CrossbarSpec, model_name: str, params: dict, states: np.ndarray,
                      inputs: np.ndarray, *, pulse_shape: Pulse, n_pulses: int = 1,
                      period: float | None = None, **deck_options) -> np.ndarray:
    """(N, M) device states after ``n_pulses`` pulses of the bias pattern, solved by ngspice.

    See :func:`array_pulse_deck`; period defaults to twice the pulse duration.
    """
    edge = 1e-3 * pulse_shape.width
    duration = (pulse_shape.rise or edge) + pulse_shape.width + (pulse_shape.fall or edge)
    period = 2.0 * duration if period is None else float(period)
    deck = array_pulse_deck(spec, model_name, params, states, inputs, pulse_shape=pulse_shape,
                            n_pulses=n_pulses, period=period, **deck_options)
    cols = run_ngspice(deck)
    n, m = spec.shape
    x = np.array([[cols[f"v(xg{i}_{j}.x)"][-1] for j in range(m)] for i in range(n)])
    return x * state_scale(model_name)
