"""`AnomalyScorer`'s one-class fitting: the center, the statistics or a fitted detector.

Why apart from component.py: fitting the one-class mode on normal documents (at `initialize`,
by `fit_detector` / `fit_one_class_statistics`, and the moving average during training) is one
job with its own refusals; the component only calls it. A mixin, like serialization.py's.

Invariants: only normal documents are fitted on (`loss.sample_normal_examples`, seeded), after
the components before this one annotated them (a listener needs its upstream's output); the
statistics live in `self.cfg` (`one_class_location`, `one_class_scale`), a fitted detector's
state in `self._fitted`; outlier-exposure texts (the `outlier_exposure` setting,
outlier_exposure.py) are read at initialize and kept by `self._fitted` to fit with. The host
class provides `cfg`, `model`, `name`, `label`, `vocab`, `outlier_exposure`, `_fitted` and
`_sync_mode`. No torch import here (the component imports this module).
"""

from typing import Callable, Dict, Iterable, List, Optional, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.types import Floats2d

from . import checks, detectors, loss, one_class, outlier_exposure
from .detectors import DETECTORS
from .fitted import annotate_upstream


class OneClassFitting:
    """Fit `anomaly_scorer`'s one-class mode on normal documents (mixed into AnomalyScorer)."""

    def _initialize_one_class(
        self, get_examples: Callable[[], Iterable[Example]], nlp: Optional[Language]
    ) -> None:
        limit = (
            self._fitted.detector.memory_bank_size
            if self._fitted is not None
            else one_class.INIT_DOCS
        )
        normal_egs, _ = loss.sample_normal_examples(
            get_examples,
            self.label,
            self.name,
            unlabelled_as_normal=self.cfg["unlabelled_as_normal"],
            limit=limit,
            seed=detectors.SEED,
        )
        if not normal_egs:
            raise ValueError(
                f"anomaly_scorer '{self.name}' (mode = \"one_class\"): no normal training document to "
                f"learn from: every training doc has doc.cats[{self.label!r}] == 1.0"
                + (
                    ""
                    if self.cfg["unlabelled_as_normal"]
                    else " or no label (unlabelled_as_normal = false)"
                )
                + ". Add normal documents (doc.cats[label] = 0.0, or no label with unlabelled_as_normal = true) "
                'to the training corpus; to learn from labelled anomalies use mode = "supervised".'
            )
        if self._fitted is not None:
            self._sync_mode()
            if self.outlier_exposure is not None:
                texts = outlier_exposure.read_texts(self.outlier_exposure, self.name)
                make_doc = nlp.make_doc if nlp is not None else self._whitespace_doc
                self._fitted.outlier_docs = [make_doc(text) for text in texts]
            self._fitted.fit_on_training_docs(
                [eg.predicted for eg in normal_egs], nlp, self._annotate_upstream
            )
            return
        docs = self._annotate_upstream([eg.predicted.copy() for eg in normal_egs], nlp)
        checks.check_listener_input(
            self.model, docs, self.name
        )  # a center of zero vectors otherwise
        one_class.fit_center(self.model, docs)
        self.fit_one_class_statistics(docs)

    def _whitespace_doc(self, text: str) -> Doc:
        return Doc(self.vocab, words=text.split())

    def _annotate_upstream(self, docs: List[Doc], nlp: Optional[Language]) -> List[Doc]:
        return annotate_upstream(self, docs, nlp)

    def fit_detector(
        self, docs: Iterable[Doc], outlier_docs: Optional[Iterable[Doc]] = None
    ) -> Dict[str, numpy.ndarray]:
        """Fit the one-class embedding detector on normal documents; returns the fitted state.

        docs (Iterable[Doc]): normal documents already processed by the upstream components
            (e.g. the output of `nlp.pipe`), so that a listener finds the encoder's output.
            More than `memory_bank_size` docs: a seeded uniform subsample of them is kept.
        outlier_docs (Optional[Iterable[Doc]]): outlier-exposure docs (out-of-domain text,
            never the anomalies you evaluate on), processed the same way; None: those of the
            `outlier_exposure` setting read at initialize in this process, if any.
        """
        if self._fitted is None:
            raise ValueError(
                f"anomaly_scorer '{self.name}': fit_detector needs mode = \"one_class\" with a fitted detector "
                f"(one of {tuple(n for n in DETECTORS if n != 'svdd')}; got mode {self.cfg['mode']!r}, "
                f"detector {self.cfg.get('detector')!r})"
            )
        self._sync_mode()
        return self._fitted.fit(list(docs), None if outlier_docs is None else list(outlier_docs))

    def fit_one_class_statistics(self, docs: Iterable[Doc]) -> Tuple[float, float]:
        """Fit the one-class location/scale (median, scaled MAD of distances) on normal docs.

        docs (Iterable[Doc]): normal documents already processed by the upstream components
            (e.g. the output of `nlp.pipe`), so that a listener finds the encoder's output.
        RETURNS (Tuple[float, float]): the location and scale stored in cfg.
        """
        if self.cfg["mode"] != "one_class":
            raise ValueError(
                f"anomaly_scorer '{self.name}': one-class statistics need mode = \"one_class\""
            )
        if self._fitted is not None:
            state = self.fit_detector(docs)
            return float(state["location"]), float(state["scale"])
        docs = list(docs)
        if not docs:
            raise ValueError(
                f"anomaly_scorer '{self.name}': fit_one_class_statistics needs at least one document"
            )
        self._sync_mode()
        checks.check_listener_input(self.model, docs, self.name)
        location, scale = one_class.fit_statistics(self.model, docs)
        self.cfg["one_class_location"] = location
        self.cfg["one_class_scale"] = scale
        return location, scale

    def _track_one_class_stats(self, raw: Floats2d, mask: numpy.ndarray) -> None:
        """Moving average of the one-class location/scale over this batch's normal docs."""
        if self.cfg.get("one_class_location") is None:
            return
        raw = self.model.ops.to_numpy(raw)
        stats = one_class.track(
            float(self.cfg["one_class_location"]), float(self.cfg["one_class_scale"]), raw, mask > 0
        )
        if stats is not None:
            self.cfg["one_class_location"], self.cfg["one_class_scale"] = stats
