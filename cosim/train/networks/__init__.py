"""Networks in numpy whose every weight product goes through an injected :class:`MatVec`.

- :mod:`.base`: :class:`MatVec` (the seam to a crossbar tile), :class:`FloatLayerWeights` (the
  software reference), :func:`float_layers`, :func:`softmax_cross_entropy`, :class:`Network`
  (``forward``/``backward``/``loss_and_grads``/``init_weights``), :data:`BIAS_INPUT`.
- :mod:`.stages`: :class:`Dense`, :class:`Conv2D` (im2col), :class:`Pool2D`,
  :class:`Activation`, :class:`Flatten`; :func:`im2col`, :func:`col2im`.
- :mod:`.models`: :class:`MLP`, :class:`CNN` (``lenet_digits``, ``lenet5``, ``for_input``),
  :func:`make_network`.
"""

from cosim.train.networks.base import (
    BIAS_INPUT,
    FloatLayerWeights,
    MatVec,
    Network,
    float_layers,
    softmax_cross_entropy,
)
from cosim.train.networks.models import CNN, MLP, NETWORK_KINDS, make_network
from cosim.train.networks.stages import Activation, Conv2D, Dense, Flatten, Pool2D, col2im, im2col

__all__ = [
    "BIAS_INPUT", "CNN", "MLP", "NETWORK_KINDS", "Activation", "Conv2D", "Dense", "Flatten", "FloatLayerWeights",
    "MatVec", "Network", "Pool2D", "col2im", "float_layers", "im2col", "make_network", "softmax_cross_entropy",
]
