"""The DC operating point of a circuit, named the way ngspice prints it.

``cosim solve NETLIST --output op.json`` writes :meth:`OperatingPoint.to_json`:
``{"nodes": {name: volts}, "branches": {source: amperes}}``. Names are those of the circuit's
ngspice deck (:mod:`cosim.circuit.netlist_write`), lower-cased: for a circuit read from a
netlist they are the reader's (``xa.mid``, ``v.xa.v1``); for a crossbar, the internal nodes
carry the instance prefix (``xarr.r3_17``) and the ports (``d0``, ``s0``) do not. Branch
currents follow ngspice (``v1#branch``): positive from the ``+`` node through the source to
the ``-`` node, so a source delivering power reads negative. Ground and nodes that no element
touches (ngspice never sees them) are left out, as in ngspice's own listing.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from cosim.circuit.engines.base import SolverOptions, prepare
from cosim.circuit.model import Circuit
from cosim.circuit.netlist_write import spice_naming
from cosim.errors import EngineError


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Node voltages (V) and voltage-source branch currents (A) by ngspice name."""

    nodes: dict[str, float]
    branches: dict[str, float]
    info: dict = field(default_factory=dict)  # engine details (method, bound, ...); not in the JSON

    def to_json(self, *, indent: int | None = 2) -> str:
        """``{"nodes": …, "branches": …}`` with every float written in round-trip precision."""
        return json.dumps({"nodes": self.nodes, "branches": self.branches}, indent=indent)


def operating_point(circuit: Circuit, *, engine: str = "nodal",
                    options: SolverOptions | None = None) -> OperatingPoint:
    """Solve ``circuit`` with every input at 0 V (its sources at their DC values).

    ``engine`` is "nodal" (exact sparse MNA) or "spice" (ngspice); the ideal engine has no
    node voltages and is refused.
    """
    if engine == "ideal":
        raise EngineError("the ideal engine has no operating point; use engine 'nodal' or 'spice'")
    options = options or SolverOptions()
    # huge (finite) values may overflow on the way; the result is checked below instead
    with np.errstate(over="ignore", invalid="ignore"):
        prepared = prepare(circuit, dataclasses.replace(options, engine=engine))
        result = prepared.solve(np.zeros((1, circuit.n_inputs)), want_nodes=True)
    if circuit.spice_names:  # read from a deck: the names are ngspice's already
        node_names, src_names = ["", *circuit.node_names[1:]], list(circuit.vsrc_names)
    else:
        naming = spice_naming(circuit)
        node_names, src_names = naming.nodes, naming.vsrc
    volts = result.node_voltages[0]
    currents = result.branch_currents[0]
    if not (np.isfinite(volts[~np.isnan(volts)]).all() and np.isfinite(currents).all()):
        raise EngineError("the operating point overflows (a node voltage or source current is "
                          "beyond ±1.8e308); check the values of the sources and resistors")
    nodes = {name: float(volts[k]) for k, name in enumerate(node_names)
             if name and np.isfinite(volts[k])}
    branches = {name: float(i) for name, i in zip(src_names, currents)}
    return OperatingPoint(nodes=dict(sorted(nodes.items())), branches=branches, info=dict(result.info))
