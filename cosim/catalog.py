"""What cosim knows by name, in one place and importable without the numerical layers.

- the choices of the physical array (drive and sense sides, cell types, bias schemes) and of
  the solver (nodal methods, LU orderings, how ngspice runs);
- :data:`ENGINES`, the engine registry (name → ``"module:attribute"``, imported on first use);
- :data:`ARRAY_FIELDS`, the scalar declaration (type, unit, range, choices, default, doc) of each
  physical array field.

``CrossbarSpec`` validates against these; ``ArraySpec``, the training and study configs and the
CLI options are derived from them, so a new array field or a new engine is one edit here (plus,
for a field, its line in ``CrossbarSpec``). Kept light (no numpy-heavy imports) because the CLI
builds its parser from it and ``cosim --help`` must stay instant.
"""

from __future__ import annotations

from cosim.schema import Field

DRIVE_SIDES = ("left", "right", "both")
SENSE_SIDES = ("bottom", "top", "both")
CELL_TYPES = ("0T1R", "1T1R", "device", "1S1R", "1T1R-mos")
#: Cell kinds whose cells obey a nonlinear I–V law (``CrossbarSpec.law``), read by Newton's method.
NONLINEAR_CELLS = ("device", "1S1R", "1T1R-mos")
UNSELECTED = ("driven", "floating", "grounded", "v/2", "v/3")

METHODS = ("auto", "direct", "pcg", "transfer", "amg")
ORDERINGS = ("auto", "COLAMD", "MMD_AT_PLUS_A", "MMD_ATA", "NATURAL")
NGSPICE_MODES = ("auto", "shared", "subprocess")

# The engine registry: name → "module:attribute" of an object with ``prepare(circuit, options)``
# (see cosim.circuit.engines.base.Engine); a new engine is one new module and one line here.
ENGINES: dict[str, str] = {
    "ideal": "cosim.circuit.engines.ideal:ENGINE",
    "nodal": "cosim.circuit.engines.nodal:ENGINE",
    "spice": "cosim.circuit.engines.spice:ENGINE",
}

_OHM = dict(type="float", default=0.0, minimum=0.0, unit="Ω")

# The physical array, one scalar declaration per field. ``CrossbarSpec`` also takes per-segment
# arrays for the four wire and periphery resistances; these are their one-value form.
ARRAY_FIELDS: dict[str, Field] = {
    "r_row": Field(**_OHM, doc="row-wire resistance per segment between adjacent cells"),
    "r_col": Field(**_OHM, doc="column-wire resistance per segment between adjacent cells"),
    "r_driver": Field(**_OHM, doc="row driver output resistance"),
    "r_sense": Field(**_OHM, doc="sense-amplifier input resistance"),
    "v_sense": Field(type="float", default=0.0, unit="V", doc="virtual-ground potential of the sense amplifiers"),
    "drive": Field(type="str", default="left", choices=DRIVE_SIDES, doc="row end(s) the drivers reach"),
    "sense": Field(type="str", default="bottom", choices=SENSE_SIDES,
                   doc="column end(s) the sense amplifiers reach"),
    "cell": Field(type="str", default="0T1R", choices=CELL_TYPES,
                  doc="cell: 0T1R (the device as its read conductance, ohmic), 1T1R (that plus r_access), "
                      "device (the device's own I(V, state)), 1S1R (device I(V) + selector), "
                      "1T1R-mos (device I(V) + level-1 access transistor)"),
    "r_access": Field(**_OHM, doc="on-resistance of the 1T1R access transistor (ignored for 0T1R)"),
    "access_card": Field(type="str", default=None,
                         doc="selector (1S1R) or transistor (1T1R-mos) card: a TOML path or a name in "
                             "models/cards/cells (default selector_default / nmos_l1_default)"),
    "v_gate": Field(type="float", default=None, minimum=0.0, maximum=20.0, unit="V",
                    doc="selected word-line (gate) voltage of 1T1R-mos cells (default: the card's)"),
    "unselected": Field(type="str", default="driven", choices=UNSELECTED,
                        doc="bias of lines not selected (driven: held by their own periphery at 0 V / v_sense)"),
    "v_select": Field(type="float", default=None, unit="V",
                      doc="selected-line voltage divided by the v/2 and v/3 schemes"),
}

# The fields a tile's array takes from ARRAY_FIELDS (its reads keep every line driven).
TILE_FIELDS = ("r_row", "r_col", "r_driver", "r_sense", "drive", "sense", "cell", "r_access")
# The fields that say which access element a nonlinear cell carries: the array layer turns them
# (with the device card) into ``CrossbarSpec.law``, which the circuit layer solves.
CELL_FIELDS = ("access_card", "v_gate")
