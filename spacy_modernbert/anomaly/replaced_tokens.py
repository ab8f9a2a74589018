"""`spacy-modernbert.ReplacedTokensDetector.v1`: a doc is anomalous when its tokens look replaced.

Why (issue 32; ELECTRA, DATE): a replaced-token detector learns what an *original* token
of normal text looks like in its context; the tokens of an anomalous doc (spam among
ordinary messages, an out-of-scope request among in-scope ones) look like replacements.
DATE (Manolache et al., NAACL 2021) scores a doc by how many of its tokens look replaced.

The design (self-contained: no head from pretraining is needed, so the pipeline works with
any encoder; `pretrain --objective rtd` trains an encoder for the task, pretrain/rtd.py):
at fit time, each normal fit doc gets a corrupted copy (`corrupt_docs`: each token replaced
with probability `replace_rate` by a word drawn from the unigram distribution of the fit
docs' own words, seeded; a draw equal to the original counts as original). The encoder
(frozen: no gradient) encodes the copies, and an L2-regularized, class-balanced logistic
regression on their token vectors learns original (0) vs replaced (1) (`fit_head`, at most
MAX_FIT_TOKENS token rows, a seeded sample). The head is stored as arrays (`rtd_weights`,
`rtd_bias`) and checked at load like every detector's state.

A token's score is its replaced-logit `w . t + b`; a doc's raw score is the *mean* over its
tokens, or with `top_k_tokens = k > 0` the mean of its k highest, less the length trend of
the normal docs (as `token_knn`'s top-k, search.py). `detrend_length = true` removes that
trend from the mean too: the mean replaced-logit is not length-free (measured on SMS spam:
|Spearman(score, words)| 0.42 among normal test docs from an RTD-pretrained encoder,
BENCHMARKS.md), because a token's logit depends on where it sits in a short or long doc. A doc without tokens gets EMPTY_DOC_LOGIT (undecided). Raw scores map to [0, 1]
as every fitted detector's (`detectors.unit_logits`), from the normal fit docs' raw scores.
Explanations per token come for free (`token_raw_scores`).

Fitting needs the corrupted copies encoded by the same pipeline: `FittedDetector` builds and
annotates them (fitted.py; `corrupted_fit_features`); the benchmark encodes them itself.
"""

import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry

from . import search
from .detectors import SEED, EmbeddingDetector, _whole

# The default share of a fit doc's tokens replaced in its corrupted copy.
REPLACE_RATE = 0.15
# At most this many token rows of the corrupted copies fit the head (a seeded sample).
MAX_FIT_TOKENS = 50000
# The raw score of a doc without tokens: the replaced-logit of an undecided token.
EMPTY_DOC_LOGIT = 0.0
# The inverse L2 strength of the head (scikit-learn's C), fixed: not tuned on test.
C = 1.0
# Draws of a replacement word that differs from the original before giving up (label 0).
REDRAWS = 5


def corrupt_words(
    docs_words: Sequence[Sequence[str]], rate: float, seed: int
) -> Tuple[List[List[str]], List[numpy.ndarray]]:
    """Per doc, its words with each replaced with probability `rate` by a word drawn from the
    unigram distribution of all the docs' words (whitespace tokens are kept), and a 0/1 mask of
    the replaced positions. Seeded: the same input and seed give the same corruption."""
    vocab = [w for words in docs_words for w in words if w.strip()]
    rng = random.Random(seed)
    out, masks = [], []
    for words in docs_words:
        new, mask = list(words), numpy.zeros(len(words), dtype="float32")
        for i, word in enumerate(words):
            if not word.strip() or not vocab or rng.random() >= rate:
                continue
            for _ in range(REDRAWS):
                drawn = vocab[rng.randrange(len(vocab))]
                if drawn != word:
                    new[i], mask[i] = drawn, 1.0
                    break
        out.append(new)
        masks.append(mask)
    return out, masks


def corrupt_docs(
    docs: Sequence[Doc], rate: float, seed: int
) -> Tuple[List[Doc], List[numpy.ndarray]]:
    """New (unannotated) docs: `corrupt_words` of `docs`, each token keeping its whitespace."""
    words, masks = corrupt_words([[t.text for t in doc] for doc in docs], rate, seed)
    return [
        Doc(doc.vocab, words=w, spaces=[bool(t.whitespace_) for t in doc])
        for doc, w in zip(docs, words)
    ], masks


def fit_head(
    tokens: Sequence[numpy.ndarray], masks: Sequence[numpy.ndarray], seed: int
) -> Tuple[numpy.ndarray, float]:
    """(weights, bias) of a class-balanced L2 logistic regression, replaced (1) vs original (0),
    on the corrupted copies' token vectors; the features are standardized for the solver and
    the standardization folded into the weights (so a token's logit is `w . t + b`)."""
    from sklearn.linear_model import LogisticRegression  # a declared dependency; heavy

    T = numpy.concatenate([numpy.asarray(t, dtype="float64") for t in tokens])
    y = numpy.concatenate([numpy.asarray(m, dtype="float64") for m in masks])
    if len(y) > MAX_FIT_TOKENS:
        keep = search.subsample_indices(len(y), MAX_FIT_TOKENS, seed)
        T, y = T[keep], y[keep]
    if y.min() == y.max():
        raise ValueError(
            "the replaced_tokens detector needs corrupted copies with both replaced and original "
            f"tokens, got {int(y.sum())} replaced of {len(y)}: fit on more (or longer) normal docs, "
            "or set replace_rate between 0 and 1"
        )
    mean, std = T.mean(axis=0), T.std(axis=0)
    std[std < 1e-12] = 1.0
    reg = LogisticRegression(C=C, class_weight="balanced", max_iter=500)
    reg.fit((T - mean) / std, y)
    weights = reg.coef_[0] / std
    return weights, float(reg.intercept_[0] - (weights * mean).sum())


class ReplacedTokensDetector(EmbeddingDetector):
    """The mean (or top-k) replaced-logit of a doc's tokens, from a head fitted on corrupted
    copies of the normal docs."""

    name = "replaced_tokens"
    required = ("rtd_weights", "rtd_bias")
    vectors = "rtd_weights"
    needs_tokens = True
    needs_corrupted = True  # FittedDetector encodes corrupted copies of the fit docs

    def __init__(
        self,
        replace_rate: float = REPLACE_RATE,
        top_k_tokens: int = 0,
        memory_bank_size: int = 10000,
        detrend_length: bool = False,
    ):
        super().__init__(memory_bank_size)
        if (
            isinstance(replace_rate, bool)
            or not isinstance(replace_rate, (int, float))
            or not 0.0 < replace_rate < 1.0
        ):
            raise ValueError(
                "[components.anomaly_scorer.detector] replace_rate must be a number between 0 and 1 "
                f"(exclusive), the share of tokens replaced in the corrupted copies; got {replace_rate!r}"
            )
        self.replace_rate = float(replace_rate)
        self.top_k_tokens = _whole("top_k_tokens", top_k_tokens, 0)
        if not isinstance(detrend_length, bool):
            raise ValueError(
                "[components.anomaly_scorer.detector] detrend_length must be true or false, got "
                f"{detrend_length!r}"
            )
        self.detrend_length = detrend_length
        self._corrupted: Optional[Tuple[Sequence[numpy.ndarray], Sequence[numpy.ndarray]]] = None

    def corrupt(
        self, docs: Sequence[Doc], seed: int = SEED
    ) -> Tuple[List[Doc], List[numpy.ndarray]]:
        """Corrupted copies of the fit docs (to be encoded) and their replaced-token masks."""
        return corrupt_docs(docs, self.replace_rate, seed)

    def fit(
        self,
        X: numpy.ndarray,
        tokens: Optional[Sequence[numpy.ndarray]] = None,
        seed: int = SEED,
        outliers: Optional[Tuple[numpy.ndarray, Optional[Sequence[numpy.ndarray]]]] = None,
        corrupted: Optional[Tuple[Sequence[numpy.ndarray], Sequence[numpy.ndarray]]] = None,
    ) -> Dict[str, numpy.ndarray]:
        """`EmbeddingDetector.fit`, with `corrupted` = (the token vectors of the corrupted
        copies of the fit docs, their 0/1 replaced masks): `corrupt`, then the encoder."""
        if corrupted is None:
            raise ValueError(
                "the replaced_tokens detector is fitted on corrupted copies of the normal docs, "
                "encoded by the pipeline: fit it through the component (nlp.initialize, or "
                "fit_detector on a pipeline initialized in this process), not on stored vectors alone"
            )
        c_tokens, c_masks = corrupted
        if len(c_tokens) != len(c_masks) or any(
            len(t) != len(m) for t, m in zip(c_tokens, c_masks)
        ):
            raise ValueError(
                "the replaced_tokens detector got corrupted copies whose token vectors and masks "
                "differ in number (a tokenizer that split the corrupted text differently?)"
            )
        self._corrupted = corrupted
        try:
            return super().fit(X, tokens, seed, outliers)
        finally:
            self._corrupted = None

    def fit_raw(self, X, tokens, seed):
        if tokens is None or len(tokens) != len(X):
            raise ValueError(f"the {self.name} detector needs the token vectors of each document")
        c_tokens, c_masks = self._corrupted
        if not all(numpy.isfinite(numpy.asarray(t)).all() for t in c_tokens):
            raise ValueError(
                f"the {self.name} detector got non-finite token vectors: the encoder's output is not finite"
            )
        weights, bias = fit_head(c_tokens, c_masks, seed)
        state = {"rtd_weights": weights, "rtd_bias": numpy.asarray(bias)}
        lengths = [len(t) for t in tokens]
        fit = search.mean_token_distances(self.token_logits(state, tokens), self.top_k_tokens)
        fit = numpy.where(numpy.asarray(lengths) > 0, fit, EMPTY_DOC_LOGIT)
        if self.top_k_tokens > 0:
            state["top_k_tokens"] = numpy.asarray(self.top_k_tokens)
        if self.top_k_tokens > 0 or self.detrend_length:
            state["length_slope"] = numpy.asarray(search.length_trend(fit, lengths))
            fit = search.detrended(state, fit, lengths)
        return state, fit

    def token_logits(self, state: Dict[str, Any], tokens: Sequence[Any], xp: Any = numpy):
        """Per doc, each token's replaced-logit `w . t + b` (float64 numpy arrays)."""
        w = xp.asarray(state["rtd_weights"], dtype="float64")
        b = float(state["rtd_bias"])
        to_numpy = getattr(xp, "asnumpy", numpy.asarray)
        return [
            numpy.asarray(to_numpy(xp.asarray(t, dtype="float64").reshape(-1, len(w)) @ w) + b)
            for t in tokens
        ]

    def raw_scores(self, state, X, tokens=None, xp=numpy):
        return self.token_raw_scores(state, X, tokens, xp)[0]

    def token_raw_scores(self, state, X, tokens, xp=numpy):
        """(raw doc scores, per doc each token's replaced-logit) from one pass (explain.py
        reads the per-token logits)."""
        if tokens is None or len(tokens) != len(X):
            raise ValueError(f"the {self.name} detector needs the token vectors of each document")
        per_token = self.token_logits(state, tokens, xp)
        top_k = int(state.get("top_k_tokens", 0))
        lengths = [len(t) for t in per_token]
        raw = search.mean_token_distances(per_token, top_k)
        raw = numpy.where(numpy.asarray(lengths) > 0, raw, EMPTY_DOC_LOGIT)
        raw = search.detrended(state, raw, lengths)  # a no-op without length_slope
        return xp.asarray(raw), per_token

    def check_state(self, state, width=None):
        super().check_state(state, width)
        if state["rtd_weights"].ndim != 1 or state["rtd_bias"].ndim != 0:
            raise ValueError(
                f"the {self.name} detector state has rtd_weights of shape "
                f"{state['rtd_weights'].shape} and rtd_bias of shape {state['rtd_bias'].shape}, "
                "expected (width,) and ()"
            )
        if "top_k_tokens" in state and (
            state["top_k_tokens"].ndim != 0 or int(state["top_k_tokens"]) < 1
        ):
            raise ValueError(f"the {self.name} detector state has top_k_tokens < 1")


def corrupted_fit_features(
    detector: Any, docs: List[Doc], annotate: Any, features: Any, owner: str
) -> Optional[Tuple[List[numpy.ndarray], List[numpy.ndarray]]]:
    """The token vectors and replaced masks of corrupted copies of `docs` (the kept fit docs)
    for a detector that `needs_corrupted`, else None. `annotate(docs)` runs the pipeline's
    upstream components (None: this process did not initialize the pipeline: refused);
    `features(docs)` gives (pooled, token vectors)."""
    if not getattr(detector, "needs_corrupted", False):
        return None
    if annotate is None:
        raise ValueError(
            f"anomaly_scorer '{owner}': the {detector.name} detector encodes corrupted copies of "
            "the normal docs when it is fitted, which needs the pipeline that initialized it: "
            "call nlp.initialize (or fit_detector after initializing in this process)"
        )
    corrupted, masks = detector.corrupt(docs)
    _, tokens = features(annotate(corrupted))
    return tokens, masks


@registry.anomaly_detectors("spacy-modernbert.ReplacedTokensDetector.v1")
def replaced_tokens_detector(
    replace_rate: float = REPLACE_RATE,
    top_k_tokens: int = 0,
    memory_bank_size: int = 10000,
    detrend_length: bool = False,
) -> ReplacedTokensDetector:
    """The mean (or top-k) replaced-token logit of a doc's tokens (a head fitted on corrupted
    copies of the normal docs; DATE-style)."""
    return ReplacedTokensDetector(replace_rate, top_k_tokens, memory_bank_size, detrend_length)
