"""`anomaly_scorer`: a trainable document-level anomaly score, sharing an encoder with `ner`.

Outputs per doc: `doc._.anomaly_score` (in [0, 1]), `doc._.is_anomaly` (`score >= threshold`)
and `doc.cats[label]` (the same score). Gold labels and the loss: loss.py.

* `mode = "supervised"`: a logistic head, class-weighted (`pos_weight` = n_normal /
  n_anomalous of the training labels unless set), so 1-5% anomalies carry half the loss.
* `mode = "one_class"`: no anomaly label needed; the `detector` sub-config (registry
  `anomaly_detectors`, detectors.py; null: `DocAndTokenKnnDetector.v1`) scores the doc. A
  fitted detector is delegated to `FittedDetector` (fitted.py: fitted on normal training
  docs, re-fitted when the encoder changed, saved as `detector`); `SvddDetector.v1` keeps
  the trained Deep-SVDD head (model.py), its statistics in cfg (one_class.py). Fitting
  on normal training docs, for either: one_class_fit.py.

Why one component for both: one head architecture and one listener serve every mode, and
the settings a mode lacks are refused instead of ignored. Invariants: `update` always
backpropagates through the tok2vec, with zero gradients for a batch without usable labels
(the last listener's backprop is what updates a shared encoder); the listener sits at
`model.tok2vec`, so `nlp.replace_listeners("transformer", NAME, ["model.tok2vec"])` works;
all settings and statistics live in `self.cfg`, serialized exactly (serialization.py).
No torch import here: spaCy imports this module whenever a pipeline is created.
"""

import warnings
from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate
from thinc.types import Floats1d, Floats2d

from . import (  # noqa: F401
    checks,
    detectors,
    explain,
    intent_confidence,
    loss,
    one_class,
    outlier_exposure,
    replaced_tokens,
    shared_cats,
)
from .detectors import EmbeddingDetector, SvddDetector
from .fitted import FittedDetector
from .logistic import sigmoid
from .model import head_begin_update, head_predict, set_head_mode
from .one_class_fit import OneClassFitting
from .scoring import DEFAULT_LABEL, anomaly_score
from .serialization import JsonCfgSerialization

Detector = Union[EmbeddingDetector, SvddDetector]

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
# The component's settings and their defaults, in one place (the factory's default config).
DEFAULT_SETTINGS: Dict[str, Any] = {
    "label": DEFAULT_LABEL,
    "mode": "supervised",
    "detector": None,
    "threshold": 0.5,
    "unlabelled_as_normal": None,
    "pos_weight": None,
    "outlier_exposure": None,
    **explain.EXPLAIN_SETTINGS,
}


@Language.factory(
    "anomaly_scorer",
    assigns=[
        "doc.cats",
        "doc._.anomaly_score",
        "doc._.is_anomaly",
        "token._.anomaly_score",
        "doc.spans",
    ],
    default_config={
        "model": DEFAULT_ANOMALY_MODEL,
        **DEFAULT_SETTINGS,
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
    detector: Optional[Detector],
    threshold: float,
    unlabelled_as_normal: Optional[bool],
    pos_weight: Optional[float],
    scorer: Optional[Callable],
    outlier_exposure: Optional[Dict[str, Any]] = None,
    explain: bool = False,
    explain_spans: int = 1,
    explain_method: str = "auto",
    explain_length_weight: Optional[float] = None,
    explain_passages: Optional[str] = None,
) -> "AnomalyScorer":
    """Create an `anomaly_scorer` component.

    model (Model[List[Doc], Floats2d]): one raw score per doc, e.g. `spacy-modernbert.AnomalyHead.v1`.
    label (str): the doc.cats label holding gold labels and predicted scores.
    mode (str): "supervised" or "one_class".
    detector (Optional[Detector]): one_class only: a function of the `anomaly_detectors`
        registry (`[components.NAME.detector]`, see detectors.py and docs/anomaly.md);
        null: `spacy-modernbert.DocAndTokenKnnDetector.v1` with its defaults.
    threshold (float): `doc._.is_anomaly` is `score >= threshold`, in [0, 1].
    unlabelled_as_normal (Optional[bool]): count docs without the label as normal (0.0)
        in the loss. None: True in one_class mode, False in supervised mode.
    pos_weight (Optional[float]): supervised weight of anomalous docs in the loss; None
        computes n_normal / n_anomalous from the training labels at initialize.
    scorer (Optional[Callable]): the scoring method (anomaly_auc, anomaly_ap, anomaly_p/r/f).
    outlier_exposure (Optional[Dict[str, Any]]): one_class with a fitted detector only:
        {"path": file of out-of-domain texts, one per line; "n": at most that many, default
        1000}, read at initialize; a regression on top of the detector learns to tell them
        from the normal docs (outlier_exposure.py). null: off.
    explain (bool): also set `token._.anomaly_score` and `doc.spans["anomaly"]` (explain.py).
    explain_spans (int): the highest-scoring passages kept in `doc.spans["anomaly"]`.
    explain_method (str): "auto", "tokens", "occlusion", "alone", "decompose",
        "decompose_projected" or "decompose_calibrated" (explain.py).
    explain_length_weight (Optional[float]): passages rank by value x n_tokens ** weight;
        null: the weight chosen for the method (explain.AUTO).
    explain_passages (Optional[str]): the passages explained: "sentences" or "lines" (a doc's
        lines where it has several, else its sentences); null: the unit chosen for the method
        (explain.AUTO).
    """
    return AnomalyScorer(
        nlp.vocab,
        model,
        name,
        label=label,
        mode=mode,
        detector=detector,
        threshold=threshold,
        unlabelled_as_normal=unlabelled_as_normal,
        pos_weight=pos_weight,
        scorer=scorer,
        outlier_exposure=outlier_exposure,
        explain=explain,
        explain_spans=explain_spans,
        explain_method=explain_method,
        explain_length_weight=explain_length_weight,
        explain_passages=explain_passages,
    )


def register_extensions() -> None:
    """Register `doc._.anomaly_score` and `doc._.is_anomaly` (idempotent, never forced)."""
    for attr in ("anomaly_score", "is_anomaly"):
        if not Doc.has_extension(attr):
            Doc.set_extension(attr, default=None)
    explain.register_token_extension()


class AnomalyScorer(OneClassFitting, JsonCfgSerialization, TrainablePipe):
    """Score each doc for being anomalous; trainable, supervised or one-class."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "anomaly_scorer",
        *,
        scorer: Optional[Callable] = anomaly_score,
        **settings: Any,
    ) -> None:
        """Initialize the component (see `make_anomaly_scorer`; unset settings: DEFAULT_SETTINGS)."""
        settings = {
            **DEFAULT_SETTINGS,
            **checks.check_settings(settings, tuple(DEFAULT_SETTINGS), name),
        }
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self._rehearsal_model = None
        self.cfg: Dict[str, Any] = checks.initial_cfg(settings, name)
        self._detector_from_null = settings["detector"] is None
        # not in cfg: the config, not the saved pipeline, says whether to explain
        self.explain_settings = explain.check_settings(settings, name)
        self._explained: Optional[Tuple[List[Doc], List[explain.Explanation]]] = None
        self._set_detector(detectors.resolve_detector(self.cfg["mode"], settings["detector"], name))
        if self.explain_settings["explain"]:
            explain.check_explainable(self.detector, name)
        # not in cfg either: a training-time setting, read at initialize (the weights are saved)
        self.outlier_exposure = outlier_exposure.check_setting(settings["outlier_exposure"], name)
        if self.outlier_exposure is not None and self._fitted is None:
            raise ValueError(
                f"anomaly_scorer '{name}': outlier_exposure needs mode = \"one_class\" with a fitted "
                f"detector (one of {detectors.EMBEDDING_DETECTORS}); got mode {self.cfg['mode']!r}, "
                f"detector {self.cfg['detector']!r}. Remove [components.{name}.outlier_exposure] or "
                "change the mode / detector."
            )
        register_extensions()
        set_head_mode(self.model, self.cfg["mode"])

    def _set_detector(self, detector: Optional[Detector]) -> None:
        """Take `detector`; a fitted one gets a `FittedDetector` to hold its state."""
        self.detector = detector
        self.cfg["detector"] = None if detector is None else detector.name
        if hasattr(detector, "bind_label"):  # a detector that reads doc.cats skips our label
            detector.bind_label(self.cfg["label"])
        fitted = isinstance(detector, EmbeddingDetector)
        self._fitted = FittedDetector(detector, self.model, self.name) if fitted else None

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
        """ "supervised" or "one_class"."""
        return self.cfg["mode"]

    @property
    def threshold(self) -> float:
        """`doc._.is_anomaly` is `score >= threshold`."""
        return float(self.cfg["threshold"])

    def set_threshold(self, threshold: float) -> None:
        """Set the decision threshold (stored in cfg, so it is serialized)."""
        checks.check_threshold(threshold, self.name)
        self.cfg["threshold"] = float(threshold)

    def add_label(self, label: str) -> int:
        """The label is fixed by the `label` setting: 0 for it, ValueError for any other."""
        if label == self.label:
            return 0
        raise ValueError(
            f"anomaly_scorer '{self.name}' predicts the single label {self.label!r} (the `label` setting), not {label!r}"
        )

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
        if self.explain_settings["explain"]:
            # the detector may have changed since __init__ (an old pipeline's cfg, at load)
            explain.check_explainable(self.detector, self.name)
            scores, explanations = explain.explain_docs(self, docs)
            self._explained = (docs, explanations)
            return scores
        if self._fitted is not None:
            return self._fitted.scores(docs)
        return self._raw_to_scores(head_predict(self.model, docs))

    def _raw_to_scores(self, raw: Floats2d) -> Floats1d:
        return sigmoid(self.model.ops.xp, self._raw_to_logits(raw))

    def _raw_to_logits(self, raw: Floats2d) -> Floats1d:
        """The head's raw scores -> the logits of the scores (float64, one per doc)."""
        xp = self.model.ops.xp
        # float64: sigmoid saturation and ties come much later than in float32
        raw = xp.asarray(raw, dtype="float64").reshape(-1)
        checks.check_finite_raw(xp, raw, self.name)
        if self.cfg["mode"] == "supervised":
            return raw
        return one_class.standardized(
            xp, raw, self.cfg.get("one_class_location"), self.cfg.get("one_class_scale")
        )

    def set_annotations(self, docs: Iterable[Doc], scores: Floats1d) -> None:
        """Set `doc._.anomaly_score`, `doc._.is_anomaly` and `doc.cats[label]`."""
        scores = self.model.ops.to_numpy(scores).reshape(-1)
        threshold, label = self.threshold, self.label
        for doc, score in zip(docs, scores):
            value = float(score)
            doc._.anomaly_score = value
            doc._.is_anomaly = bool(value >= threshold)
            doc.cats[label] = value
        explanations = explain.stashed(self._explained, docs)
        self._explained = None
        for doc, explanation in zip(docs, explanations or ()):
            explain.annotate(doc, explanation)

    def explain(self, docs: Union[Doc, Iterable[Doc]]) -> Union[Doc, List[Doc]]:
        """Score and explain docs processed by the components before this one (e.g. by
        `nlp(text)` with `explain` off): sets what `explain = true` sets; returns the doc(s)."""
        single = isinstance(docs, Doc)
        batch = [docs] if single else list(docs)
        previous = self.explain_settings["explain"]
        self.explain_settings["explain"] = True
        try:
            self.set_annotations(batch, self.predict(batch))
        finally:
            self.explain_settings["explain"] = previous
        return batch[0] if single else batch

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
        if self._fitted is not None:
            # knn/mahalanobis are fitted, not trained (no doc gives loss: zero gradients, see
            # the listener contract); re-fit before the next prediction or save, as the
            # encoder may change with this update.
            self._fitted.encoder_changed = True
        set_dropout_rate(self.model, drop)
        docs = [eg.predicted for eg in examples]
        # a batch with no token at all only trains the head (see head_begin_update)
        raw, bp_raw = head_begin_update(self.model, docs) if docs else self.model.begin_update(docs)
        batch_loss, d_raw = self._loss_and_gradient(raw, truths, mask)
        checks.check_finite_loss(batch_loss, self.name, sgd)  # before any NaN reaches the weights
        bp_raw(d_raw)  # never skipped: see the listener contract above
        if sgd is not None:
            self.finish_update(sgd)
        if isinstance(self.detector, SvddDetector):
            self._track_one_class_stats(raw, mask)
        losses[self.name] += batch_loss
        return losses

    def get_loss(self, examples: Iterable[Example], scores: Floats2d) -> Tuple[float, Floats2d]:
        """Loss and gradient with respect to the model's raw output (shape (n_docs, 1))."""
        examples = list(examples)
        validate_examples(examples, "AnomalyScorer.get_loss")
        truths, mask = self._examples_to_truth(examples)
        return self._loss_and_gradient(scores, truths, mask)

    def _loss_and_gradient(
        self, raw: Floats2d, truths: numpy.ndarray, mask: numpy.ndarray
    ) -> Tuple[float, Floats2d]:
        supervised = self.cfg["mode"] == "supervised"
        pos_weight = float(self.cfg["pos_weight"] or 1.0)
        return loss.loss_and_gradient(
            self.model.ops, raw, truths, mask, supervised=supervised, pos_weight=pos_weight
        )

    def _examples_to_truth(self, examples: List[Example]) -> Tuple[numpy.ndarray, numpy.ndarray]:
        """(gold 0/1, loss mask) per example (see loss.py)."""
        return loss.truths_and_mask(
            examples,
            self.label,
            self.name,
            one_class=self.cfg["mode"] == "one_class",
            unlabelled_as_normal=self.cfg["unlabelled_as_normal"],
            trained=self._fitted is None,
        )

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
        shared_cats.check_label_not_shared(nlp, self, self.label, self.name)
        validate_get_examples(get_examples, "AnomalyScorer.initialize")
        n_pos, n_neg, n_unlabelled = loss.count_labels(get_examples(), self.label, self.name)
        self.cfg.update(
            {
                "n_train_anomalous": n_pos,
                "n_train_normal": n_neg,
                "n_train_unlabelled": n_unlabelled,
            }
        )
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
                    'Label some anomalies, or use mode = "one_class".',
                    stacklevel=2,
                )
        else:
            self._initialize_one_class(get_examples, nlp)

    def _refuse_empty_corpus(self) -> None:
        raise ValueError(
            f"anomaly_scorer '{self.name}': the training corpus is empty, so there is nothing to "
            "initialize from. Point [paths.train] (or the corpus given to initialize) at a corpus "
            'with documents; in mode = "one_class" normal documents alone are enough.'
        )

    # ------------------------------------------------------------------ serialization (serialization.py)

    def _detector_bytes(self) -> bytes:
        return self._fitted.to_bytes() if self._fitted is not None else b""

    def _load_cfg(self, cfg: Dict[str, Any], source: str) -> None:
        """Validate a stored cfg (`source` names the file) and take it."""
        cfg = checks.check_cfg(cfg, self.name, source)
        stored = cfg.get("detector", "svdd" if cfg.get("mode") == "one_class" else None)
        if stored == "svdd" and self._detector_from_null and self.cfg["mode"] == "one_class":
            # Release 0.1.0 had one one-class head, Deep-SVDD, no `detector` setting in its
            # cfg and none in its config (still null when such a pipeline is saved again):
            # tests/fixtures/pipeline_v0_1_anomaly.
            self._set_detector(detectors.make_detector(stored))
        elif (
            cfg.get("mode", self.cfg["mode"]) != self.cfg["mode"] or stored != self.cfg["detector"]
        ):
            raise ValueError(
                f"anomaly_scorer '{self.name}': {source} was saved with mode {cfg.get('mode')!r} and detector "
                f"{stored!r}, but the config builds mode {self.cfg['mode']!r} with detector {self.cfg['detector']!r}; "
                "load the pipeline with the config it was saved with."
            )
        self.cfg.update({**cfg, "detector": stored})

    def _load_detector(self, data: bytes) -> None:
        if self._fitted is None:
            return
        output = self.model.get_ref("output_layer") if self.model.has_ref("output_layer") else None
        self._fitted.from_bytes(data, output.maybe_get_dim("nI") if output is not None else None)

    # ------------------------------------------------------------------ scoring

    def score(self, examples: Iterable[Example], **kwargs: Any) -> Dict[str, Any]:
        """anomaly_auc, anomaly_ap, anomaly_p/r/f of `examples` at this component's threshold."""
        if self.scorer is None:
            return {}
        kwargs.setdefault("label", self.label)
        kwargs.setdefault("threshold", self.threshold)
        return self.scorer(examples, **kwargs)
