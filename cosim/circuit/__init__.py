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
- :func:`read_netlist` (netlist_read.py, with netlist_lines/defs/elements and expressions.py):
  the decks designers hand around → Circuit, with ngspice's DC semantics, or a one-line refusal.
- :func:`cosim.circuit.spice_deck.run_deck`: ngspice's own ``op`` of a deck file as written.
- :mod:`cosim.circuit.amg`: certified AMG-CG for large general M-matrix circuits (power grids).
- :func:`operating_point` / :class:`OperatingPoint` (oppoint.py): node voltages and source
  currents by ngspice's names, from any engine.
- :func:`cosim.circuit.topology.check_topology`: floating nodes, source loops (networkx;
  imported on use).
- :mod:`cosim.circuit.cells`: the cells' I(V) laws with dI/dV (``Ohmic``, ``Sinh``, level-1
  ``Mosfet``, ``SeriesCell`` with its internal node eliminated) for nonlinear solvers.
- :func:`cosim.circuit.sneak.sneak_report`: sneak paths and read margin of a selected cell
  (ohmic cells, one background).
- :func:`cosim.circuit.margin.read_margin`: worst-case read margin of passive or 1S1R arrays
  with nonlinear cells under floating, V/2 and V/3 unselected lines (exact Newton reads).

This package imports nothing from :mod:`cosim.devices`.
"""

import importlib

# `read` is bound now: the submodule of the same name would otherwise shadow the function
from cosim.circuit.read import read, solve_circuit

# name → module: loaded on first use (PEP 562), so reading a small netlist does not pay for the
# crossbar solvers and their compiled kernels (`cosim solve` latency, issue 13)
_PUBLIC = {
    "build_circuit": "build", "ENGINES": "engines.base", "ReadResult": "engines.base",
    "Engine": "engines.base", "Prepared": "engines.base", "prepare": "engines.base",
    "SolverOptions": "engines.base", "get_engine": "engines.base", "assemble_nodal": "mna",
    "Circuit": "model", "read_netlist": "netlist_read", "save_text": "netlist_write",
    "write_netlist": "netlist_write", "OperatingPoint": "oppoint", "operating_point": "oppoint",
    "CrossbarSpec": "spec",
}
__all__ = [*_PUBLIC, "read", "solve_circuit"]


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'cosim.circuit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cosim.circuit.{_PUBLIC[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
