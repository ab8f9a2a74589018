"""One-class detectors of `anomaly_scorer`, registered in spaCy's `anomaly_detectors` registry.

A config chooses one as a sub-block of the component, with only the settings it has:

    [components.anomaly_scorer.detector]
    @anomaly_detectors = "spacy-modernbert.KnnDetector.v1"
    n_neighbors = 10
    memory_bank_size = 10000

Registered: `DocAndTokenKnnDetector.v1` (the default of mode = "one_class"), `KnnDetector.v1`,
`TokenKnnDetector.v1`, `MahalanobisDetector.v1` (all fitted on normal docs: subclasses of
`EmbeddingDetector`) and `SvddDetector.v1` (the trained Deep-SVDD head of `model.py`). A user
registers their own `EmbeddingDetector` subclass the same way (docs/anomaly.md); the
numerics they share live in `search.py`, the fitted state's lifecycle in `fitted.py`.

`anomaly_scorer` with `mode = "one_class"` scores a doc by how far its embedding (or its
tokens' vectors) lies from those of normal training docs. No anomaly label is needed; the
detector is *fitted* (not trained) on normal docs.

The embedding is length-robust: `normalize(x) = x / ||x||`, the direction of the mean-pooled
vector (cosine geometry). A mean-pooled vector of n token vectors has a norm that shrinks
as n grows (the token-specific parts average out, roughly like 1/sqrt(n)), so Euclidean
distances of raw pooled vectors, and Deep-SVDD distances, track document length: short
normal docs look far away, long anomalies look close (measured: |Spearman(score, words)|
0.85-0.89 among normal docs for `svdd`, <= 0.10 for `knn`; BENCHMARKS.md). Centering on the
mean of the normal docs before normalizing was measured too (benchmarks/one_class_study.py)
and is *not* done: it amplifies the small doc-specific residual of long docs, made the knn
scores more length-dependent (|Spearman| 0.18-0.23) and lost 6-7 AUC points on news vs SMS,
for 8 points gained on SMS spam, where both stay below the TF-IDF anchor. An empty doc pools to zeros
and stays the zero vector: cosine similarity 0 to every normal doc, a finite, high score.

* `knn`: the mean cosine distance to the `n_neighbors` nearest normal embeddings of a memory
  bank (exact search, `search.py`).
* `token_knn`: the same search one level down, over the doc's *token* vectors (the
  contextual vectors the listener gives each spaCy token), as PatchCore does over image
  patches (Roth et al., CVPR 2022): a token's distance is the mean cosine distance to its
  `token_neighbors` nearest tokens in a bank of normal training tokens (at most
  `token_bank_size`, a seeded uniform subsample of all of them), and the doc's raw score is
  the *mean* over its tokens. A mean of per-token distances does not grow or shrink with the
  number of tokens (a max or a sum would); a doc without tokens gets distance 1 (cosine
  similarity 0). `top_k_tokens = k > 0` averages the doc's k most distant tokens instead (a
  robust max: one unusual passage hidden among normal ones is not diluted by them, issue 32)
  and removes the length trend such a top-k has (more tokens, larger maximum): the raw score
  less `slope * log(tokens)`, the slope fitted by least squares on the normal fit docs
  (`length_slope` of the state). Why tokens: a pooled vector averages away the few tokens that make a doc
  unusual (a phone number, "£1000", "txt" in an otherwise ordinary message), while a token
  that no normal doc has stays far from the whole token bank.
* `doc_and_token_knn` (the default): both, each standardized by its own robust statistics
  on the normal docs (median, scaled MAD), and summed: `z_knn + z_token_knn`. The pooled
  embedding sees the topic and style of the whole doc (news vs text messages), the token
  vectors see unusual pieces inside an ordinary-looking doc; on the benchmark (BENCHMARKS.md)
  the sum was the one choice that beat every TF-IDF anchor on all three tasks.
* `mahalanobis`: a Gaussian fit of the normalized embeddings with Ledoit-Wolf shrinkage
  covariance (scikit-learn); the raw score is the squared Mahalanobis distance.

`pooling = "idf"` (knn, doc_and_token_knn, mahalanobis): the doc vector is the IDF-weighted
mean of the doc's unit token vectors instead of the listener's mean (idf_pooling.py; the IDF
table is fitted by `FittedDetector` on the same normal docs and kept in the state).

Raw scores map to [0, 1] as the Deep-SVDD scores do: `sigmoid((raw - location) / scale - 2)`,
location/scale the median and scaled MAD of the raw scores of the bank's own docs
(leave-one-out: a doc is not its own neighbour, nor are its own tokens; the token detectors
use a seeded sample of at most `STATS_DOCS` docs), so 0.5 sits two robust standard deviations
above typical normal docs. `calibrate` can move the threshold for a target false-positive
rate on unlabelled normal docs.

The fitted state is a dict of numpy arrays; `to_bytes`/`from_bytes` store it as an `.npz`
without pickles (`allow_pickle=False`) and validate shapes and values when loading.
"""

import inspect
import io
from typing import Any, Dict, Optional, Sequence, Tuple

import catalogue
import numpy
from spacy.util import registry

from . import decomposition, idf_pooling, outlier_exposure, passage_calibration, search
from .logistic import sigmoid
from .one_class import Z_AT_HALF, robust_location_scale

if not hasattr(registry, "anomaly_detectors"):  # as spacy-transformers adds its registries
    registry.anomaly_detectors = catalogue.create("spacy", "anomaly_detectors", entry_points=True)

# The short names (cfg, benchmarks, docs) of the registered detectors.
DETECTORS = {
    "doc_and_token_knn": "spacy-modernbert.DocAndTokenKnnDetector.v1",
    "knn": "spacy-modernbert.KnnDetector.v1",
    "token_knn": "spacy-modernbert.TokenKnnDetector.v1",
    "mahalanobis": "spacy-modernbert.MahalanobisDetector.v1",
    "svdd": "spacy-modernbert.SvddDetector.v1",
}
DEFAULT_DETECTOR = "doc_and_token_knn"
# What `detector = null` builds: DEFAULT_DETECTOR with these settings, the configuration with
# the best mean validation ROC AUC over the five one-class protocols of BENCHMARKS.md
# (one_class_{clinc,sms,news}_r3: 0.890 against 0.885 for the registered function's own
# defaults n_neighbors = 10, token_neighbors = 3, which it beats or ties on every protocol, on
# the random-init and the MLM-pretrained checkpoint). The registered function keeps its
# defaults (a v1 function's meaning does not change); a fitted state stores the settings it
# was fitted with, so pipelines saved before score as they did.
DEFAULT_DETECTOR_SETTINGS = {"n_neighbors": 5, "token_neighbors": 1}
# The short names of the fitted detectors (all but the trained Deep-SVDD head).
EMBEDDING_DETECTORS = ("doc_and_token_knn", "knn", "token_knn", "mahalanobis")
# Seed of the uniform subsamples (memory bank, token bank, statistics docs).
SEED = 0
State = Dict[str, numpy.ndarray]


def _whole(setting: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(
            f"[components.anomaly_scorer.detector] {setting} must be an integer >= {low}, got {value!r}"
        )
    return int(value)


class SvddDetector:
    """The Deep-SVDD head (`model.py`): trained with the encoder, scored from its distance."""

    name = "svdd"


class EmbeddingDetector:
    """A detector *fitted* on the embeddings of normal docs (no gradient, no label).

    A subclass sets `name`, `required` (the state's arrays), `vectors` (the state array
    whose last axis is the embedding width) and `needs_tokens`, and implements `fit_raw`
    and `raw_scores`; this class maps raw scores to [0, 1] and checks stored states.
    """

    name = "embedding"
    required: Tuple[str, ...] = ()
    vectors = "bank"
    needs_tokens = False
    # the doc vector it reads: "mean" (the listener's pooling) or "idf" (idf_pooling.py; the
    # fitted state then holds the IDF table, which `FittedDetector` fits and pools with)
    pooling = "mean"

    def __init__(self, memory_bank_size: int = 10000, pooling: str = "mean"):
        self.memory_bank_size = _whole("memory_bank_size", memory_bank_size, 2)
        self.pooling = idf_pooling.check_pooling(pooling)

    def fit_raw(
        self, X: numpy.ndarray, tokens: Optional[Sequence[numpy.ndarray]], seed: int
    ) -> Tuple[Any, ...]:
        """The state and the raw scores of the fit docs themselves (leave-one-out where a doc
        would be its own neighbour), from their pooled embeddings `X` (checked finite);
        optionally a third item, the rows of `X` those scores belong to when they are not all
        of them (the token detectors score a sample of at most `search.STATS_DOCS`)."""
        raise NotImplementedError

    def raw_scores(
        self, state: Dict[str, Any], X: Any, tokens: Optional[Sequence[Any]] = None, xp: Any = numpy
    ) -> Any:
        """Raw scores (higher = more anomalous) of pooled embeddings `X`, on `xp`'s device."""
        raise NotImplementedError

    def fit(
        self,
        X: numpy.ndarray,
        tokens: Optional[Sequence[numpy.ndarray]] = None,
        seed: int = SEED,
        outliers: Optional[Tuple[numpy.ndarray, Optional[Sequence[numpy.ndarray]]]] = None,
    ) -> State:
        """Fit on normal docs: `X` their pooled embeddings (n_docs, width), `tokens` their token
        vectors (one (n_tokens, width) array per doc; needed when `needs_tokens`).
        `outliers`: (pooled embeddings, token vectors) of outlier-exposure docs: a regression
        added to the detector learns to tell them from the normal docs (outlier_exposure.py;
        it reads the pooled embeddings only)."""
        X = numpy.asarray(X, dtype="float64")
        if X.ndim != 2 or X.shape[0] < 2:
            raise ValueError(
                f"the {self.name} detector needs the embeddings of at least 2 normal documents, got shape {X.shape}"
            )
        if not numpy.isfinite(X).all():
            raise ValueError(
                f"the {self.name} detector got non-finite document embeddings: the encoder's output is not finite"
            )
        state, fit_scores, *rows = self.fit_raw(X, tokens, seed)
        location, scale = robust_location_scale(fit_scores)
        state["location"], state["scale"] = numpy.asarray(location), numpy.asarray(scale)
        if outliers is not None:
            fit_rows = rows[0] if rows else numpy.arange(len(fit_scores))
            outlier_exposure.fit(state, X[fit_rows], fit_scores, outliers[0])
        return state

    def scores(
        self, state: Dict[str, Any], X: Any, tokens: Optional[Sequence[Any]] = None, xp: Any = numpy
    ) -> Any:
        """Scores in [0, 1]: the sigmoid of `logits`."""
        return sigmoid(xp, self.logits(state, X, tokens, xp))

    def logits(
        self, state: Dict[str, Any], X: Any, tokens: Optional[Sequence[Any]] = None, xp: Any = numpy
    ) -> Any:
        """The logits of the scores (`logits_of_raw` of the raw scores)."""
        return self.logits_of_raw(state, X, self.raw_scores(state, X, tokens, xp), xp)

    def logits_of_raw(self, state: Dict[str, Any], X: Any, raw: Any, xp: Any = numpy) -> Any:
        """The logits of the scores of pooled rows `X` whose raw scores are `raw`: `unit_logits`;
        under outlier exposure the raw score is the detector's plus the regression's,
        standardized (outlier_exposure.py)."""
        if outlier_exposure.active(state):
            raw = outlier_exposure.raw_scores(state, X, raw, xp)
        return unit_logits(state, raw, xp)

    def check_state(self, state: State, width: Optional[int] = None) -> None:
        """Refuse a stored state with missing arrays, wrong shapes or non-finite values."""
        name = self.name
        missing = [key for key in self.required + ("location", "scale") if key not in state]
        if missing:
            raise ValueError(
                f"the {name} detector state lacks {missing}; re-fit the detector (nlp.get_pipe(...).fit_detector(docs)) and save again"
            )
        for key, value in state.items():
            if value.dtype.kind not in "fiu" or not numpy.isfinite(value).all():
                raise ValueError(
                    f"the {name} detector state has non-numeric or non-finite values in {key!r}"
                )
        vectors = state[self.vectors]
        d = int(vectors.shape[-1]) if vectors.ndim in (1, 2) else -1
        if d < 1 or (width is not None and d != width):
            raise ValueError(
                f"the {name} detector state has embeddings of width {d}, the model gives {width}"
            )
        for bank, k in (("bank", "n_neighbors"), ("token_bank", "token_neighbors")):
            if bank not in state:
                continue
            if state[bank].ndim != 2 or state[bank].shape[1] != d or state[bank].shape[0] < 1:
                raise ValueError(
                    f"the {name} detector's {bank} has shape {state[bank].shape}, expected (n, {d})"
                )
            if k not in state or state[k].ndim != 0 or int(state[k]) < 1:
                raise ValueError(f"the {name} detector state has {k} < 1")
        for key in ("scale", "doc_scale", "token_scale"):
            if key in state and float(state[key]) <= 0:
                raise ValueError(f"the {name} detector state has a non-positive {key}")
        outlier_exposure.check_state(state, d, name)
        passage_calibration.check_state(state, name)
        if self.pooling == "idf":
            idf_pooling.check_state(state, name)


class KnnDetector(EmbeddingDetector):
    """Mean cosine distance to the `n_neighbors` nearest normal embeddings of a memory bank."""

    name = "knn"
    required = ("bank", "n_neighbors")

    def __init__(self, n_neighbors: int = 10, memory_bank_size: int = 10000, pooling: str = "mean"):
        super().__init__(memory_bank_size, pooling)
        self.n_neighbors = _whole("n_neighbors", n_neighbors, 1)

    def fit_raw(self, X, tokens, seed):
        Z = search.normalize(X)
        state = {"bank": Z.astype("float32"), "n_neighbors": numpy.asarray(self.n_neighbors)}
        return state, search.knn_scores(
            Z, state["bank"], self.n_neighbors, numpy, leave_one_out=True
        )

    def raw_scores(self, state, X, tokens=None, xp=numpy):
        return search.knn_scores(
            search.normalize(X, xp), xp.asarray(state["bank"]), int(state["n_neighbors"]), xp
        )

    def raw_terms(self, state, X, tokens, token_weights=None, split="weights", exclude=None):
        """Per doc, each token's term of the raw score (numpy; they sum to it): the
        explanation methods "decompose*" (decomposition.py); `exclude`: per doc, its own bank
        row (a fit doc, scored leave-one-out)."""
        return decomposition.knn_terms(state, X, tokens, token_weights, split, exclude)


class TokenKnnDetector(EmbeddingDetector):
    """The mean over a doc's tokens of each token's distance to its `token_neighbors` nearest
    tokens in a bank of at most `token_bank_size` normal training tokens (PatchCore-like)."""

    name = "token_knn"
    required = ("token_bank", "token_neighbors")
    vectors = "token_bank"
    needs_tokens = True

    def __init__(
        self,
        token_neighbors: int = 3,
        token_bank_size: int = 20000,
        memory_bank_size: int = 10000,
        top_k_tokens: int = 0,
    ):
        super().__init__(memory_bank_size)
        self.token_neighbors = _whole("token_neighbors", token_neighbors, 1)
        self.token_bank_size = _whole("token_bank_size", token_bank_size, 2)
        self.top_k_tokens = _whole("top_k_tokens", top_k_tokens, 0)

    def fit_tokens(self, X, tokens, seed):
        return search.fit_token_bank(
            self.name,
            tokens,
            X.shape,
            self.token_neighbors,
            self.token_bank_size,
            seed,
            self.top_k_tokens,
        )

    def fit_raw(self, X, tokens, seed):
        state, stats_docs, fit_scores = self.fit_tokens(X, tokens, seed)
        return state, fit_scores, stats_docs

    def raw_scores(self, state, X, tokens=None, xp=numpy):
        return TokenKnnDetector.token_raw_scores(self, state, X, tokens, xp)[0]

    def token_raw_scores(self, state, X, tokens, xp=numpy):
        """(raw doc scores, per doc the raw distance of each token: a numpy array) from one
        token search (explain.py reuses the per-token distances). A doc's raw score is the mean
        of its token distances, or with `top_k_tokens` the mean of its k largest with the
        length trend removed. Subclasses call it as `TokenKnnDetector.token_raw_scores`."""
        per_token = self.token_distances(state, X, tokens, xp)
        return TokenKnnDetector.raw_of_distances(self, state, X, per_token, xp), per_token

    def token_distances(self, state, X, tokens, xp=numpy):
        """Per doc, each token's distance to its nearest bank tokens (numpy arrays): the one
        token search of scoring."""
        if tokens is None or len(tokens) != len(X):
            raise ValueError(f"the {self.name} detector needs the token vectors of each document")
        return search.token_distances(
            tokens, xp.asarray(state["token_bank"]), int(state["token_neighbors"]), xp
        )

    def raw_of_distances(self, state, X, per_token, xp=numpy):
        """The raw scores of docs whose pooled embeddings are `X` and whose tokens have the
        distances `per_token` (one numpy array per doc, as `token_distances` gives them):
        what `raw_scores` gives for their token vectors, without a token search (explain.py
        scores a doc less a passage, or a passage alone, from its tokens' distances)."""
        top_k = int(state.get("top_k_tokens", 0))
        raw = search.mean_token_distances(per_token, top_k)
        if top_k > 0:
            raw = search.detrended(state, raw, [len(t) for t in per_token])
        return xp.asarray(raw)


class DocAndTokenKnnDetector(TokenKnnDetector):
    """`z_knn + z_token_knn`: both scores, each standardized by its own robust statistics."""

    name = "doc_and_token_knn"
    required = (
        KnnDetector.required
        + TokenKnnDetector.required
        + ("doc_location", "doc_scale", "token_location", "token_scale")
    )
    vectors = "bank"

    def __init__(
        self,
        n_neighbors: int = 10,
        token_neighbors: int = 3,
        token_bank_size: int = 20000,
        memory_bank_size: int = 10000,
        top_k_tokens: int = 0,
        pooling: str = "mean",
    ):
        super().__init__(token_neighbors, token_bank_size, memory_bank_size, top_k_tokens)
        self.knn = KnnDetector(n_neighbors, memory_bank_size, pooling)
        self.pooling = self.knn.pooling

    def fit_raw(self, X, tokens, seed):
        state, doc_fit = self.knn.fit_raw(X, tokens, seed)
        token_state, stats_docs, token_fit = self.fit_tokens(X, tokens, seed)
        state.update(token_state)
        for prefix, fit in (("doc", doc_fit), ("token", token_fit)):
            location, scale = robust_location_scale(fit)
            state[f"{prefix}_location"], state[f"{prefix}_scale"] = (
                numpy.asarray(location),
                numpy.asarray(scale),
            )
        return state, search.sum_of_z(state, doc_fit[stats_docs], token_fit), stats_docs

    def raw_scores(self, state, X, tokens=None, xp=numpy):
        token = TokenKnnDetector.raw_scores(self, state, X, tokens, xp)
        return search.sum_of_z(state, self.knn.raw_scores(state, X, tokens, xp), token)

    def raw_of_distances(self, state, X, per_token, xp=numpy):
        token = TokenKnnDetector.raw_of_distances(self, state, X, per_token, xp)
        return search.sum_of_z(state, self.knn.raw_scores(state, X, None, xp), token)

    def token_raw_scores(self, state, X, tokens, xp=numpy):
        token, per_token = TokenKnnDetector.token_raw_scores(self, state, X, tokens, xp)
        doc = self.knn.raw_scores(state, X, tokens, xp)
        # each token's raw score is z_knn + its own z_token: their mean is the doc's raw score
        doc_z = (getattr(xp, "asnumpy", numpy.asarray)(doc) - float(state["doc_location"])) / float(
            state["doc_scale"]
        )
        location, scale = float(state["token_location"]), float(state["token_scale"])
        per_token = [z + (d - location) / scale for z, d in zip(doc_z, per_token)]
        return search.sum_of_z(state, doc, token), per_token


class MahalanobisDetector(EmbeddingDetector):
    """Squared Mahalanobis distance under a Ledoit-Wolf Gaussian of the normalized embeddings."""

    name = "mahalanobis"
    required = ("center", "precision")
    vectors = "center"

    def fit_raw(self, X, tokens, seed):
        from sklearn.covariance import LedoitWolf  # a declared dependency; heavy to import

        Z = search.normalize(X)
        lw = LedoitWolf().fit(Z)
        state = {
            "center": lw.location_.astype("float64"),
            "precision": lw.precision_.astype("float64"),
        }
        return state, search.mahalanobis_scores(Z, state, numpy)

    def raw_scores(self, state, X, tokens=None, xp=numpy):
        return search.mahalanobis_scores(search.normalize(X, xp), state, xp)

    def raw_terms(self, state, X, tokens, token_weights=None, split="weights", exclude=None):
        """Per doc, each token's term of the raw score (numpy; they sum to it): the
        explanation methods "decompose*" (decomposition.py); `exclude` is ignored (the
        Gaussian is fitted on every fit doc, and scores them in-sample)."""
        return decomposition.mahalanobis_terms(state, X, tokens, token_weights, split)

    def check_state(self, state, width=None):
        super().check_state(state, width)
        d = int(state["center"].shape[-1])
        if state["precision"].shape != (d, d) or state["center"].shape != (d,):
            raise ValueError(
                f"the mahalanobis state has shapes {state['center'].shape} / {state['precision'].shape}, expected ({d},) / ({d}, {d})"
            )


@registry.anomaly_detectors("spacy-modernbert.DocAndTokenKnnDetector.v1")
def doc_and_token_knn_detector(
    n_neighbors: int = 10,
    token_neighbors: int = 3,
    token_bank_size: int = 20000,
    memory_bank_size: int = 10000,
    top_k_tokens: int = 0,
    pooling: str = "mean",
) -> DocAndTokenKnnDetector:
    """The default: pooled-doc kNN plus token kNN, each standardized, summed."""
    return DocAndTokenKnnDetector(
        n_neighbors, token_neighbors, token_bank_size, memory_bank_size, top_k_tokens, pooling
    )


@registry.anomaly_detectors("spacy-modernbert.KnnDetector.v1")
def knn_detector(
    n_neighbors: int = 10, memory_bank_size: int = 10000, pooling: str = "mean"
) -> KnnDetector:
    """kNN on the length-robust pooled doc embedding ("idf": IDF-weighted pooling)."""
    return KnnDetector(n_neighbors, memory_bank_size, pooling)


@registry.anomaly_detectors("spacy-modernbert.TokenKnnDetector.v1")
def token_knn_detector(
    token_neighbors: int = 3,
    token_bank_size: int = 20000,
    memory_bank_size: int = 10000,
    top_k_tokens: int = 0,
) -> TokenKnnDetector:
    """kNN over each doc's token vectors, averaged per doc (or over its top_k_tokens most distant)."""
    return TokenKnnDetector(token_neighbors, token_bank_size, memory_bank_size, top_k_tokens)


@registry.anomaly_detectors("spacy-modernbert.MahalanobisDetector.v1")
def mahalanobis_detector(
    memory_bank_size: int = 10000, pooling: str = "mean"
) -> MahalanobisDetector:
    """Ledoit-Wolf Gaussian of the pooled doc embedding."""
    return MahalanobisDetector(memory_bank_size, pooling)


@registry.anomaly_detectors("spacy-modernbert.SvddDetector.v1")
def svdd_detector() -> SvddDetector:
    """The Deep-SVDD head, trained with the encoder (its statistics live in the component's cfg)."""
    return SvddDetector()


# Logits above this are compressed logarithmically before the sigmoid (`unit_scores`).
LOGIT_KNEE = 10.0


def unit_scores(state: Dict[str, Any], raw: Any, xp: Any = numpy) -> Any:
    """Raw scores -> [0, 1]: the sigmoid of `unit_logits`."""
    return sigmoid(xp, unit_logits(state, raw, xp))


def unit_logits(state: Dict[str, Any], raw: Any, xp: Any = numpy) -> Any:
    """Raw scores -> the logits of `unit_scores`: `(raw - location) / scale - 2`, compressed
    above LOGIT_KNEE (`knee + log1p(logit - knee)`).

    Why the knee: in float64 a sigmoid is exactly 1.0 above a logit of about 37, and a
    detector with a small scale (e.g. token_neighbors = 1) puts far docs at robust z-scores
    of hundreds: they all scored 1.0, tied, and lost their order (measured on CLINC150
    validation: ROC AUC 0.78 from the scores against 0.89 from the raw distances). Below
    the knee (scores up to 0.99995) nothing changes; above it the score stays strictly
    increasing in the raw score."""
    logit = (raw - float(state["location"])) / float(state["scale"]) - Z_AT_HALF
    over = xp.maximum(logit - LOGIT_KNEE, 0.0)
    return logit - over + xp.log1p(over)


def detector_config(name: str, **settings: Any) -> Dict[str, Any]:
    """The config block of the detector `name` (a short name of DETECTORS), keeping only the
    `settings` it has (e.g. n_neighbors is dropped for mahalanobis)."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}: use one of {tuple(DETECTORS)}")
    accepted = inspect.signature(registry.anomaly_detectors.get(DETECTORS[name])).parameters
    return {
        "@anomaly_detectors": DETECTORS[name],
        **{k: v for k, v in settings.items() if k in accepted},
    }


def make_detector(name: str, **settings: Any) -> Any:
    """The detector `name` (a short name of DETECTORS) with those of `settings` it has."""
    config = detector_config(name, **settings)
    return registry.anomaly_detectors.get(config.pop("@anomaly_detectors"))(**config)


def resolve_detector(mode: str, detector: Any, name: str) -> Any:
    """The detector of `mode`: None in supervised mode, the default one for null."""
    if mode == "supervised":
        if detector is not None:
            raise ValueError(
                f"anomaly_scorer '{name}': a detector applies to mode = \"one_class\" only; remove "
                f'[components.{name}.detector] or set mode = "one_class".'
            )
        return None
    if detector is None:
        return make_detector(DEFAULT_DETECTOR, **DEFAULT_DETECTOR_SETTINGS)
    if not isinstance(detector, (EmbeddingDetector, SvddDetector)):
        raise ValueError(
            f"anomaly_scorer '{name}': detector must be a function of the anomaly_detectors registry "
            f'(e.g. @anomaly_detectors = "{DETECTORS["knn"]}") returning an EmbeddingDetector, got {detector!r}'
        )
    return detector


# ---------------------------------------------------------------------------- serialization


def state_to_bytes(state: Optional[Dict[str, Any]]) -> bytes:
    """The fitted state as `.npz` bytes (empty bytes for no state)."""
    if not state:
        return b""
    buf = io.BytesIO()
    numpy.savez(buf, **{key: numpy.asarray(value) for key, value in state.items()})
    return buf.getvalue()


def state_from_bytes(
    data: bytes, detector: EmbeddingDetector, width: Optional[int] = None
) -> Optional[State]:
    """Load and validate (`detector.check_state`) a state written by `state_to_bytes` (no pickles)."""
    if not data:
        return None
    try:
        with numpy.load(io.BytesIO(data), allow_pickle=False) as npz:
            state = {key: numpy.array(npz[key]) for key in npz.files}
    except Exception as err:
        raise ValueError(
            f"the {detector.name} detector state is not a valid .npz file ({err}); re-save the pipeline"
        ) from None
    detector.check_state(state, width)
    return state
