"""Crossbar circuits and the engines that solve them.

Public names:

- :class:`CrossbarSpec` (spec.py): the physical array.
- :func:`build_circuit` (build.py): spec → :class:`Circuit` (model.py).
- :func:`read` (read.py): one-call read through an engine.
- :class:`SolverOptions`, :class:`ReadResult`, :func:`get_engine`, :data:`ENGINES`
  (engines/base.py): the engine protocol; engines ``ideal``, ``nodal``, ``spice``.
- :func:`assemble_nodal` (mna.py): the reduced nodal system.
- :func:`cosim.circuit.topology.check_topology`: floating nodes, source loops (networkx;
  imported on use).
- :func:`cosim.circuit.sneak.sneak_report`: sneak paths and read margin of a selected cell.

This package imports nothing from :mod:`cosim.devices`.
"""

from cosim.circuit.build import build_circuit
from cosim.circuit.engines.base import ENGINES, ReadResult, SolverOptions, get_engine
from cosim.circuit.mna import assemble_nodal
from cosim.circuit.model import Circuit
from cosim.circuit.read import read
from cosim.circuit.spec import CrossbarSpec

__all__ = ["CrossbarSpec", "Circuit", "build_circuit", "read", "SolverOptions", "ReadResult",
           "get_engine", "ENGINES", "assemble_nodal"]
