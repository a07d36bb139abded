"""Tiles: crossbar circuits whose cells are device populations, and layers mapped onto them.

Public names:

- :class:`ArraySpec` (tile.py): the physical array (size, wires, periphery) a tile is built on.
- :class:`Tile` (tile.py): ``read``, ``read_transposed`` (through a circuit engine),
  ``apply_pulses`` (→ :class:`PulseReport`), ``set_conductances`` (write-verify),
  ``conductances``, ``window``, ``faults``; counters in :class:`TileStats`.
- :class:`WeightMap`, :class:`Converters`, :func:`quantize_uniform`, :func:`tile_blocks`,
  :class:`Block` (mapping.py): weights ↔ conductances, DAC/ADC, cutting a matrix into blocks.
- :class:`TiledLayer` (layer.py): one weight matrix on tiles, the networks' MatVec (forward,
  backward, weights) with digital estimates apart from the true device state;
  :class:`TilePair`, :class:`LayerPulses`.
- :func:`program_cells`, :func:`compare_schemes`, :class:`ProgramOptions`, :class:`ProgramReport`
  (program.py): programming cells of a passive array through the circuit (V/2, V/3,
  row-parallel), with the voltage each cell really sees and the half-select disturb.
- :class:`TileExport`, :func:`write_tapeout`, :func:`verify_tapeout`, :func:`run_deck`,
  :class:`TapeoutFiles` (tapeout.py): per-tile ngspice netlists, a top level, devices CSV.
- :mod:`cosim.array.cells`: device state/card → circuit cell law (``device_law``), the 1S1R
  selector and 1T1R transistor cards (``load_access_card``, ``AccessCard``).

This package may import :mod:`cosim.devices` and :mod:`cosim.circuit`, nothing above them.
"""

from cosim.array.layer import LayerPulses, TiledLayer, TilePair
from cosim.array.mapping import Block, Converters, WeightMap, quantize_uniform, tile_blocks
from cosim.array.program import ProgramOptions, ProgramReport, compare_schemes, program_cells
from cosim.array.tapeout import TapeoutFiles, TileExport, run_deck, verify_tapeout, write_tapeout
from cosim.array.tile import ArraySpec, PulseReport, Tile, TileStats

__all__ = ["ArraySpec", "Block", "Converters", "LayerPulses", "ProgramOptions", "ProgramReport", "PulseReport",
           "TapeoutFiles", "Tile", "TileExport", "TileStats", "TilePair", "TiledLayer", "WeightMap", "compare_schemes",
           "program_cells", "quantize_uniform", "run_deck", "tile_blocks", "verify_tapeout", "write_tapeout"]
