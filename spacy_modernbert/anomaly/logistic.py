"""The logistic function and softplus, written once for every score and loss of `anomaly_scorer`.

Invariants: no overflow for any finite input (float64 in, float64 out), and small
probabilities stay distinct (`exp(-|x|)` form, no tanh), so rankings of very normal docs
survive; any array module (`xp`: numpy or cupy).
"""

from typing import Any


def sigmoid(xp: Any, x: Any) -> Any:
    """1 / (1 + exp(-x)), stable for large |x|."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def softplus(xp: Any, x: Any) -> Any:
    """log(1 + exp(x)) without overflow."""
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))
