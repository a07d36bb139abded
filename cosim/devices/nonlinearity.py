"""NeuroSim's nonlinearity label NL and its A parameter, with cosim's stated definitions.

A normalised pulse-response curve (fraction p = P/P_max of the pulses, fraction y of the
conductance travel) with NeuroSim's shape is ``y(p) = (1 - exp(-p/a))/(1 - exp(-1/a))`` where
``a = A/P_max``. We write it with ``u = 1/a`` as ``y = expm1(-u p)/expm1(-u)``, which is smooth
through u = 0 (linear) and gives accelerating curves for u < 0.

NL is defined here as the largest deviation of y(p) from the straight line, divided by 0.099:
``NL = max_p (y(p) - p) / 0.099`` (negative for accelerating curves). NeuroSim tabulates
A/P_max against NL without stating a formula; this definition reproduces its published samples
(NL 1.51 → 0.8195, 2.40 → 0.4992, 4.88 → 0.2003, 7.51 → 0.0702) to within 0.1 % in A.
"""

from __future__ import annotations

import numpy as np

NL_SCALE = 0.099
_P = np.linspace(0.0, 1.0, 4001)


def curve(p: np.ndarray, u: float) -> np.ndarray:
    """Normalised NeuroSim curve y(p) for shape u = P_max/A (u = 0: linear)."""
    p = np.asarray(p, dtype=float)
    if abs(u) < 1e-9:
        return p.copy()
    return np.expm1(-u * p) / np.expm1(-u)


def nl_from_u(u: float) -> float:
    """NL label of the shape u = P_max/A."""
    dev = float(np.max(curve(_P, abs(u)) - _P))
    return float(np.sign(u)) * dev / NL_SCALE


def nl_from_a(a: float, p_max: float) -> float:
    """NL label of NeuroSim's A (pulses) for a curve of p_max pulses."""
    return nl_from_u(p_max / a)


def a_from_nl(nl: float, p_max: float) -> float:
    """NeuroSim's A (pulses, > 0) for a saturating curve of label ``nl`` in (0, 10) over p_max pulses."""
    if not 0.0 < nl < 10.0:
        raise ValueError(f"nl must be in (0, 10) for a saturating curve, got {nl!r}")
    from scipy.optimize import brentq  # noqa: PLC0415 - keep `import cosim.devices` light
    u = brentq(lambda u: nl_from_u(u) - nl, 1e-9, 2000.0, xtol=1e-12, rtol=1e-12)
    return p_max / u


def fit_u(y: np.ndarray) -> float:
    """Least-squares shape u of a normalised curve y_k sampled at p_k = k/(len(y) - 1)."""
    from scipy.optimize import minimize_scalar  # noqa: PLC0415 - keep `import cosim.devices` light

    y = np.asarray(y, dtype=float)
    p = np.linspace(0.0, 1.0, y.size)
    res = minimize_scalar(lambda u: float(np.sum((curve(p, u) - y) ** 2)), bounds=(-200.0, 200.0),
                          method="bounded", options={"xatol": 1e-10})
    return float(res.x)
