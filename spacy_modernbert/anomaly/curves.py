"""Threshold statistics of anomaly scores: ROC / precision-recall curves, AUC, AP (numpy only).

A doc is predicted anomalous when `score >= threshold`. Tied scores enter together
(one threshold), as in scikit-learn's `roc_curve` / `average_precision_score`.
The scorer, the threshold calibration and the evaluate command all build on these.
"""

from typing import Optional, Sequence, Tuple

import numpy


def check_labels(
    gold: Sequence[float], scores: Sequence[float]
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Gold labels and scores as float64 arrays; ValueError unless gold is 0/1 and scores are finite."""
    gold_a = numpy.asarray(gold, dtype="float64").ravel()
    scores_a = numpy.asarray(scores, dtype="float64").ravel()
    if gold_a.shape != scores_a.shape:
        raise ValueError(f"gold and scores differ in length: {gold_a.size} vs {scores_a.size}")
    bad = gold_a[(gold_a != 0.0) & (gold_a != 1.0)]
    if bad.size:
        raise ValueError(f"gold labels must be 0.0 (normal) or 1.0 (anomaly), got {bad[0]!r}")
    if not numpy.all(numpy.isfinite(scores_a)):
        raise ValueError("scores must be finite")
    return gold_a, scores_a


def threshold_table(
    gold: numpy.ndarray, scores: numpy.ndarray
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(distinct scores high to low, true positives, false positives) when thresholding at each."""
    order = numpy.argsort(-scores, kind="mergesort")
    scores, gold = scores[order], gold[order]
    last_of_tie = numpy.r_[numpy.nonzero(numpy.diff(scores))[0], gold.size - 1]
    tps = numpy.cumsum(gold)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    return scores[last_of_tie], tps, fps


def roc_curve(gold, scores) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(false positive rates, true positive rates, thresholds), starting at (0, 0)."""
    gold, scores = check_labels(gold, scores)
    thresholds, tps, fps = threshold_table(gold, scores)
    tps, fps = numpy.r_[0.0, tps], numpy.r_[0.0, fps]
    n_pos, n_neg = tps[-1], fps[-1]
    fpr = fps / n_neg if n_neg else numpy.zeros_like(fps)
    tpr = tps / n_pos if n_pos else numpy.zeros_like(tps)
    return fpr, tpr, numpy.r_[numpy.inf, thresholds]


def precision_recall_curve(gold, scores) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(precision, recall, thresholds) for thresholds from the highest score down."""
    gold, scores = check_labels(gold, scores)
    thresholds, tps, fps = threshold_table(gold, scores)
    precision = tps / numpy.maximum(tps + fps, 1)
    recall = tps / tps[-1] if tps.size and tps[-1] else numpy.zeros_like(tps)
    return precision, recall, thresholds


def _both_classes(gold: numpy.ndarray) -> bool:
    n_pos = int(numpy.sum(gold == 1.0))
    return 0 < n_pos < gold.size


def roc_auc(gold, scores) -> Optional[float]:
    """Area under the ROC curve (exact with ties); None when gold holds only one class."""
    gold, scores = check_labels(gold, scores)
    if not _both_classes(gold):
        return None
    fpr, tpr, _ = roc_curve(gold, scores)
    trapezoid = getattr(numpy, "trapezoid", None) or numpy.trapz
    return float(trapezoid(tpr, fpr))


def average_precision(gold, scores) -> Optional[float]:
    """Sum over thresholds of (recall step) x precision; None when gold holds only one class."""
    gold, scores = check_labels(gold, scores)
    if not _both_classes(gold):
        return None
    precision, recall, _ = precision_recall_curve(gold, scores)
    return float(numpy.sum(numpy.diff(numpy.r_[0.0, recall]) * precision))


def prf_at_threshold(gold, scores, threshold: float) -> Tuple[float, float, float]:
    """Precision, recall, F1 of `score >= threshold` as the anomaly prediction (0.0 when undefined)."""
    gold, scores = check_labels(gold, scores)
    pred = scores >= threshold
    pos = gold == 1.0
    tp = float(numpy.sum(pred & pos))
    fp = float(numpy.sum(pred & ~pos))
    fn = float(numpy.sum(~pred & pos))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f
