"""Choose the `anomaly_scorer` threshold from scores and gold labels.

A doc is predicted anomalous when `score >= threshold`. Every threshold between two
adjacent distinct scores gives the same predictions; the functions return the midpoint
of the chosen gap, so that the threshold does not sit exactly on a dev-set score.

* `best_f1`: the threshold with the highest F1 on the labelled docs.
* `target_fpr`: the lowest threshold whose false-positive rate (share of normal docs
  flagged) is at most `target_fpr`, i.e. the best recall under that FPR budget. It needs
  no anomaly at all: with `unlabelled_as_normal`, unlabelled dev docs count as normal, so
  a one-class pipeline is calibrated from unlabelled normal text alone.

The numpy functions take plain sequences; `calibrate_pipeline` runs a pipeline over
Examples or a `.spacy` corpus and stores the threshold in the component.
"""

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy

from .curves import average_precision, check_labels, roc_auc, threshold_table

METHODS = ("best_f1", "target_fpr")


@dataclass
class CalibrationResult:
    """The chosen threshold and the resulting metrics on the calibration data."""

    threshold: float
    method: str
    precision: float
    recall: float
    f1: float
    fpr: float
    n_docs: int
    n_anomalous: int
    target_fpr: Optional[float] = None
    auc: Optional[float] = None
    ap: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _as_arrays(
    gold: Sequence[float], scores: Sequence[float]
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    gold_a, scores_a = check_labels(gold, scores)
    if gold_a.size == 0:
        raise ValueError("calibration needs at least one labelled document")
    return gold_a, scores_a


def _gap_threshold(distinct: numpy.ndarray, k: int) -> float:
    """A threshold flagging exactly the scores >= distinct[k]: the midpoint to the next lower score."""
    if k + 1 < distinct.size:
        mid = float((distinct[k] + distinct[k + 1]) / 2.0)
        if float(distinct[k + 1]) < mid <= float(distinct[k]):  # not so for adjacent floats
            return mid
    return float(distinct[k])


def _above_all(distinct: numpy.ndarray) -> float:
    """A threshold above every score (flags nothing)."""
    top = float(distinct[0])
    above = (top + 1.0) / 2.0
    return above if above > top else float(numpy.nextafter(top, numpy.inf))


def _result(gold, scores, threshold, method, target_fpr=None) -> CalibrationResult:
    pred = scores >= threshold
    pos = gold == 1.0
    tp, fp = float(numpy.sum(pred & pos)), float(numpy.sum(pred & ~pos))
    n_pos, n_neg = float(numpy.sum(pos)), float(numpy.sum(~pos))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / n_pos if n_pos else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return CalibrationResult(
        threshold=float(threshold),
        method=method,
        precision=p,
        recall=r,
        f1=f,
        fpr=fp / n_neg if n_neg else 0.0,
        n_docs=int(gold.size),
        n_anomalous=int(n_pos),
        target_fpr=target_fpr,
        auc=roc_auc(gold, scores),
        ap=average_precision(gold, scores),
    )


def best_f1_threshold(gold: Sequence[float], scores: Sequence[float]) -> CalibrationResult:
    """The threshold with the highest F1 (ties: the highest such threshold, i.e. fewest flags).

    gold (Sequence[float]): 1.0 anomaly, 0.0 normal. Needs at least one anomaly.
    scores (Sequence[float]): anomaly scores, higher = more anomalous.
    """
    gold_a, scores_a = _as_arrays(gold, scores)
    n_pos = float(numpy.sum(gold_a))
    if n_pos == 0:
        raise ValueError("best_f1 calibration needs at least one document labelled 1.0 (anomaly)")
    distinct, tps, fps = threshold_table(gold_a, scores_a)
    f1 = 2 * tps / (tps + fps + n_pos)  # = 2PR/(P+R)
    k = int(numpy.argmax(f1))  # first maximum: the highest threshold
    return _result(gold_a, scores_a, _gap_threshold(distinct, k), "best_f1")


def target_fpr_threshold(
    gold: Sequence[float], scores: Sequence[float], target_fpr: float = 0.05
) -> CalibrationResult:
    """The lowest threshold whose false-positive rate is <= `target_fpr` (best recall under it).

    gold (Sequence[float]): 1.0 anomaly, 0.0 normal. Needs at least one normal document.
    scores (Sequence[float]): anomaly scores, higher = more anomalous.
    target_fpr (float): the largest acceptable share of normal docs flagged, in [0, 1].
    """
    if not 0.0 <= float(target_fpr) <= 1.0:
        raise ValueError(f"target_fpr must be in [0, 1], got {target_fpr!r}")
    gold_a, scores_a = _as_arrays(gold, scores)
    n_neg = float(numpy.sum(gold_a == 0.0))
    if n_neg == 0:
        raise ValueError("target_fpr calibration needs at least one document labelled 0.0 (normal)")
    distinct, tps, fps = threshold_table(gold_a, scores_a)
    ok = numpy.nonzero(fps / n_neg <= float(target_fpr) + 1e-12)[0]
    threshold = _above_all(distinct) if ok.size == 0 else _gap_threshold(distinct, int(ok[-1]))
    return _result(gold_a, scores_a, threshold, "target_fpr", target_fpr=float(target_fpr))


def calibrate_threshold(
    gold: Sequence[float],
    scores: Sequence[float],
    method: str = "best_f1",
    target_fpr: float = 0.05,
) -> CalibrationResult:
    """Dispatch to `best_f1_threshold` or `target_fpr_threshold`."""
    if method == "best_f1":
        return best_f1_threshold(gold, scores)
    if method == "target_fpr":
        return target_fpr_threshold(gold, scores, target_fpr)
    raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")


def collect_scores(
    nlp,
    data: Union[str, Path, Iterable],
    *,
    component: str = "anomaly_scorer",
    label: Optional[str] = None,
    batch_size: int = 64,
    unlabelled_as_normal: bool = False,
) -> Tuple[List[float], List[float]]:
    """Run `nlp` over labelled docs; (gold labels, predicted scores) of the docs with `label`.

    data: a `.spacy` (DocBin) path, or Examples (their reference docs hold the gold labels).
    label: the gold doc.cats label (default: the component's label).
    unlabelled_as_normal: docs without `label` count as normal (0.0) instead of being skipped.
    """
    from spacy.tokens import DocBin
    from spacy.training import Example

    from . import DEFAULT_LABEL
    from .scoring import collect_gold_and_scores

    pipe_label = nlp.get_pipe(component).cfg.get("label", DEFAULT_LABEL)
    label = label or pipe_label
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"calibration data not found: {path}")
        references = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    else:
        references = [eg.reference if isinstance(eg, Example) else eg for eg in data]
    labelled = [ref for ref in references if label in ref.cats or unlabelled_as_normal]
    for ref in labelled:
        value = ref.cats.get(label, 0.0)
        if value not in (0.0, 1.0):
            raise ValueError(
                f"doc.cats[{label!r}] must be 1.0 or 0.0, got {value!r} in the document {ref.text[:60]!r}"
            )
    for i, ref in enumerate(labelled):
        if label not in ref.cats:  # unlabelled_as_normal: counted as normal (on a copy)
            labelled[i] = ref.copy()
            labelled[i].cats[label] = 0.0
    predicted = nlp.pipe((ref.text for ref in labelled), batch_size=batch_size)
    examples = [Example(doc, ref) for doc, ref in zip(predicted, labelled)]
    gold, scores, _ = collect_gold_and_scores(examples, label, predicted_label=pipe_label)
    return gold.tolist(), scores.tolist()


def set_threshold(nlp, threshold: float, component: str = "anomaly_scorer") -> None:
    """Store `threshold` in the component (its cfg, serialized with the pipeline) and in nlp.config."""
    nlp.get_pipe(component).set_threshold(threshold)
    pipe_config = nlp.get_pipe_config(component)
    if "threshold" in pipe_config:
        pipe_config["threshold"] = float(threshold)


def calibrate_pipeline(
    nlp,
    data: Union[str, Path, Iterable],
    *,
    method: str = "best_f1",
    target_fpr: float = 0.05,
    component: str = "anomaly_scorer",
    label: Optional[str] = None,
    batch_size: int = 64,
    unlabelled_as_normal: bool = False,
) -> CalibrationResult:
    """Run `nlp` over labelled data, choose the threshold and store it in the component.

    nlp (Language): a pipeline with an `anomaly_scorer` (named `component`).
    data: a `.spacy` path or Examples with `doc.cats[label]` gold labels (1.0/0.0).
    method (str): "best_f1" or "target_fpr".
    target_fpr (float): the false-positive-rate budget for "target_fpr".
    unlabelled_as_normal (bool): count docs without the label as normal, e.g. to set a
        one-class threshold from unlabelled normal dev text with method "target_fpr".
    RETURNS (CalibrationResult): the threshold and the P/R/F/FPR it gives on `data`.
    """
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {METHODS}, got {method!r}")
    gold, scores = collect_scores(
        nlp,
        data,
        component=component,
        label=label,
        batch_size=batch_size,
        unlabelled_as_normal=unlabelled_as_normal,
    )
    result = calibrate_threshold(gold, scores, method=method, target_fpr=target_fpr)
    set_threshold(nlp, result.threshold, component=component)
    return result
