"""`anomaly_scorer`: a trainable document-level anomaly score, sharing an encoder with `ner`.

Outputs per doc: `doc._.anomaly_score` (float in [0, 1]), `doc._.is_anomaly`
(`score >= threshold`) and `doc.cats[label]` (the same score).

Gold labels: `doc.cats[label]` of the reference doc, 1.0 anomaly / 0.0 normal. A doc without
the label is unannotated for this component: it adds no loss (unless `unlabelled_as_normal`).

Modes (`mode`):

* `supervised`: a logistic head with class-weighted binary cross-entropy; the positive
  class weight (`pos_weight`) is n_normal / n_anomalous of the training labels, computed
  in `initialize` unless set in the config, so 1-5% anomalies still carry half the loss.
* `one_class`: no anomaly label needed. The `detector` setting chooses how a doc is scored
  (see `detectors.py`): `doc_and_token_knn` (default: the sum of the two standardized
  scores next), `knn` (mean cosine distance of the length-robust, L2-normalized pooled
  embedding to the `n_neighbors` nearest normal training docs of a memory bank),
  `token_knn` (the mean over a doc's tokens of each token's cosine distance to its
  `token_neighbors` nearest tokens in a bank of at most `token_bank_size` normal training
  tokens) or `mahalanobis` (Ledoit-Wolf Gaussian of the pooled embedding), fitted on at
  most `memory_bank_size` normal training docs (a seeded uniform subsample when there are
  more; the token bank is a seeded uniform subsample of their tokens). They are fitted in `initialize` and re-fitted whenever the encoder has changed
  since (after `update`, before the next prediction or save), so the statistics saved in
  model-best/model-last match that pipeline's own encoder. They give no gradient: the
  encoder learns from the other components or from `pretrain`. `detector = "svdd"` keeps
  the Deep-SVDD head described next:
  a bias-free projection of the pooled doc vector is pulled
  towards a fixed center `c` (the mean projection of normal training docs at initialize)
  by the mean squared distance on normal docs only (docs labelled 1.0 are ignored, and
  unlabelled docs count as normal by default, so no anomaly label is needed). The score is
  a logistic of the standardized distance (see `one_class.py`); the statistics are fitted
  at the end of `initialize`, tracked during training, and can be refitted with
  `fit_one_class_statistics(docs)`.

Listener contract: `update` always backpropagates through the tok2vec, with zero
gradients when a batch has no usable label, because the last listener's backprop is what
updates a shared encoder (a skipped backprop silently drops the `ner` encoder update).

All settings and statistics (threshold, pos_weight, one-class location/scale) live in
`self.cfg`, serialized by TrainablePipe with the pipeline; the center is a parameter of the
model; the knn/mahalanobis state (memory bank, mean, precision) is saved as `detector`
(an .npz without pickles, validated on load). No torch import here: spaCy imports this module whenever a pipeline is created.
"""
import json
import math
import random
import warnings
import weakref
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy
from spacy import util
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats1d, Floats2d

from . import checks, detectors, one_class
from .detectors import DEFAULT_DETECTOR, DETECTORS, EMBEDDING_DETECTORS, TOKEN_DETECTORS
from .model import MODES, doc_features, get_center, head_begin_update, head_predict, pooled_docs, project, set_center, set_head_mode
from .scoring import DEFAULT_LABEL, anomaly_score

# Seed of the uniform subsample of normal training docs kept in the memory bank.
MEMORY_BANK_SEED = 0

default_model_config = """
[model]
@architectures = "spacy-modernbert.AnomalyHead.v1"
pooling = "mean"
hidden_width = 64

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 4
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""
DEFAULT_ANOMALY_MODEL = Config().from_str(default_model_config)["model"]


@Language.factory(
    "anomaly_scorer",
    assigns=["doc.cats", "doc._.anomaly_score", "doc._.is_anomaly"],
    default_config={
        "model": DEFAULT_ANOMALY_MODEL,
        "label": DEFAULT_LABEL,
        "mode": "supervised",
        "detector": DEFAULT_DETECTOR,
        "n_neighbors": 10,
        "memory_bank_size": 10000,
        "token_neighbors": 3,
        "token_bank_size": 20000,
        "threshold": 0.5,
        "unlabelled_as_normal": None,
        "pos_weight": None,
        "scorer": {"@scorers": "spacy-modernbert.anomaly_scorer.v1"},
    },
    default_score_weights={
        "anomaly_auc": 1.0,
        "anomaly_ap": 0.0,
        "anomaly_f": 0.0,
        "anomaly_p": None,
        "anomaly_r": None,
    },
)
def make_anomaly_scorer(
    nlp: Language,
    name: str,
    model: Model[List[Doc], Floats2d],
    label: str,
    mode: str,
    detector: str,
    n_neighbors: int,
    memory_bank_size: int,
    token_neighbors: int,
    token_bank_size: int,
    threshold: float,
    unlabelled_as_normal: Optional[bool],
    pos_weight: Optional[float],
    scorer: Optional[Callable],
) -> "AnomalyScorer":
    """Create an `anomaly_scorer` component.

    model (Model[List[Doc], Floats2d]): one raw score per doc, e.g. `spacy-modernbert.AnomalyHead.v1`.
    label (str): the doc.cats label holding gold labels and predicted scores.
    mode (str): "supervised" or "one_class".
    detector (str): one_class only: "doc_and_token_knn" (default), "knn", "token_knn",
        "mahalanobis" or "svdd" (Deep-SVDD head); see detectors.py and the README.
    n_neighbors (int): knn: the number of nearest normal training docs averaged.
    memory_bank_size (int): the embedding detectors: the most normal training docs kept (a
        seeded uniform subsample when there are more, never the first N).
    token_neighbors (int): token_knn: the number of nearest normal tokens averaged per token.
    token_bank_size (int): token_knn: the most normal training tokens kept (a seeded uniform
        subsample of the tokens of the kept docs).
    threshold (float): `doc._.is_anomaly` is `score >= threshold`, in [0, 1].
    unlabelled_as_normal (Optional[bool]): count docs without the label as normal (0.0)
        in the loss. None: True in one_class mode, False in supervised mode.
    pos_weight (Optional[float]): supervised weight of anomalous docs in the loss; None
        computes n_normal / n_anomalous from the training labels at initialize.
    scorer (Optional[Callable]): the scoring method (anomaly_auc, anomaly_ap, anomaly_p/r/f).
    """
    return AnomalyScorer(
        nlp.vocab,
        model,
        name,
        label=label,
        mode=mode,
        detector=detector,
        n_neighbors=n_neighbors,
        memory_bank_size=memory_bank_size,
        token_neighbors=token_neighbors,
        token_bank_size=token_bank_size,
        threshold=threshold,
        unlabelled_as_normal=unlabelled_as_normal,
        pos_weight=pos_weight,
        scorer=scorer,
    )


def register_extensions() -> None:
    """Register `doc._.anomaly_score` and `doc._.is_anomaly` (idempotent, never forced)."""
    for attr in ("anomaly_score", "is_anomaly"):
        if not Doc.has_extension(attr):
            Doc.set_extension(attr, default=None)


class AnomalyScorer(TrainablePipe):
    """Score each doc for being anomalous; trainable, supervised or one-class."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "anomaly_scorer",
        *,
        label: str = DEFAULT_LABEL,
        mode: str = "supervised",
        detector: str = DEFAULT_DETECTOR,
        n_neighbors: int = 10,
        memory_bank_size: int = 10000,
        token_neighbors: int = 3,
        token_bank_size: int = 20000,
        threshold: float = 0.5,
        unlabelled_as_normal: Optional[bool] = None,
        pos_weight: Optional[float] = None,
        scorer: Optional[Callable] = anomaly_score,
    ) -> None:
        """Initialize the component (see `make_anomaly_scorer` for the settings)."""
        if not isinstance(label, str) or not label:
            raise ValueError(f"anomaly_scorer '{name}': label must be a non-empty string, got {label!r}")
        if mode not in MODES:
            raise ValueError(f"anomaly_scorer '{name}': mode must be one of {MODES}, got {mode!r}")
        _check_threshold(threshold, name)
        if detector not in DETECTORS:
            raise ValueError(f"anomaly_scorer '{name}': detector must be one of {DETECTORS}, got {detector!r}")
        for setting, value, low in (("n_neighbors", n_neighbors, 1), ("memory_bank_size", memory_bank_size, 2),
                                    ("token_neighbors", token_neighbors, 1), ("token_bank_size", token_bank_size, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"anomaly_scorer '{name}': {setting} must be an integer >= {low}, got {value!r}")
        if pos_weight is not None and not (math.isfinite(pos_weight) and pos_weight > 0):
            raise ValueError(f"anomaly_scorer '{name}': pos_weight must be a positive number or null, got {pos_weight!r}")
        if unlabelled_as_normal is None:
            unlabelled_as_normal = mode == "one_class"
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self._rehearsal_model = None
        self.cfg: Dict[str, Any] = {
            "label": label,
            "mode": mode,
            "detector": detector,
            "n_neighbors": int(n_neighbors),
            "memory_bank_size": int(memory_bank_size),
            "token_neighbors": int(token_neighbors),
            "token_bank_size": int(token_bank_size),
            "threshold": float(threshold),
            "unlabelled_as_normal": bool(unlabelled_as_normal),
            "pos_weight": None if pos_weight is None else float(pos_weight),
            "pos_weight_from_data": pos_weight is None,
            "one_class_location": None,
            "one_class_scale": None,
            "n_train_anomalous": 0,
            "n_train_normal": 0,
            "n_train_unlabelled": 0,
        }
        # knn/mahalanobis: the fitted state (numpy arrays, serialized as "detector"), and,
        # in the process that initialized the component, the normal docs it was fitted on
        # and the pipeline that annotates them, to re-fit after the encoder changed.
        self._detector_state: Optional[Dict[str, numpy.ndarray]] = None
        self._fit_docs: Optional[List[Doc]] = None
        self._fit_nlp: Optional[Callable[[], Optional[Language]]] = None
        self._encoder_changed = False
        self._device_state: Optional[Tuple[Dict[str, Any], Dict[str, Any]]] = None
        register_extensions()
        set_head_mode(self.model, mode)

    # ------------------------------------------------------------------ settings

    @property
    def label(self) -> str:
        """The doc.cats label of gold labels and predicted scores."""
        return self.cfg["label"]

    @property
    def labels(self) -> Tuple[str, ...]:
        """(label,): the single doc.cats label this component predicts."""
        return (self.cfg["label"],)

    @property
    def mode(self) -> str:
        """"supervised" or "one_class"."""
        return self.cfg["mode"]

    @property
    def threshold(self) -> float:
        """`doc._.is_anomaly` is `score >= threshold`."""
        return float(self.cfg["threshold"])

    def set_threshold(self, threshold: float) -> None:
        """Set the decision threshold (stored in cfg, so it is serialized)."""
        _check_threshold(threshold, self.name)
        self.cfg["threshold"] = float(threshold)

    def add_label(self, label: str) -> int:
        """The label is fixed by the `label` setting: 0 for it, ValueError for any other."""
        if label == self.label:
            return 0
        raise ValueError(f"anomaly_scorer '{self.name}' predicts the single label {self.label!r} (the `label` setting), not {label!r}")

    @property
    def detector(self) -> Optional[str]:
        """The one-class detector (one of DETECTORS); None in supervised mode."""
        return self.cfg.get("detector", "svdd") if self.cfg["mode"] == "one_class" else None

    @property
    def _uses_embedding_detector(self) -> bool:
        return self.detector in EMBEDDING_DETECTORS

    def _sync_mode(self) -> None:
        # cfg is the source of truth (from_disk/from_bytes restore it); keep the head in step
        set_head_mode(self.model, self.cfg["mode"])

    # ------------------------------------------------------------------ prediction

    def predict(self, docs: Iterable[Doc]) -> Floats1d:
        """Anomaly scores in [0, 1], one per doc (an array on the model's device)."""
        docs = list(docs)
        self._sync_mode()
        if not docs:
            return self.model.ops.alloc1f(0)
        checks.check_listener_input(self.model, docs, self.name)
        if self._uses_embedding_detector:
            return self._detector_scores(docs)
        return self._raw_to_scores(head_predict(self.model, docs))

    def _detector_scores(self, docs: List[Doc]) -> Floats1d:
        self._refit_if_encoder_changed()
        if self._detector_state is None:
            raise ValueError(
                f"anomaly_scorer '{self.name}': the {self.detector} detector is not fitted. Initialize the "
                "pipeline (nlp.initialize or spacy train) or call fit_detector(docs) with normal documents."
            )
        xp = self.model.ops.xp
        state = self._detector_state
        if xp is not numpy:  # copy the bank to the model's device once per fit, not per batch
            if self._device_state is None or self._device_state[0] is not state:
                self._device_state = (state, {key: xp.asarray(value) for key, value in state.items()})
            state = self._device_state[1]
        pooled, tokens = doc_features(self.model, docs, self.detector in TOKEN_DETECTORS)
        raw = detectors.raw_scores(self.detector, state, pooled, tokens, xp)
        return detectors.unit_scores(state, raw, xp)

    def _raw_to_scores(self, raw: Floats2d) -> Floats1d:
        xp = self.model.ops.xp
        # float64: sigmoid saturation and ties come much later than in float32
        raw = xp.asarray(raw, dtype="float64").reshape(-1)
        checks.check_finite_raw(xp, raw, self.name)
        if self.cfg["mode"] == "supervised":
            return _sigmoid(xp, raw)
        return _sigmoid(xp, one_class.standardized(xp, raw, self.cfg.get("one_class_location"), self.cfg.get("one_class_scale")))

    def set_annotations(self, docs: Iterable[Doc], scores: Floats1d) -> None:
        """Set `doc._.anomaly_score`, `doc._.is_anomaly` and `doc.cats[label]`."""
        scores = self.model.ops.to_numpy(scores).reshape(-1)
        threshold, label = self.threshold, self.label
        for doc, score in zip(docs, scores):
            value = float(score)
            doc._.anomaly_score = value
            doc._.is_anomaly = bool(value >= threshold)
            doc.cats[label] = value

    # ------------------------------------------------------------------ training

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Learn from a batch of examples; docs without the label add no loss.

        The backprop always runs, with zero gradients for a batch without labels, so that
        a shared tok2vec/transformer upstream still receives the other listeners' updates.
        """
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "AnomalyScorer.update")
        truths, mask = self._examples_to_truth(examples)  # validates labels first
        self._sync_mode()
        if self._uses_embedding_detector:
            # knn/mahalanobis are fitted, not trained (no doc gives loss: zero gradients, see
            # the listener contract); re-fit before the next prediction or save, as the
            # encoder may change with this update.
            self._encoder_changed = True
        set_dropout_rate(self.model, drop)
        docs = [eg.predicted for eg in examples]
        # a batch with no token at all only trains the head (see head_begin_update)
        raw, bp_raw = head_begin_update(self.model, docs) if docs else self.model.begin_update(docs)
        loss, d_raw = self._loss_and_gradient(raw, truths, mask)
        checks.check_finite_loss(loss, self.name, sgd)  # before any NaN reaches the weights
        bp_raw(d_raw)  # never skipped: see the listener contract above
        if sgd is not None:
            self.finish_update(sgd)
        if self.detector == "svdd":
            self._track_one_class_stats(raw, mask)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Floats2d) -> Tuple[float, Floats2d]:
        """Loss and gradient with respect to the model's raw output (shape (n_docs, 1))."""
        examples = list(examples)
        validate_examples(examples, "AnomalyScorer.get_loss")
        truths, mask = self._examples_to_truth(examples)
        return self._loss_and_gradient(scores, truths, mask)

    def _loss_and_gradient(self, raw: Floats2d, truths: numpy.ndarray, mask: numpy.ndarray) -> Tuple[float, Floats2d]:
        # Summed over the docs of the batch (not averaged), as spaCy's own components sum
        # over their tokens/docs: averaging made the anomaly gradient reaching a shared
        # encoder ~batch-size times weaker than ner's, and the head never learned.
        ops = self.model.ops
        xp = ops.xp
        raw = ops.asarray2f(raw)
        y = ops.asarray2f(truths.reshape(-1, 1))
        m = ops.asarray2f(mask.reshape(-1, 1))
        n = float(mask.sum())
        if n == 0:
            return 0.0, ops.alloc2f(*raw.shape)
        if self.cfg["mode"] == "supervised":
            pos_weight = float(self.cfg["pos_weight"] or 1.0)
            p = _sigmoid(xp, raw)
            # -[pw y log p + (1 - y) log(1 - p)], with log p = -softplus(-x), log(1 - p) = -softplus(x)
            per_doc = pos_weight * y * _softplus(xp, -raw) + (1.0 - y) * _softplus(xp, raw)
            loss = float((m * per_doc).sum())
            d_raw = m * (p * (pos_weight * y + (1.0 - y)) - pos_weight * y)
        else:
            # one_class: mean squared distance to the center over normal docs (mask)
            loss = float((m * raw).sum())
            d_raw = m
        return loss, ops.asarray2f(d_raw)

    def _examples_to_truth(self, examples: List[Example]) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """(gold 0/1, loss mask) per example. The mask selects the docs that give loss.

        supervised: labelled docs (and unlabelled ones as 0.0 if unlabelled_as_normal).
        one_class, svdd: docs labelled 0.0 (and unlabelled ones if unlabelled_as_normal).
        one_class, knn/mahalanobis: none (the detectors are fitted, not trained).
        """
        truths = numpy.zeros((len(examples),), dtype="f")
        mask = numpy.zeros((len(examples),), dtype="f")
        one_class = self.cfg["mode"] == "one_class"
        unlabelled_as_normal = self.cfg["unlabelled_as_normal"]
        for i, eg in enumerate(examples):
            gold = self._gold(eg.reference)
            if gold is None:
                mask[i] = 1.0 if unlabelled_as_normal else 0.0
            else:
                truths[i] = gold
                mask[i] = 0.0 if (one_class and gold == 1.0) else 1.0
        if self._uses_embedding_detector:  # fitted, not trained: no doc gives loss
            mask[:] = 0.0
        return truths, mask

    def _gold(self, doc: Doc) -> Optional[float]:
        """The gold label of a reference doc: 1.0, 0.0, or None (unannotated)."""
        label = self.label
        if label not in doc.cats:
            return None
        value = doc.cats[label]
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if number not in (0.0, 1.0):
            raise ValueError(
                f"anomaly_scorer '{self.name}': doc.cats[{label!r}] must be 1.0 (anomaly) or "
                f"0.0 (normal), or absent for an unannotated doc; got {value!r} in the document "
                f"{doc.text[:80]!r}"
            )
        return number

    def _track_one_class_stats(self, raw: Floats2d, mask: numpy.ndarray) -> None:
        """Moving average of the one-class location/scale over this batch's normal docs."""
        if self.cfg.get("one_class_location") is None:
            return
        raw = self.model.ops.to_numpy(raw)
        stats = one_class.track(float(self.cfg["one_class_location"]), float(self.cfg["one_class_scale"]), raw, mask > 0)
        if stats is not None:
            self.cfg["one_class_location"], self.cfg["one_class_scale"] = stats

    def rehearse(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """Rehearsal is not supported: returns the losses unchanged."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        return losses

    # ------------------------------------------------------------------ initialization

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
    ) -> None:
        """Initialize the model; validate labels; count them; set pos_weight or the one-class center.

        get_examples (Callable[[], Iterable[Example]]): the training examples.
        nlp (Language): the pipeline; its components before this one annotate docs for the
            one-class center and statistics (a listener needs its upstream's output).
        """
        if callable(get_examples) and next(iter(get_examples()), None) is None:
            self._refuse_empty_corpus()
        validate_get_examples(get_examples, "AnomalyScorer.initialize")
        n_pos = n_neg = n_unlabelled = 0
        for eg in get_examples():
            gold = self._gold(eg.reference)
            if gold is None:
                n_unlabelled += 1
            elif gold == 1.0:
                n_pos += 1
            else:
                n_neg += 1
        self.cfg.update({"n_train_anomalous": n_pos, "n_train_normal": n_neg, "n_train_unlabelled": n_unlabelled})
        doc_sample = [eg.reference for eg in islice(get_examples(), 10)]
        if not doc_sample:
            self._refuse_empty_corpus()
        self._sync_mode()
        self.model.initialize(X=doc_sample)
        if self.cfg["mode"] == "supervised":
            if self.cfg.get("pos_weight_from_data", True):
                if self.cfg["unlabelled_as_normal"]:
                    n_neg += n_unlabelled
                self.cfg["pos_weight"] = float(n_neg) / n_pos if n_pos and n_neg else 1.0
            if n_pos == 0:
                warnings.warn(
                    f"anomaly_scorer '{self.name}' (supervised): no training document has "
                    f"doc.cats[{self.label!r}] == 1.0, so it cannot learn what an anomaly is. "
                    "Label some anomalies, or use mode = \"one_class\"."
                )
        else:
            self._initialize_one_class(get_examples, nlp)

    def _refuse_empty_corpus(self) -> None:
        raise ValueError(
            f"anomaly_scorer '{self.name}': the training corpus is empty, so there is nothing to "
            "initialize from. Point [paths.train] (or the corpus given to initialize) at a corpus "
            "with documents; in mode = \"one_class\" normal documents alone are enough."
        )

    def _initialize_one_class(self, get_examples: Callable[[], Iterable[Example]], nlp: Optional[Language]) -> None:
        limit = self.cfg["memory_bank_size"] if self._uses_embedding_detector else one_class.INIT_DOCS
        normal_egs, _ = self._sample_normal_examples(get_examples, limit)
        if not normal_egs:
            raise ValueError(
                f"anomaly_scorer '{self.name}' (mode = \"one_class\"): no normal training document to "
                f"learn from: every training doc has doc.cats[{self.label!r}] == 1.0"
                + ("" if self.cfg["unlabelled_as_normal"] else " or no label (unlabelled_as_normal = false)")
                + ". Add normal documents (doc.cats[label] = 0.0, or no label with unlabelled_as_normal = true) "
                "to the training corpus; to learn from labelled anomalies use mode = \"supervised\"."
            )
        if self._uses_embedding_detector:
            self._fit_docs = [eg.predicted.copy() for eg in normal_egs]
            self._fit_nlp = weakref.ref(nlp) if nlp is not None else None
            self._refit()
            return
        docs = self._annotate_upstream([eg.predicted.copy() for eg in normal_egs], nlp)
        checks.check_listener_input(self.model, docs, self.name)  # a center of zero vectors otherwise
        projections = project(self.model, pooled_docs(self.model, docs))
        set_center(self.model, one_class.center_from_projections(self.model.ops.xp, projections))
        self.cfg["one_class_location"] = None
        self.cfg["one_class_scale"] = None
        self.fit_one_class_statistics(docs)

    def _sample_normal_examples(self, get_examples: Callable[[], Iterable[Example]], limit: int) -> Tuple[List[Example], int]:
        """At most `limit` normal training examples, a seeded uniform sample (reservoir sampling,
        Algorithm R) when there are more, in corpus order; and the number of normal examples."""
        rng = random.Random(MEMORY_BANK_SEED)
        unlabelled_as_normal = self.cfg["unlabelled_as_normal"]
        kept: List[Tuple[int, Example]] = []
        n = 0
        for eg in get_examples():
            gold = self._gold(eg.reference)
            if not (gold == 0.0 or (gold is None and unlabelled_as_normal)):
                continue
            if len(kept) < limit:
                kept.append((n, eg))
            else:
                j = rng.randint(0, n)
                if j < limit:
                    kept[j] = (n, eg)
            n += 1
        kept.sort(key=lambda item: item[0])
        return [eg for _, eg in kept], n

    def _refit(self) -> None:
        """Re-fit the detector on the stored normal training docs with the current encoder."""
        nlp = self._fit_nlp() if self._fit_nlp is not None else None
        docs = self._annotate_upstream([doc.copy() for doc in self._fit_docs or []], nlp)
        self.fit_detector(docs)

    def _refit_if_encoder_changed(self) -> None:
        if self._encoder_changed and self._fit_docs:
            self._refit()

    def fit_detector(self, docs: Iterable[Doc]) -> Dict[str, numpy.ndarray]:
        """Fit the one-class embedding detector on normal documents; returns the fitted state.

        docs (Iterable[Doc]): normal documents already processed by the upstream components
            (e.g. the output of `nlp.pipe`), so that a listener finds the encoder's output.
            More than `memory_bank_size` docs: a seeded uniform subsample of them is kept.
        """
        if not self._uses_embedding_detector:
            raise ValueError(
                f"anomaly_scorer '{self.name}': fit_detector needs mode = \"one_class\" with detector "
                f"one of {EMBEDDING_DETECTORS} (got mode {self.cfg['mode']!r}, detector {self.cfg.get('detector')!r})"
            )
        docs = list(docs)
        if len(docs) < 2:
            raise ValueError(f"anomaly_scorer '{self.name}': the {self.detector} detector needs at least 2 normal documents, got {len(docs)}")
        keep = detectors.subsample_indices(len(docs), self.cfg["memory_bank_size"], MEMORY_BANK_SEED)
        docs = [docs[i] for i in keep]
        self._sync_mode()
        pooled, tokens = self._numpy_features(docs)
        self._detector_state = detectors.fit_detector(
            self.detector, pooled, tokens, n_neighbors=self.cfg["n_neighbors"], token_neighbors=self.cfg["token_neighbors"],
            token_bank_size=self.cfg["token_bank_size"], seed=MEMORY_BANK_SEED,
        )
        self._encoder_changed = False
        return self._detector_state

    def _numpy_features(self, docs: List[Doc], batch_size: int = 256) -> Tuple[numpy.ndarray, Optional[List[numpy.ndarray]]]:
        """The pooled vectors and (token detectors) the float32 token vectors of `docs`, on the CPU."""
        with_tokens = self.detector in TOKEN_DETECTORS
        pooled: List[numpy.ndarray] = []
        tokens: List[numpy.ndarray] = []
        for start in range(0, len(docs), batch_size):
            X, T = doc_features(self.model, docs[start:start + batch_size], with_tokens)
            pooled.append(self.model.ops.to_numpy(X))
            tokens.extend(numpy.asarray(self.model.ops.to_numpy(t), dtype="float32") for t in T or ())
        return numpy.concatenate(pooled), (tokens if with_tokens else None)

    def _annotate_upstream(self, docs: List[Doc], nlp: Optional[Language]) -> List[Doc]:
        """Run the components before this one (e.g. the shared encoder) over `docs`."""
        if nlp is None:
            return docs
        for name, proc in nlp.pipeline:
            if proc is self:
                break
            if hasattr(proc, "pipe"):
                docs = list(proc.pipe(docs))
            else:
                docs = [proc(doc) for doc in docs]
        return docs

    def fit_one_class_statistics(self, docs: Iterable[Doc]) -> Tuple[float, float]:
        """Fit the one-class location/scale (median, scaled MAD of distances) on normal docs.

        docs (Iterable[Doc]): normal documents already processed by the upstream components
            (e.g. the output of `nlp.pipe`), so that a listener finds the encoder's output.
        RETURNS (Tuple[float, float]): the location and scale stored in cfg.
        """
        if self.cfg["mode"] != "one_class":
            raise ValueError(f"anomaly_scorer '{self.name}': one-class statistics need mode = \"one_class\"")
        if self._uses_embedding_detector:
            state = self.fit_detector(docs)
            return float(state["location"]), float(state["scale"])
        docs = list(docs)
        if not docs:
            raise ValueError(f"anomaly_scorer '{self.name}': fit_one_class_statistics needs at least one document")
        self._sync_mode()
        checks.check_listener_input(self.model, docs, self.name)
        raw = self.model.ops.to_numpy(head_predict(self.model, docs))
        location, scale = one_class.robust_location_scale(one_class.distances(raw))
        self.cfg["one_class_location"] = location
        self.cfg["one_class_scale"] = scale
        return location, scale

    # ------------------------------------------------------------------ serialization
    # As TrainablePipe's, except that cfg goes through the standard json module: srsly's
    # ujson keeps ~10 decimals of a float when writing and rounds when reading, which would
    # change the one-class statistics, and so the scores, in a save/load round trip (still
    # so with srsly 2.5.6: 99% of random floats come back changed), hence these four overrides.

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """Serialize the component (cfg, vocab, model, detector state) to a bytestring."""
        self._validate_serialization_attrs()
        self._refit_if_encoder_changed()
        serialize = {
            "cfg": lambda: json.dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": self.model.to_bytes,
            "detector": lambda: detectors.state_to_bytes(self._detector_state),
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "AnomalyScorer":
        """Load the component from a bytestring."""
        self._validate_serialization_attrs()

        def load_model(b: bytes) -> None:
            try:
                checks.load_model_bytes(self.model, b, self.name, "the model bytes")
            except AttributeError:
                raise ValueError(Errors.E149) from None
            checks.check_finite_params(self.model, self.name, "the model bytes")

        deserialize = {
            "cfg": lambda b: self._load_cfg(_json_cfg(b, self.name, "the cfg bytes"), "the cfg bytes"),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": load_model,
            "detector": self._load_detector,
        }
        util.from_bytes(bytes_data, deserialize, exclude)
        self._sync_mode()
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Serialize the component to a directory (cfg, model)."""
        self._validate_serialization_attrs()
        self._refit_if_encoder_changed()
        serialize = {
            "cfg": lambda p: Path(p).write_text(json.dumps(self.cfg, indent=2), encoding="utf8"),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: self.model.to_disk(p),
            "detector": lambda p: Path(p).write_bytes(detectors.state_to_bytes(self._detector_state)),
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "AnomalyScorer":
        """Load the component from a directory."""
        self._validate_serialization_attrs()

        def load_cfg(p: Path) -> None:
            if Path(p).exists():
                self._load_cfg(_json_cfg(Path(p).read_bytes(), self.name, str(p)), str(p))

        def load_model(p: Path) -> None:
            try:
                with open(p, "rb") as mfile:
                    checks.load_model_bytes(self.model, mfile.read(), self.name, str(p))
            except AttributeError:
                raise ValueError(Errors.E149) from None
            checks.check_finite_params(self.model, self.name, str(p))

        deserialize = {
            "cfg": load_cfg,
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": load_model,
            "detector": lambda p: self._load_detector(Path(p).read_bytes() if Path(p).exists() else b""),
        }
        util.from_disk(path, deserialize, exclude)
        self._sync_mode()
        return self

    def _load_cfg(self, cfg: Dict[str, Any], source: str) -> None:
        """Validate a stored cfg (`source` names the file) and take it."""
        cfg = checks.check_cfg(cfg, self.name, source)
        # A pipeline saved before the `detector` setting existed used the Deep-SVDD head.
        if cfg.get("mode") == "one_class" and "detector" not in cfg:
            cfg = {**cfg, "detector": "svdd"}
        self.cfg.update(cfg)

    def _load_detector(self, data: bytes) -> None:
        # Runs after "model" (util.from_bytes/from_disk keep the order), so the width is known.
        width = self.model.get_ref("output_layer").maybe_get_dim("nI") if self.model.has_ref("output_layer") else None
        try:
            self._detector_state = detectors.state_from_bytes(data, self.cfg.get("detector", "knn"), width)
        except ValueError as err:
            raise ValueError(f"anomaly_scorer '{self.name}': the stored detector (file anomaly_scorer/detector): {err}") from None
        self._fit_docs = None
        self._fit_nlp = None
        self._encoder_changed = False

    # ------------------------------------------------------------------ scoring

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        """anomaly_auc, anomaly_ap, anomaly_p/r/f of `examples` at this component's threshold."""
        if self.scorer is None:
            return {}
        kwargs.setdefault("label", self.label)
        kwargs.setdefault("threshold", self.threshold)
        return self.scorer(examples, **kwargs)


# ---------------------------------------------------------------------- helpers


def _check_threshold(threshold: Any, name: str) -> None:
    checks.check_threshold(threshold, name)


def _json_cfg(data: bytes, name: str, source: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"anomaly_scorer '{name}': {source} is not valid JSON ({err}).") from err


def _sigmoid(xp, x):
    """Logistic function without overflow; keeps small probabilities distinct (no tanh)."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus(xp, x):
    """log(1 + exp(x)) without overflow."""
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def get_one_class_center(component: AnomalyScorer) -> numpy.ndarray:
    """The one-class center of a component, as a numpy array (for inspection)."""
    return component.model.ops.to_numpy(get_center(component.model))
