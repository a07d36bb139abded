"""cosim: a SPICE-coupled circuit-level co-simulator for memristor crossbar arrays.

Layers (each imports only those above it; ``devices`` and ``circuit`` import neither):

- :mod:`cosim.devices`  compact models, pulse integration, variation, fitting
- :mod:`cosim.circuit`  crossbar spec → circuit → engines (ideal | nodal | spice), netlists
- :mod:`cosim.array`    tiles joining circuit and devices
- :mod:`cosim.train`    networks on tiles, SSM and baseline optimizers
- :mod:`cosim.study`    sweeps, results store, reports, tape-out export
- :mod:`cosim.cli`      the ``cosim`` command

Importing :mod:`cosim` is light: it pulls in no sub-package.
"""

from cosim.errors import CosimError

__version__ = "0.1.0"
__all__ = ["CosimError", "__version__"]
