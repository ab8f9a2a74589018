"""The lifecycle of a fitted one-class detector: fit, mark stale, re-fit, score, save, load.

Why a module of its own: an `EmbeddingDetector` (detectors.py) is *fitted* on the normal
training docs' embeddings, while the encoder that makes those embeddings keeps training.
`FittedDetector` holds the fitted state and everything needed to keep it in step with the
encoder; `AnomalyScorer` delegates to it and so never branches on the detector's kind.

Invariants:
* the state used to score or saved matches the encoder as it is now: `update` marks it stale
  (`encoder_changed`), and the next `scores` or `to_bytes` re-fits it on the kept normal docs
  (in the process that initialized the component; a loaded state is never stale);
* at most `memory_bank_size` normal docs are kept, a seeded uniform subsample (never the
  first N), and the state is validated by the detector whenever it is loaded;
* on a GPU the state is copied to the device once per fit, not once per batch.
Numpy/thinc only (no torch import): spaCy imports this module with the component.
"""

import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats1d

from . import detectors, idf_pooling, passage_calibration, replaced_tokens, search
from .detectors import EmbeddingDetector
from .model import doc_features

# Runs the components before this one over docs (a listener needs its upstream's output).
Annotate = Callable[[List[Doc], Any], List[Doc]]


def annotate_upstream(component: Any, docs: List[Doc], nlp: Any) -> List[Doc]:
    """Run the components of `nlp` before `component` (e.g. the shared encoder) over `docs`."""
    if nlp is None:
        return docs
    for _, proc in nlp.pipeline:
        if proc is component:
            break
        docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]
    return docs


class FittedDetector:
    """An `EmbeddingDetector`, its fitted state, and the normal docs to re-fit it on."""

    def __init__(self, detector: EmbeddingDetector, model: Model, owner: str):
        self.detector = detector
        self.model = model
        self.owner = owner  # the component's name, for messages
        self.state: Optional[Dict[str, numpy.ndarray]] = None
        self.encoder_changed = False
        self._fit_docs: Optional[List[Doc]] = None
        self._fit_nlp: Optional[Callable[[], Any]] = None
        self._annotate: Optional[Annotate] = None
        self._device_state: Optional[Tuple[Dict[str, Any], Dict[str, Any]]] = None
        # outlier exposure (outlier_exposure.py): unannotated docs, annotated at every fit
        self.outlier_docs: Optional[List[Doc]] = None

    def fit_on_training_docs(self, docs: List[Doc], nlp: Any, annotate: Annotate) -> None:
        """Keep copies of normal training docs (and a weak reference to the pipeline that
        annotates them) and fit on them; they are re-fitted on whenever the encoder changed."""
        self._fit_docs = [doc.copy() for doc in docs]
        self._fit_nlp = weakref.ref(nlp) if nlp is not None else None
        self._annotate = annotate
        self._refit()

    def _refit(self) -> None:
        nlp = self._fit_nlp() if self._fit_nlp is not None else None
        docs = [doc.copy() for doc in self._fit_docs or []]
        self.fit(self._annotate(docs, nlp) if self._annotate is not None else docs)

    def refit_if_encoder_changed(self) -> None:
        if self.encoder_changed and self._fit_docs:
            self._refit()

    def fit(
        self, docs: List[Doc], outlier_docs: Optional[List[Doc]] = None
    ) -> Dict[str, numpy.ndarray]:
        """Fit on normal docs already processed by the upstream components (at most
        `memory_bank_size` of them: a seeded uniform subsample); returns the state.
        `outlier_docs`: outlier-exposure docs processed upstream; None: those of the
        component's `outlier_exposure` setting (`self.outlier_docs`), if any."""
        if len(docs) < 2:
            raise ValueError(
                f"anomaly_scorer '{self.owner}': the {self.detector.name} detector needs at least 2 normal documents, got {len(docs)}"
            )
        keep = search.subsample_indices(len(docs), self.detector.memory_bank_size, detectors.SEED)
        kept = [docs[i] for i in keep]
        table = idf_pooling.fit(idf_pooling.doc_keys(kept)) if self.idf else None
        reference = hasattr(self.detector, "raw_terms")  # explain "decompose_calibrated"
        # A bank no larger than the reference: one pass gives the reference its token vectors.
        one_pass = reference and len(kept) <= passage_calibration.REFERENCE_DOCS
        pooled, tokens = self._numpy_features(kept, table, with_tokens=True if one_pass else None)
        reference_features = (pooled, tokens) if one_pass else None
        if not self.detector.needs_tokens:
            tokens = None
        if outlier_docs is None and self.outlier_docs:
            nlp = self._fit_nlp() if self._fit_nlp is not None else None
            outlier_docs = [doc.copy() for doc in self.outlier_docs]
            if self._annotate is not None:
                outlier_docs = self._annotate(outlier_docs, nlp)
        outliers = self._numpy_features(outlier_docs, table) if outlier_docs else None
        extra = {}
        if getattr(self.detector, "needs_corrupted", False):  # replaced_tokens.py
            extra["corrupted"] = replaced_tokens.corrupted_fit_features(
                self.detector, kept, self._annotate_now(), self._numpy_features, self.owner
            )
        state = self.detector.fit(pooled, tokens, seed=detectors.SEED, outliers=outliers, **extra)
        state.update(table or {})
        if reference:
            state.update(self._passage_reference(kept, table, state, reference_features))
        self.state = state
        self.encoder_changed = False
        return self.state

    def _passage_reference(
        self,
        kept: List[Doc],
        table: Optional[Dict[str, Any]],
        state: Dict[str, Any],
        features: Optional[Tuple[numpy.ndarray, Optional[List[numpy.ndarray]]]] = None,
    ) -> Dict[str, numpy.ndarray]:
        """The passage reference of explain "decompose_calibrated" (passage_calibration.py),
        from at most REFERENCE_DOCS of the kept docs (`kept[i]` is the knn bank's row i).
        `features`: the kept docs' (pooled, token vectors) when the fit pass read them all
        (kept <= REFERENCE_DOCS); otherwise the subsample is encoded here."""
        rows = search.subsample_indices(
            len(kept), passage_calibration.REFERENCE_DOCS, detectors.SEED
        )
        docs = [kept[i] for i in rows]
        if features is not None and len(rows) == len(kept):
            pooled, tokens = features
        else:
            pooled, tokens = self._numpy_features(docs, table, with_tokens=True)
        weights = idf_pooling.weights(table, idf_pooling.doc_keys(docs)) if table else None
        return passage_calibration.fit(
            self.detector, state, docs, pooled, tokens or [], weights, rows
        )

    @property
    def idf(self) -> bool:
        """Whether the detector reads IDF-pooled doc vectors (its `pooling` setting)."""
        return getattr(self.detector, "pooling", "mean") == "idf"

    def _annotate_now(self) -> Optional[Callable[[List[Doc]], List[Doc]]]:
        """docs -> docs annotated by the pipeline's upstream components (None: no pipeline)."""
        if self._annotate is None:
            return None
        nlp = self._fit_nlp() if self._fit_nlp is not None else None
        return lambda docs: self._annotate(docs, nlp)

    def _numpy_features(
        self,
        docs: List[Doc],
        table: Optional[Dict[str, Any]] = None,
        batch_size: int = 256,
        with_tokens: Optional[bool] = None,
    ) -> Tuple[numpy.ndarray, Optional[List[numpy.ndarray]]]:
        """The pooled vectors and (token detectors, or `with_tokens`) the float32 token
        vectors of `docs`, on the CPU; `table`: the IDF table to pool with (pooling = "idf")."""
        if with_tokens is None:
            with_tokens = self.detector.needs_tokens
        pooled: List[numpy.ndarray] = []
        tokens: List[numpy.ndarray] = []
        ops = self.model.ops
        for start in range(0, len(docs), batch_size):
            X, T = self._features(docs[start : start + batch_size], with_tokens, table)
            pooled.append(ops.to_numpy(X))
            tokens.extend(numpy.asarray(ops.to_numpy(t), dtype="float32") for t in T or ())
        return numpy.concatenate(pooled), (tokens if with_tokens else None)

    def scores(self, docs: List[Doc]) -> Floats1d:
        """Scores in [0, 1] of docs processed by the upstream components (on the model's device)."""
        state = self.ready_state()
        pooled, tokens = self.features(docs, self.detector.needs_tokens)
        return self.detector.scores(state, pooled, tokens, self.model.ops.xp)

    def features(self, docs: List[Doc], with_tokens: bool) -> Tuple[Any, Optional[List[Any]]]:
        """The (pooled vectors, token vectors if `with_tokens`) the fitted detector scores
        `docs` by, on the model's device (IDF-pooled with the fitted table under pooling = "idf")."""
        if self.idf:
            self.refit_if_encoder_changed()
        return self._features(docs, with_tokens, self.state if self.idf else None)

    def token_weights(self, docs: List[Doc]) -> Optional[List[numpy.ndarray]]:
        """Per doc, each token's weight in its pooled vector under pooling = "idf" (None: the
        listener's pooling)."""
        if not self.idf or self.state is None:
            return None
        return idf_pooling.weights(self.state, idf_pooling.doc_keys(docs))

    def ready_state(self) -> Dict[str, Any]:
        """The fitted state, re-fitted if the encoder changed, on the model's device."""
        self.refit_if_encoder_changed()
        if self.state is None:
            raise ValueError(
                f"anomaly_scorer '{self.owner}': the {self.detector.name} detector is not fitted. Initialize the "
                "pipeline (nlp.initialize or spacy train) or call fit_detector(docs) with normal documents."
            )
        xp = self.model.ops.xp
        state = self.state
        if xp is not numpy:  # copy the state to the model's device once per fit, not per batch
            if self._device_state is None or self._device_state[0] is not state:
                self._device_state = (
                    state,
                    {key: xp.asarray(value) for key, value in state.items()},
                )
            state = self._device_state[1]
        return state

    def _features(
        self, docs: List[Doc], with_tokens: bool, table: Optional[Dict[str, Any]] = None
    ) -> Tuple[Any, Optional[List[Any]]]:
        """The detector's features of `docs`: the pooled embeddings (and token vectors) of the
        listener, unless the detector reads its own (`doc_features(model, docs)`, e.g. the
        class probabilities of IntentConfidenceDetector.v1); `table`: IDF-pool the tokens
        with it (pooling = "idf", idf_pooling.py) instead of the listener's pooling."""
        own = getattr(self.detector, "doc_features", None)
        if own is not None:
            return own(self.model, docs), None
        if table is None:
            return doc_features(self.model, docs, with_tokens)
        _, tokens = doc_features(self.model, docs, True)
        xp = self.model.ops.xp
        pooled = idf_pooling.pooled(table, tokens, idf_pooling.doc_keys(docs), xp)
        return self.model.ops.asarray2f(pooled), (tokens if with_tokens else None)

    def to_bytes(self) -> bytes:
        """The state as `.npz` bytes (re-fitted first if the encoder changed)."""
        self.refit_if_encoder_changed()
        return detectors.state_to_bytes(self.state)

    def from_bytes(self, data: bytes, width: Optional[int]) -> None:
        """Load and validate a stored state; a loaded detector has no docs to re-fit on."""
        try:
            self.state = detectors.state_from_bytes(data, self.detector, width)
        except ValueError as err:
            raise ValueError(
                f"anomaly_scorer '{self.owner}': the stored detector (file {self.owner}/detector): {err}"
            ) from None
        self._fit_docs = self._fit_nlp = self._annotate = None
        self.encoder_changed = False
