"""Crossbar circuits and the engines that solve them.

Public names:

- :class:`CrossbarSpec` (spec.py): the physical array.
- :func:`build_circuit` (build.py): spec → :class:`Circuit` (model.py).
- :func:`read`, :func:`solve_circuit` (read.py): one-call reads through an engine.
- :class:`SolverOptions`, :class:`ReadResult`, :class:`Engine`, :class:`Prepared`,
  :func:`prepare`, :func:`get_engine` (engines/base.py): the engine interface with its defaults;
  engines ``ideal``, ``nodal``, ``spice`` registered in :data:`cosim.catalog.ENGINES`.
- :func:`assemble_nodal` (mna.py): the reduced nodal system.
- :func:`write_netlist` / :func:`save_text` (netlist_write.py): ngspice decks (a ``.subckt``
  per array, ``.param`` lines, ``.op`` + full-precision prints).
- :func:`read_netlist` (netlist_read.py): the SPICE subset designers hand around → Circuit.
- :func:`operating_point` / :class:`OperatingPoint` (oppoint.py): node voltages and source
  currents by ngspice's names, from any engine.
- :func:`cosim.circuit.topology.check_topology`: floating nodes, source loops (networkx;
  imported on use).
- :mod:`cosim.circuit.cells`: the cells' I(V) laws with dI/dV (``Ohmic``, ``Sinh``, level-1
  ``Mosfet``, ``SeriesCell`` with its internal node eliminated) for nonlinear solvers.
- :func:`cosim.circuit.sneak.sneak_report`: sneak paths and read margin of a selected cell.

This package imports nothing from :mod:`cosim.devices`.
"""

from cosim.circuit.build import build_circuit
from cosim.circuit.engines.base import (
           ENGINES,
           Engine,
           Prepared,
           ReadResult,
           SolverOptions,
           get_engine,
           prepare,
)
from cosim.circuit.mna import assemble_nodal
from cosim.circuit.model import Circuit
from cosim.circuit.netlist_read import read_netlist
from cosim.circuit.netlist_write import save_text, write_netlist
from cosim.circuit.oppoint import OperatingPoint, operating_point
from cosim.circuit.read import read, solve_circuit
from cosim.circuit.spec import CrossbarSpec

__all__ = ["CrossbarSpec", "Circuit", "build_circuit", "read", "solve_circuit", "prepare", "Engine", "Prepared",
           "SolverOptions", "ReadResult",
           "get_engine", "ENGINES", "assemble_nodal", "write_netlist", "save_text", "read_netlist",
           "operating_point", "OperatingPoint"]
