"""One exception tree for every user-facing failure.

The CLI turns any :class:`CosimError` into a one-line message and exit status 2; anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class CosimError(Exception):
    """Base of every error cosim raises for bad input or an unusable environment."""


class SpecError(CosimError, ValueError):
    """A spec, card or config field is missing, mistyped or out of range."""


class InputError(CosimError, ValueError):
    """An input array or file has the wrong shape, dtype or content."""


class NetlistError(CosimError):
    """A SPICE netlist cannot be parsed or written (message names file and line)."""


class TopologyError(CosimError):
    """A circuit cannot be solved: floating nodes, voltage-source loops, shorted sources."""


class ConvergenceError(CosimError):
    """An iterative solver stopped before reaching its tolerance."""


class EngineError(CosimError):
    """An engine is unknown, unavailable (e.g. ngspice missing) or failed to run."""
