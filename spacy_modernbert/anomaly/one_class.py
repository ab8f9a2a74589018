"""One-class statistics of `anomaly_scorer`: the center, and distances -> scores in [0, 1].

A one-class head outputs the mean squared distance of a doc's projection to a fixed center
`c`. The score is a logistic of the standardized root distance,
`sigmoid((d - location) / scale - Z_AT_HALF)`, with location/scale the median and the scaled
median absolute deviation of `d` over normal docs: score 0.5 at two "standard deviations"
above typical normal docs, whatever the scale of the distances. The statistics are fitted
at the end of `initialize`, tracked during training by a moving average over the normal docs
of each batch (`track`), and can be refitted on normal docs.

Numpy/thinc only (the component imports this module whenever a pipeline is created).
"""

import math
from typing import Any, Optional, Tuple

import numpy

from .model import head_predict, pooled_docs, project, set_center

# The standardized one-class distance that maps to score 0.5.
Z_AT_HALF = 2.0
# Moving average of the one-class location/scale during training (per batch).
STATS_MOMENTUM = 0.9
# Normal docs used to set the one-class center and statistics in `initialize`.
INIT_DOCS = 1000
# Deep SVDD: center coordinates are kept at least this far from 0, so that a collapsed
# (all-zero) projection is not at the center.
CENTER_EPS = 0.1
# The MAD of a normal distribution times this is its standard deviation.
_MAD_TO_STD = 1.4826


def distances(raw: numpy.ndarray) -> numpy.ndarray:
    """Root mean squared distances (float64) from the head's raw mean squared distances."""
    return numpy.sqrt(numpy.maximum(numpy.asarray(raw, dtype="float64").reshape(-1), 0.0))


def robust_location_scale(dists: numpy.ndarray) -> Tuple[float, float]:
    """Median and scaled MAD (floored so that the scale is never 0)."""
    dists = numpy.asarray(dists, dtype="float64")
    location = float(numpy.median(dists))
    scale = float(_MAD_TO_STD * numpy.median(numpy.abs(dists - location)))
    if not math.isfinite(scale) or scale <= 0.0:
        scale = float(numpy.std(dists))
    floor = 1e-3 * max(abs(location), 1e-3)
    return location, max(scale, floor)


def track(
    location: float, scale: float, raw: numpy.ndarray, normal: numpy.ndarray
) -> Optional[Tuple[float, float]]:
    """The moving-average update of (location, scale) from one batch, or None if it has < 2 normal docs.

    raw (numpy.ndarray): the batch's raw mean squared distances; normal (numpy.ndarray): a
    boolean mask of its normal docs.
    """
    if normal.sum() < 2:
        return None
    new_location, new_scale = robust_location_scale(
        numpy.sqrt(numpy.maximum(raw.reshape(-1)[normal], 0.0))
    )
    m = STATS_MOMENTUM
    return m * location + (1 - m) * new_location, m * scale + (1 - m) * new_scale


def standardized(xp: Any, raw: Any, location: Optional[float], scale: Optional[float]) -> Any:
    """`(d - location) / scale - Z_AT_HALF`, the logit of the one-class score (xp arrays, float64).

    Before the statistics are fitted (None), distances are used as they come.
    """
    if location is None or scale is None:
        location, scale = 0.0, 1.0
    d = xp.sqrt(xp.maximum(xp.asarray(raw, dtype="float64").reshape(-1), 0.0))
    return (d - float(location)) / float(scale) - Z_AT_HALF


def center_from_projections(xp: Any, projections: Any) -> Any:
    """The center: the mean projection of normal docs, each coordinate at least CENTER_EPS from 0."""
    center = projections.mean(axis=0)
    return xp.where(
        xp.abs(center) < CENTER_EPS, xp.where(center < 0, -CENTER_EPS, CENTER_EPS), center
    )


def fit_center(model: Any, docs: Any) -> None:
    """Set the head's center from normal docs processed by the upstream components."""
    projections = project(model, pooled_docs(model, docs))
    set_center(model, center_from_projections(model.ops.xp, projections))


def fit_statistics(model: Any, docs: Any) -> Tuple[float, float]:
    """(location, scale) of the head's distances on normal docs processed upstream."""
    return robust_location_scale(distances(model.ops.to_numpy(head_predict(model, docs))))
