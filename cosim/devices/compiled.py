"""The optional accelerated path: each ``models/<name>.va`` compiled once by verilogae.

verilogae (GPL-3, imported lazily) turns the ``(*retrieve*)`` variables of a Verilog-A module
into vectorised functions ``fn.eval(temperature=, voltages={"br_pn": v, "br_x": V(x)}, **params)``
over 1-D float64 arrays (every parameter a scalar or an array of the same length). It needs a
system linker (``ld``, Debian's binutils).

Caching: compiled objects live under ``$XDG_CACHE_HOME/cosim`` (or ``~/.cache/cosim``) in a
directory keyed by the SHA-256 of the .va text and the verilogae version; verilogae 1.0 has no
cache-directory argument and reads ``XDG_CACHE_HOME``, so the variable is pointed there for the
duration of the call (under a lock). Within a process each source compiles at most once.

:class:`CompiledModel` presents a compiled module behind the :class:`DeviceModel` interface:
``current`` and ``state_rate`` (and the chord conductance derived from the current) run compiled
code; bounds, inverse and constraints come from the numpy reference model, whose equations the
.va file repeats (parity tested to 1e-10 relative).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from cosim.devices.base import DeviceModel, Params
from cosim.devices.paths import cache_root, models_dir
from cosim.errors import EngineError

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_MEMO: dict[str, object] = {}


def _import_verilogae():
    try:
        import verilogae  # noqa: PLC0415 - optional, heavy, GPL: only on demand
    except ImportError as exc:
        raise EngineError(f"verilogae is not installed ({exc}); the compiled device path needs "
                          "`pip install verilogae` (CPython ≤ 3.11 wheels)") from exc
    return verilogae


def compile_va(path: Path) -> object:
    """Compile (or load from cache) the Verilog-A file at ``path``; returns verilogae's model.

    Raises EngineError with verilogae's captured output if the file is missing or does not
    compile.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise EngineError(f"cannot read Verilog-A source {path}: {exc}") from exc
    vae = _import_verilogae()
    key = hashlib.sha256(text + b"\0" + vae.__version__.encode()).hexdigest()[:24]
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
        cache = cache_root() / f"verilogae-{vae.__version__}" / key
        cache.mkdir(parents=True, exist_ok=True)
        fresh = not any(cache.rglob("*.mod"))
        model, output = _load_quietly(vae, path, cache)
        if model is None:
            raise EngineError(f"verilogae could not compile {path}: {output.strip() or 'no output'}")
        log.debug("%s %s (cache %s): %s", "compiled" if fresh else "loaded", path.name, cache, output.strip())
        _MEMO[key] = model
        return model


def _load_quietly(vae, path: Path, cache: Path) -> tuple[object | None, str]:
    """Call verilogae.load with its cache under ``cache``, capturing what it writes to fd 2."""
    old_env = os.environ.get("XDG_CACHE_HOME")
    saved_fd = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        os.environ["XDG_CACHE_HOME"] = str(cache)
        try:
            model = vae.load(str(path))
        except Exception as exc:  # verilogae raises a bare Exception/TypeError on failure
            model, error = None, f"{type(exc).__name__}: {exc}"
        else:
            error = ""
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            if old_env is None:
                os.environ.pop("XDG_CACHE_HOME", None)
            else:
                os.environ["XDG_CACHE_HOME"] = old_env
        sink.seek(0)
        output = sink.read().decode(errors="replace")
    return model, (error + "\n" + output) if error else output


class CompiledModel(DeviceModel):
    """A :class:`DeviceModel` whose current and state rate are verilogae-compiled functions."""

    backend = "compiled"

    def __init__(self, reference: DeviceModel, vae_model: object):
        self.reference = reference
        self._vae = vae_model
        functions = vae_model.functions
        for var in (reference.va_current, reference.va_rate):
            if var not in functions:
                raise EngineError(f"{reference.va_file} has no (*retrieve*) variable {var!r}")
        self._current = functions[reference.va_current]
        self._rate = functions[reference.va_rate]
        self._integer = {s.name for s in reference.specs if s.integer}
        # Metadata is the reference model's (explicit copies, no attribute magic).
        for attr in ("name", "state_name", "state_unit", "specs", "set_polarity", "g_increases_with_state",
                     "hard_bounds", "has_exact_pulse", "va_file", "va_state_scale", "va_current", "va_rate"):
            setattr(self, attr, getattr(reference, attr))

    def _call(self, fn, state, v, params: Params) -> np.ndarray:
        state = np.asarray(state, dtype=float)
        v = np.asarray(v, dtype=float)
        shape = np.broadcast_shapes(state.shape, v.shape, *(np.shape(params[p]) for p in fn.parameters))
        size = int(np.prod(shape))
        flat = lambda a: np.ascontiguousarray(np.broadcast_to(a, shape), dtype=float).reshape(size)  # noqa: E731
        kwargs = {}
        for name in fn.parameters:
            value = params[name]
            if np.ndim(value) == 0:
                kwargs[name] = int(value) if name in self._integer else float(value)
            elif name in self._integer:
                kwargs[name] = np.ascontiguousarray(np.broadcast_to(value, shape), dtype=np.int32).reshape(size)
            else:
                kwargs[name] = flat(value)
        voltages = {"br_pn": flat(v), "br_x": flat(state) / self.va_state_scale}
        out = fn.eval(temperature=300.0, voltages=voltages, **kwargs)
        return np.asarray(out, dtype=float).reshape(shape)

    def current(self, state, v, params):
        return self._call(self._current, state, v, params)

    def state_rate(self, state, v, params):
        return self._call(self._rate, state, v, params)

    def conductance(self, state, v_read, params):
        if v_read == 0:  # chord conductance undefined; the reference gives the small-signal limit
            return self.reference.conductance(state, v_read, params)
        return self.current(state, v_read, params) / v_read

    def state_bounds(self, params):
        return self.reference.state_bounds(params)

    def state_for_conductance(self, g, v_read, params):
        return self.reference.state_for_conductance(g, v_read, params)

    def constraints(self, params):
        return self.reference.constraints(params)

    def quiet_band(self, params):
        return self.reference.quiet_band(params)

    def exact_pulse(self, state, pulse, params):
        return self.reference.exact_pulse(state, pulse, params)


def compiled_model(reference: DeviceModel) -> CompiledModel:
    """Compile ``reference.va_file`` and wrap it; raises EngineError when that is impossible."""
    return CompiledModel(reference, compile_va(models_dir() / reference.va_file))
