"""Scorer of the `anomaly_scorer` component: ROC AUC, average precision, P/R/F at the threshold.

Numpy only. The gold label is `eg.reference.cats[label]` (1.0 anomaly, 0.0 normal); examples
whose reference has no such label are unannotated and skipped. The prediction is read in one
place, `eg.predicted.cats[label]` (the component writes the same number to
`doc._.anomaly_score`): `collect_gold_and_scores` is the one collector of (gold, score) pairs,
used by this scorer, by `evaluate`'s curves and by `calibrate`.
"""

from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import numpy
from spacy.training import Example
from spacy.util import registry

from . import DEFAULT_LABEL
from .curves import average_precision, prf_at_threshold, roc_auc

DEFAULT_THRESHOLD = 0.5


@registry.scorers("spacy-modernbert.anomaly_scorer.v1")
def make_anomaly_metrics() -> Callable[..., Dict[str, Any]]:
    """The scorer of `anomaly_scorer`: anomaly_auc, anomaly_ap, anomaly_p, anomaly_r, anomaly_f.

    RETURNS (Callable): `score(examples, *, label, threshold, **kwargs) -> dict`.
    """
    return anomaly_score


def anomaly_score(
    examples: Iterable[Example],
    *,
    label: str = DEFAULT_LABEL,
    threshold: float = DEFAULT_THRESHOLD,
    **kwargs: Any,
) -> Dict[str, Any]:
    """Score anomaly predictions against `doc.cats[label]` gold labels.

    examples (Iterable[Example]): predicted and reference docs.
    label (str): the doc.cats label of the component.
    threshold (float): a doc is predicted anomalous when its score is >= threshold.
    **kwargs: ignored (spaCy passes the component's whole cfg).
    RETURNS (Dict[str, Any]): `anomaly_auc` and `anomaly_ap` (None unless both classes occur
        in the gold labels), `anomaly_p`, `anomaly_r`, `anomaly_f` (None without labelled
        examples), `anomaly_fpr`: the share of normal docs flagged at the threshold (None
        without normal docs; on a corpus of normal docs only, the one figure that means
        something). When no other component writes doc.cats, the same results are also
        returned as `cats_f_per_type` / `cats_auc_per_type` for `label`: these are the
        keys spaCy's `evaluate` command prints (its results table only lists built-in
        metrics).
    """
    gold, scores, other_cats = collect_gold_and_scores(examples, label)
    results: Dict[str, Any] = {
        "anomaly_auc": None,
        "anomaly_ap": None,
        "anomaly_p": None,
        "anomaly_r": None,
        "anomaly_f": None,
        "anomaly_fpr": None,
    }
    if gold.size:
        p, r, f = prf_at_threshold(gold, scores, threshold)
        results.update({"anomaly_p": p, "anomaly_r": r, "anomaly_f": f})
        normal = gold == 0.0
        if normal.any():
            results["anomaly_fpr"] = float(numpy.mean(scores[normal] >= threshold))
        results["anomaly_auc"] = roc_auc(gold, scores)
        results["anomaly_ap"] = average_precision(gold, scores)
    if not other_cats and gold.size:
        # Only when we own doc.cats: spaCy merges the scores of all components with
        # dict.update, so these keys would overwrite a textcat's per-label results.
        results["cats_f_per_type"] = {
            label: {"p": results["anomaly_p"], "r": results["anomaly_r"], "f": results["anomaly_f"]}
        }
        results["cats_auc_per_type"] = {label: results["anomaly_auc"]}
    return results


def collect_gold_and_scores(
    examples: Iterable[Example], label: str, predicted_label: Optional[str] = None
) -> Tuple[numpy.ndarray, numpy.ndarray, bool]:
    """(gold labels, predicted scores, whether predicted docs carry other doc.cats labels).

    The gold label is `eg.reference.cats[label]`, the score `eg.predicted.cats[predicted_label]`
    (default: `label`). Examples without the gold label, or without a prediction, are skipped.
    """
    predicted_label = predicted_label or label
    gold, scores = [], []
    other_cats = False
    for eg in examples:
        other_cats = other_cats or any(key != predicted_label for key in eg.predicted.cats)
        if label not in eg.reference.cats or predicted_label not in eg.predicted.cats:
            continue
        gold.append(float(eg.reference.cats[label]))
        scores.append(float(eg.predicted.cats[predicted_label]))
    return numpy.asarray(gold, dtype="float64"), numpy.asarray(scores, dtype="float64"), other_cats
