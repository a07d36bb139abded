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

This package may import :mod:`cosim.devices` and :mod:`cosim.circuit`, nothing above them.
"""

from cosim.array.layer import LayerPulses, TiledLayer, TilePair
from cosim.array.mapping import Block, Converters, WeightMap, quantize_uniform, tile_blocks
from cosim.array.tile import ArraySpec, PulseReport, Tile, TileStats

__all__ = ["ArraySpec", "Block", "Converters", "LayerPulses", "PulseReport", "Tile", "TileStats", "TilePair",
           "TiledLayer", "WeightMap", "quantize_uniform", "tile_blocks"]
