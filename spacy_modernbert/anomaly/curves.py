"""ROC and precision-recall curves of anomaly scores (numpy only, ties handled as sklearn)."""
from typing import Tuple

import numpy


def _cumulative_counts(gold: numpy.ndarray, scores: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """True/false positives when thresholding at each distinct score, highest first."""
    order = numpy.argsort(-scores, kind="mergesort")
    scores, gold = scores[order], gold[order]
    last_of_tie = numpy.r_[numpy.nonzero(numpy.diff(scores))[0], gold.size - 1]
    tps = numpy.cumsum(gold)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return tps, fps, scores[last_of_tie]


def roc_curve(gold, scores) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(false positive rates, true positive rates, thresholds), starting at (0, 0)."""
    gold = numpy.asarray(gold, dtype="float64")
    tps, fps, thresholds = _cumulative_counts(gold, numpy.asarray(scores, dtype="float64"))
    tps, fps = numpy.r_[0.0, tps], numpy.r_[0.0, fps]
    n_pos, n_neg = tps[-1], fps[-1]
    fpr = fps / n_neg if n_neg else numpy.zeros_like(fps)
    tpr = tps / n_pos if n_pos else numpy.zeros_like(tps)
    return fpr, tpr, numpy.r_[numpy.inf, thresholds]


def precision_recall_curve(gold, scores) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(precision, recall, thresholds) for thresholds from the highest score down."""
    gold = numpy.asarray(gold, dtype="float64")
    tps, fps, thresholds = _cumulative_counts(gold, numpy.asarray(scores, dtype="float64"))
    precision = tps / numpy.maximum(tps + fps, 1)
    recall = tps / tps[-1] if tps.size and tps[-1] else numpy.zeros_like(tps)
    return precision, recall, thresholds


def roc_auc(gold, scores) -> float:
    """Area under the ROC curve (trapezoidal, exact with ties)."""
    fpr, tpr, _ = roc_curve(gold, scores)
    return float(numpy.trapezoid(tpr, fpr)) if hasattr(numpy, "trapezoid") else float(numpy.trapz(tpr, fpr))


def average_precision(gold, scores) -> float:
    """Average precision: sum over thresholds of (recall step) * precision."""
    precision, recall, _ = precision_recall_curve(gold, scores)
    return float(numpy.sum(numpy.diff(numpy.r_[0.0, recall]) * precision))
