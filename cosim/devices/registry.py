"""The registry of compact models: name → numpy reference model, with the compiled path on demand."""

from __future__ import annotations

import logging
from typing import Literal

from cosim.devices.base import DeviceModel
from cosim.devices.pulse_nl import PulseNL
from cosim.devices.stanford_pku import StanfordPKU
from cosim.devices.vteam import VTEAM
from cosim.errors import EngineError, SpecError

log = logging.getLogger(__name__)

Backend = Literal["numpy", "compiled", "auto"]
BACKENDS = ("numpy", "compiled", "auto")

MODELS: dict[str, DeviceModel] = {m.name: m for m in (VTEAM(), StanfordPKU(), PulseNL())}
_COMPILED: dict[str, DeviceModel] = {}
_FAILED: dict[str, str] = {}  # name -> why the compiled path is unavailable (logged once)


def get_model(name: str, backend: Backend = "numpy") -> DeviceModel:
    """The model registered as ``name``.

    backend: "numpy" (the readable reference), "compiled" (verilogae; raises EngineError when
    unavailable) or "auto" (compiled when possible, else numpy with a logged reason).
    """
    if name not in MODELS:
        raise SpecError(f"model {name!r} is unknown; expected one of {', '.join(MODELS)}")
    if backend not in BACKENDS:
        raise SpecError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    reference = MODELS[name]
    if backend == "numpy":
        return reference
    if name not in _COMPILED:
        if name in _FAILED and backend == "auto":
            return reference
        from cosim.devices.compiled import compiled_model  # noqa: PLC0415 - lazy optional path

        try:
            _COMPILED[name] = compiled_model(reference)
        except EngineError as exc:
            _FAILED[name] = str(exc)
            if backend == "compiled":
                raise
            log.warning("compiled %s unavailable, using numpy: %s", name, exc)
            return reference
    return _COMPILED[name]
