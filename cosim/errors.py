"""One exception tree for every user-facing failure.

The CLI turns any :class:`CosimError` into a one-line message and exit status 2; anything else is
a bug and keeps its traceback.
"""

from __future__ import annotations


class CosimError(Exception):
    """Base of every error cosim raises for bad input or an unusable environment."""


class SpecError(CosimError, ValueError):
    """A spec, card or config field is missing, mistyped or out of range.

    ``path`` is the dotted field at fault (``"array.r_row"``) when the error names one, and
    ``reason`` the rest of the message (``"must be ≥ 0 Ω, got -1.0"``), so a caller can name the
    field its own way (a CLI option, another section) without parsing the text.
    """

    def __init__(self, message: str, *, path: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.reason = reason

    @classmethod
    def at(cls, path: str, reason: str) -> SpecError:
        """The error ``"<path> <reason>"`` (``"<path>: …"`` when the reason starts with a colon)
        with both kept as data."""
        return cls(f"{path}{'' if reason.startswith(':') else ' '}{reason}", path=path, reason=reason)

    @property
    def field(self) -> str:
        """The field's own name, the last part of ``path`` without an index (``"r_row"``)."""
        return self.path.rsplit(".", 1)[-1].split("[", 1)[0]

    def under(self, section: str) -> SpecError:
        """The same error named in ``section`` (``spec.r_row …`` → ``array.r_row …``)."""
        if not self.path:
            return self
        return SpecError.at(f"{section}.{self.path.split('.', 1)[-1]}", self.reason)

    def prefixed(self, where: str) -> SpecError:
        """The message behind ``where: `` (a file, an option), the field path kept."""
        return SpecError(f"{where}: {self}", path=self.path, reason=self.reason)

    def __reduce__(self):  # keep the path across pickling (Dask workers)
        return (_spec_error, (str(self), self.path, self.reason))


def _spec_error(message: str, path: str, reason: str) -> SpecError:
    return SpecError(message, path=path, reason=reason)


class InputError(CosimError, ValueError):
    """An input array or file has the wrong shape, dtype or content."""


class OutputError(CosimError, OSError):
    """An output cannot be written: full disk, read-only file system, a name too long."""


class NetlistError(CosimError):
    """A SPICE netlist cannot be parsed or written (message names file and line)."""


class TopologyError(CosimError):
    """A circuit cannot be solved: floating nodes, voltage-source loops, shorted sources."""


class ConvergenceError(CosimError):
    """An iterative solver stopped before reaching its tolerance."""


class EngineError(CosimError):
    """An engine is unknown, unavailable (e.g. ngspice missing) or failed to run."""
