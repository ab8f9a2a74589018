"""`spacy-modernbert.IntentConfidenceDetector.v1`: out-of-scope from the intent classifier's own confidence.

An `anomaly_scorer` detector (mode = "one_class") that reads no embedding: its features are
the class probabilities a `textcat` placed before it in the pipeline wrote in `doc.cats`
(every label but the anomaly scorer's own). A doc the classifier is unsure about is
out-of-scope. Two scores, chosen by `score`:

* `"max_prob"`: `-log max_i p_i`, the maximum softmax probability baseline (Hendrycks &
  Gimpel, ICLR 2017), as a surprise so that higher = more anomalous.
* `"energy"`: the energy score `-T logsumexp(z / T)` (Liu et al., NeurIPS 2020) taken over
  the log-probabilities `z = log p`, the only logits `doc.cats` keeps (the textcat's raw
  logits are gone after its softmax; `log p` are those logits shifted per doc). Over
  log-probabilities the energy ranks docs exactly as the Renyi entropy of order `1/T`,
  `H = log(sum_i p_i^(1/T)) / (1 - 1/T)` (Shannon entropy at T = 1), which is what is
  computed: it sees the whole distribution, not only its top class (T -> 0 is max_prob).

Raw scores are `log(score + 1e-6)` (so that the confident training docs, whose surprise is
near 0, still have a usable spread), mapped to [0, 1] by the robust statistics of the
in-scope training docs, as every fitted detector is (`detectors.unit_scores`); `calibrate`
sets the threshold on dev. The fitted state is small (statistics, the mean sorted probability
vector of the fit docs) and re-fitted whenever the encoder changed, like the others.

Which one is the default of `configs/intents_*.cfg` was chosen on a dev split carved from
CLINC150's train (benchmarks/intents.py, docs/intents.md).
"""

from typing import Any, List

import numpy
from spacy.tokens import Doc
from spacy.util import registry

from .detectors import EmbeddingDetector, _whole
from .scoring import DEFAULT_LABEL

SCORES = ("energy", "max_prob")
EPS = 1e-6
PROB_FLOOR = 1e-12


class IntentConfidenceDetector(EmbeddingDetector):
    """Out-of-scope = low confidence of the textcat before `anomaly_scorer` (doc.cats)."""

    name = "intent_confidence"
    required = ("mean_probs", "temperature")
    vectors = "mean_probs"

    def __init__(
        self, score: str = "energy", temperature: float = 2.0, memory_bank_size: int = 1000
    ):
        super().__init__(memory_bank_size)
        if score not in SCORES:
            raise ValueError(
                f"[components.anomaly_scorer.detector] score must be one of {SCORES}, got {score!r}"
            )
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise ValueError(
                f"[components.anomaly_scorer.detector] temperature must be a number > 0, got {temperature!r}"
            )
        if not temperature > 0:
            raise ValueError(
                f"[components.anomaly_scorer.detector] temperature must be > 0, got {temperature!r}"
            )
        self.score = score
        self.temperature = float(temperature)
        self.anomaly_label = DEFAULT_LABEL

    def bind_label(self, label: str) -> None:
        """The anomaly scorer's own label: never read as a class probability."""
        self.anomaly_label = label

    # ------------------------------------------------------------ features (fitted.py's hook)

    def doc_features(self, model: Any, docs: List[Doc]) -> Any:
        """The class probabilities of each doc, sorted in decreasing order (n_docs, n_classes),
        on the model's device. Sorted: both scores are symmetric in the classes."""
        rows = []
        for i, doc in enumerate(docs):
            probs = [v for k, v in doc.cats.items() if k != self.anomaly_label]
            if not probs:
                raise ValueError(
                    f"the {self.name} detector reads the class probabilities a textcat writes in doc.cats, "
                    f"but doc {i} ({doc.text[:40]!r}) has none: put a textcat (with its own labels) before "
                    "anomaly_scorer in [nlp] pipeline"
                )
            rows.append(sorted(probs, reverse=True))
        widths = {len(row) for row in rows}
        if len(widths) > 1:
            raise ValueError(
                f"the {self.name} detector got docs with different numbers of classes in doc.cats "
                f"({sorted(widths)}): every doc must be classified by the same textcat"
            )
        return model.ops.asarray2f(numpy.asarray(rows, dtype="float32"))

    # ------------------------------------------------------------ fitting and scoring

    def fit_raw(self, X, tokens, seed):
        state = {
            "mean_probs": X.mean(axis=0).astype("float64"),
            "temperature": numpy.asarray(self.temperature),
        }
        return state, self.raw_scores(state, X)

    def raw_scores(self, state, X, tokens=None, xp=numpy):
        P = xp.maximum(xp.asarray(X, dtype="float64"), PROB_FLOOR)
        if P.shape[1] != int(state["mean_probs"].shape[-1]):
            raise ValueError(
                f"the {self.name} detector was fitted on {int(state['mean_probs'].shape[-1])} classes, "
                f"the docs have {P.shape[1]}"
            )
        if self.score == "max_prob":
            surprise = -xp.log(P.max(axis=1))
        else:
            surprise = renyi_entropy(P, 1.0 / float(state["temperature"]), xp)
        return xp.log(xp.maximum(surprise, 0.0) + EPS)

    def check_state(self, state, width=None):
        # the width of the state is the number of classes, not the encoder's width
        super().check_state(state, None)
        if float(state["temperature"]) <= 0:
            raise ValueError(f"the {self.name} detector state has a non-positive temperature")


def renyi_entropy(P: Any, alpha: float, xp: Any = numpy) -> Any:
    """Renyi entropy of order `alpha` of each row of probabilities `P` (Shannon at alpha = 1)."""
    logP = xp.log(P)
    if abs(alpha - 1.0) < 1e-9:
        return -(P * logP).sum(axis=1)
    scaled = alpha * logP
    top = scaled.max(axis=1, keepdims=True)
    lse = (top + xp.log(xp.exp(scaled - top).sum(axis=1, keepdims=True))).reshape(-1)
    return lse / (1.0 - alpha)


@registry.anomaly_detectors("spacy-modernbert.IntentConfidenceDetector.v1")
def intent_confidence_detector(
    score: str = "energy", temperature: float = 2.0, memory_bank_size: int = 1000
) -> IntentConfidenceDetector:
    """Out-of-scope from the confidence of the textcat before anomaly_scorer (energy or max_prob)."""
    return IntentConfidenceDetector(
        score, temperature, _whole("memory_bank_size", memory_bank_size, 2)
    )
