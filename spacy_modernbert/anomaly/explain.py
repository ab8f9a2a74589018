"""Explanations of `anomaly_scorer`: which passages of a doc made it anomalous.

Outputs, when the component's `explain` setting is true (or through its `explain(docs)`):
`token._.anomaly_score` (in [0, 1]) for every token (a getter of the doc's array
`doc._.anomaly_token_scores`), and the span group `doc.spans["anomaly"]`
of the `explain_spans` highest-scoring passages (label DEFAULT_LABEL, their scores in
`doc.spans["anomaly"].attrs["scores"]`), which displaCy's span view renders.

Passages (`segments`, setting `explain_passages`): "sentences": the doc's sentences where it
has them, else the runs ending at a line break or sentence-final punctuation; "lines": the
doc's lines (a line break ends a passage: a message, a list item, a paragraph) where it has
more than one, else its sentences as above; null: the unit chosen with the method (AUTO).
`explain_method`:
* "tokens" (token detectors: token_knn, doc_and_token_knn): each token's own distance to its
  nearest normal tokens, the number the detector averages into the doc score; a passage
  scores the mean of its tokens. The same search as plain scoring: nearly free.
* "occlusion" (every detector but svdd, which NOT_EXPLAINED refuses, and the supervised head):
  a passage scores how much the doc's score drops without it, the doc re-pooled from the
  token vectors of the rest (the drop of the score's logit d, as tanh(d / 2) in [0, 1]: no
  ties when a score saturates).
* "alone": a passage scores as a doc of its own tokens only.
* "decompose" (pooled-vector detectors: knn, mahalanobis, with mean or IDF pooling): the
  detector's raw score split exactly into one term per token (decomposition.py: the pooled
  vector is a weighted sum of token vectors, and the score is linear (knn, given the doc's
  neighbours) or quadratic (mahalanobis) in it); a token's value is its term times the doc's
  number of tokens, a passage's the mean of its tokens' (the raw score the doc would have if
  every token weighed like the passage's), through the detector's own map to [0, 1]; the doc's
  raw score is the mean of its tokens' values, as a token detector's is. One pass: no extra
  rows. "decompose_projected": the same with the score's constant shared among the tokens by
  their projection on the doc direction instead of their pooling weight (decomposition.py:
  both exact, they rank passages differently). "decompose_calibrated": the terms of the
  "linear" split (only the score's part linear in the doc direction split per token, the
  rest shared by pooling weight; for knn the same terms as "decompose"), and a passage valued
  by its quantile among the passages of the normal fit docs of about its length, instead of
  on the detector's doc scale (passage_calibration.py: the reference is fitted and saved with
  the detector; a state fitted without it is refused with a message to re-fit).
* "auto" (the default): per detector, the method chosen on the dev pointing docs of
  `python -m benchmarks explain` (AUTO below; "tokens" / "occlusion" for a detector it has no
  choice for).
Passages are ranked by `value x n_tokens ** explain_length_weight` (the stored span score is the
value itself, in [0, 1]): weight 0 ranks by the value, 0.5 and 1 favour longer passages (a
token detector's passage value is a mean: with 1 its rank is the sum of its token scores).
null: the weight chosen with the method (AUTO).
Occlusion and "alone" re-pool the token vectors the encoder already computed for the whole
doc: no extra encoder pass, one more detector/head row per passage (with the encoder's
`sentence_windows`, as the shipped configs set it, each sentence and line is encoded alone:
a passage's vectors are those of the passage by itself). A token detector's rows need no
token search of their own: a token's distance to the normal tokens does not depend on the
other tokens, so a row's score comes from the distances of its tokens, of the one search. Why not gradient x input: the fitted detectors have no gradient, and a second
backward pass would cost more than scoring.

Invariants: with `explain` off, scoring runs no code from here; the explanation of a doc is
the same alone or in a batch, and after a save and load. Numpy/thinc only (no torch).
"""

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span, SpanGroup, Token

from . import DEFAULT_LABEL, idf_pooling, outlier_exposure, passage_calibration
from .detectors import unit_scores
from .logistic import sigmoid
from .model import doc_features

SPAN_KEY = "anomaly"
SPAN_LABEL = DEFAULT_LABEL
EXPLAIN_METHODS = (
    "auto",
    "tokens",
    "occlusion",
    "alone",
    "decompose",
    "decompose_projected",
    "decompose_calibrated",
)
# The decomposition methods and how each shares the score's constant among the tokens
# (decomposition.SPLITS: by pooling weight, by each token's projection on the doc direction,
# or only the score's part linear in the doc direction per token).
DECOMPOSE_SPLITS = {
    "decompose": "weights",
    "decompose_projected": "projection",
    "decompose_calibrated": passage_calibration.SPLIT,
}
# The component's explanation settings and their defaults.
EXPLAIN_SETTINGS: Dict[str, Any] = {
    "explain": False,
    "explain_spans": 1,
    "explain_method": "auto",
    "explain_length_weight": None,
    "explain_passages": None,
}
# The passage units of `explain_passages` (segments).
PASSAGE_UNITS = ("sentences", "lines")
# The passage-length weights the benchmark chooses from (explain_length_weight accepts any
# number in [LENGTH_WEIGHT_MIN, LENGTH_WEIGHT_MAX]).
LENGTH_WEIGHTS = (-0.5, 0.0, 0.25, 0.5, 1.0)
LENGTH_WEIGHT_MIN, LENGTH_WEIGHT_MAX = -2.0, 2.0
# "auto", per detector name ("NAME_idf": the detector with pooling = "idf"; None: the
# supervised head): the method, and each method's length
# weight and passage unit ("passages"; absent: "sentences"), chosen on the dev pointing docs of `python -m benchmarks explain` (both tasks, all
# seeds; benchmarks/results/explain.json "auto"; tests/benchmark checks they agree).
AUTO: Dict[Optional[str], Dict[str, Any]] = {
    "doc_and_token_knn": {
        "method": "tokens",
        "weights": {"tokens": 0.5, "occlusion": 1.0, "alone": 0.0},
        "passages": {"tokens": "lines", "occlusion": "lines", "alone": "sentences"},
    },
    "token_knn": {
        "method": "occlusion",
        "weights": {"tokens": 0.5, "occlusion": 0.25, "alone": 0.5},
        "passages": {"tokens": "lines", "occlusion": "lines", "alone": "lines"},
    },
    "knn": {
        "method": "decompose_calibrated",
        "weights": {
            "occlusion": 0.25,
            "alone": 0.0,
            "decompose": 0.0,
            "decompose_projected": 0.25,
            "decompose_calibrated": 0.25,
        },
        "passages": {
            "occlusion": "lines",
            "alone": "sentences",
            "decompose": "sentences",
            "decompose_projected": "lines",
            "decompose_calibrated": "lines",
        },
    },
    "mahalanobis": {
        "method": "decompose_calibrated",
        "weights": {
            "occlusion": 0.5,
            "alone": 0.0,
            "decompose": 0.0,
            "decompose_projected": 0.0,
            "decompose_calibrated": 0.25,
        },
        "passages": {
            "occlusion": "sentences",
            "alone": "sentences",
            "decompose": "sentences",
            "decompose_projected": "sentences",
            "decompose_calibrated": "lines",
        },
    },
    "knn_idf": {
        "method": "decompose_projected",
        "weights": {
            "occlusion": 0.25,
            "alone": 0.0,
            "decompose": 0.25,
            "decompose_projected": 0.25,
            "decompose_calibrated": 0.0,
        },
        "passages": {
            "occlusion": "sentences",
            "alone": "sentences",
            "decompose": "lines",
            "decompose_projected": "lines",
            "decompose_calibrated": "sentences",
        },
    },
    "mahalanobis_idf": {
        "method": "decompose_calibrated",
        "weights": {
            "occlusion": -0.5,
            "alone": 0.0,
            "decompose": 0.0,
            "decompose_projected": 0.0,
            "decompose_calibrated": 0.0,
        },
        "passages": {
            "occlusion": "sentences",
            "alone": "sentences",
            "decompose": "sentences",
            "decompose_projected": "sentences",
            "decompose_calibrated": "sentences",
        },
    },
    None: {
        "method": "alone",
        "weights": {"occlusion": -0.5, "alone": 0.0},
        "passages": {"occlusion": "lines", "alone": "sentences"},
    },
}
# A passage longer than this (tokens) is cut into windows of this size.
MAX_SEGMENT_TOKENS = 64
SENTENCE_END = frozenset({".", "!", "?", "..."})
# The Doc extension holding every token's score (float64 array), read by token._.anomaly_score.
TOKEN_SCORES = "anomaly_token_scores"


@dataclass
class Explanation:
    """One doc's explanation: a score per token, the passages kept (start, end, score) best
    first, and every passage (start, end, score) in doc order."""

    token_scores: numpy.ndarray
    spans: List[Tuple[int, int, float]]
    passages: List[Tuple[int, int, float]]


def register_token_extension() -> None:
    """Register `token._.anomaly_score`, read from the doc's `doc._.anomaly_token_scores`
    array (one assignment per doc, not one per token); idempotent, never forced."""
    if not Doc.has_extension(TOKEN_SCORES):
        Doc.set_extension(TOKEN_SCORES, default=None)
    if not Token.has_extension("anomaly_score"):
        Token.set_extension("anomaly_score", getter=token_score)


def token_score(token: Token) -> Optional[float]:
    """`token._.anomaly_score`: the token's explanation score, None where the doc has none."""
    scores = token.doc._.get(TOKEN_SCORES)
    return None if scores is None or token.i >= len(scores) else float(scores[token.i])


def check_settings(settings: Dict[str, Any], name: str) -> Dict[str, Any]:
    """The explanation settings, checked (a refusal names the setting and its values)."""
    if not isinstance(settings["explain"], bool):
        raise ValueError(
            f"anomaly_scorer '{name}': explain must be true or false, got {settings['explain']!r}"
        )
    n = settings["explain_spans"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(
            f"anomaly_scorer '{name}': explain_spans (the passages kept in doc.spans[{SPAN_KEY!r}]) "
            f"must be an integer >= 1, got {n!r}"
        )
    if settings["explain_method"] not in EXPLAIN_METHODS:
        raise ValueError(
            f"anomaly_scorer '{name}': explain_method must be one of {EXPLAIN_METHODS}, got "
            f"{settings['explain_method']!r}"
        )
    weight = settings.get("explain_length_weight")
    if weight is not None and (
        isinstance(weight, bool)
        or not isinstance(weight, (int, float))
        or not LENGTH_WEIGHT_MIN <= weight <= LENGTH_WEIGHT_MAX
    ):
        raise ValueError(
            f"anomaly_scorer '{name}': explain_length_weight (passages rank by value x "
            f"n_tokens ** weight) must be null or a number in [{LENGTH_WEIGHT_MIN}, "
            f"{LENGTH_WEIGHT_MAX}], got {weight!r}"
        )
    passages = settings.get("explain_passages")
    if passages is not None and passages not in PASSAGE_UNITS:
        raise ValueError(
            f"anomaly_scorer '{name}': explain_passages must be null or one of {PASSAGE_UNITS}, "
            f"got {passages!r}"
        )
    return {key: settings.get(key, EXPLAIN_SETTINGS[key]) for key in EXPLAIN_SETTINGS}


def auto_key(detector: Any) -> Optional[str]:
    """The key of `detector` in AUTO: None for the supervised head, the detector's name, and
    "NAME_idf" for a detector with pooling = "idf" where AUTO has an entry for it (the
    decomposition of an IDF-pooled vector differs from a mean-pooled one)."""
    if detector is None:
        return None
    name = getattr(detector, "name", "")
    if getattr(detector, "pooling", "mean") == "idf" and f"{name}_idf" in AUTO:
        return f"{name}_idf"
    return name


def auto_choice(detector: Any) -> Dict[str, Any]:
    """AUTO's entry for `detector` (None: the supervised head; auto_key); a detector AUTO
    does not name: "tokens" if it has token scores, else "occlusion", weight 0."""
    key = auto_key(detector)
    if key in AUTO:
        return AUTO[key]
    method = "tokens" if hasattr(detector, "token_raw_scores") else "occlusion"
    return {"method": method, "weights": {}}


# Detectors the component offers no explanation for, and the measured reason: an explanation
# that misses the anomalous passage on the docs that choose (`python -m benchmarks explain
# --systems svdd`, results/explain_svdd.json) is refused, not offered.
NOT_EXPLAINED = {
    "svdd": (
        "the Deep-SVDD head (detector = svdd, kept so that pipelines saved before the fitted "
        "detectors load): its explanations find an inserted spam message no better than a "
        "random passage does (0.25 of the benchmark's SMS docs, random 0.27; BENCHMARKS.md, "
        "explain_svdd)"
    )
}


def refusal(detector: Any, name: str) -> Optional[str]:
    """Why anomaly_scorer `name` with `detector` (None: the supervised head) offers no
    explanation, naming the fix; None if it explains."""
    why = NOT_EXPLAINED.get(getattr(detector, "name", None))
    if why is None:
        return None
    return (
        f"anomaly_scorer '{name}': explanations are not offered for {why}. Turn explain off "
        '(explain = false; no --explain; no "explain": true), or use a detector that explains: '
        'mode = "one_class" with detector doc_and_token_knn (the default), token_knn, knn or '
        'mahalanobis, or mode = "supervised".'
    )


def check_explainable(detector: Any, name: str) -> None:
    """Raise `refusal`'s message (a ValueError) if the detector offers no explanation."""
    why = refusal(detector, name)
    if why is not None:
        raise ValueError(why)


def resolve(settings: Dict[str, Any], detector: Any, name: str) -> Tuple[str, float, str]:
    """(method, length weight, passage unit) of the explanation settings for `detector`
    ("auto", a null weight and null passages resolved through AUTO)."""
    method = resolve_method(settings["explain_method"], detector, name)
    choice = auto_choice(detector)
    weight = settings.get("explain_length_weight")
    if weight is None:
        weight = choice["weights"].get(method, 0.0)
    passages = settings.get("explain_passages")
    if passages is None:
        passages = choice.get("passages", {}).get(method, "sentences")
    return method, float(weight), passages


def resolve_method(method: str, detector: Any, name: str) -> str:
    """The method "auto" stands for; "tokens" is refused for a detector without token scores."""
    has_tokens = hasattr(detector, "token_raw_scores")
    if method == "auto":
        return auto_choice(detector)["method"]
    if method in DECOMPOSE_SPLITS and not hasattr(detector, "raw_terms"):
        detector_name = getattr(detector, "name", None) or "the supervised head"
        raise ValueError(
            f"anomaly_scorer '{name}': explain_method = \"{method}\" needs a detector that "
            f"scores one pooled vector (knn or mahalanobis), not {detector_name}; use "
            f'"occlusion" or "auto".'
        )
    if method == "tokens" and not has_tokens:
        detector_name = getattr(detector, "name", None) or "the supervised head"
        raise ValueError(
            f"anomaly_scorer '{name}': explain_method = \"tokens\" needs a token detector "
            f'(token_knn or doc_and_token_knn), not {detector_name}; use "occlusion" or "auto".'
        )
    return method


def segments(doc: Doc, passages: str = "sentences") -> List[Tuple[int, int]]:
    """The passages of `doc` as token ranges. "sentences": its sentences if set, else the runs
    ending at a line break or sentence-final punctuation; "lines": its lines (runs ending at a
    line break) if it has more than one, else as "sentences". Runs over MAX_SEGMENT_TOKENS
    are cut into windows."""
    if not len(doc):
        return []
    runs = _runs(doc, sentences=False) if passages == "lines" else []
    if len(runs) < 2:
        if doc.has_annotation("SENT_START"):
            runs = [(sent.start, sent.end) for sent in doc.sents]
        else:
            runs = _runs(doc, sentences=True)
    out = []
    for start, end in runs:
        out.extend(
            (s, min(s + MAX_SEGMENT_TOKENS, end)) for s in range(start, end, MAX_SEGMENT_TOKENS)
        )
    return out


def _runs(doc: Doc, sentences: bool) -> List[Tuple[int, int]]:
    """The runs of tokens ending at a line break (and, `sentences`, at sentence-final
    punctuation), whitespace-only runs joined to a neighbour."""
    runs, start = [], 0
    for token in doc:
        end_here = "\n" in token.text or "\n" in token.whitespace_
        if sentences and token.text in SENTENCE_END:
            nxt = doc[token.i + 1] if token.i + 1 < len(doc) else None
            end_here = end_here or nxt is None or nxt.text not in SENTENCE_END
        if end_here:
            runs.append((start, token.i + 1))
            start = token.i + 1
    if start < len(doc):
        runs.append((start, len(doc)))
    return _merge_blank(doc, runs)


def _merge_blank(doc: Doc, runs: List[Tuple[int, int]]) -> List[Tuple[int, int]]:
    """Runs of whitespace tokens only join the run before them (or after, at the start)."""
    merged: List[Tuple[int, int]] = []
    for start, end in runs:
        blank = all(t.is_space for t in doc[start:end])
        if blank and merged:
            merged[-1] = (merged[-1][0], end)
        elif merged and all(t.is_space for t in doc[merged[-1][0] : merged[-1][1]]):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def pool(X: numpy.ndarray, pooling: str) -> numpy.ndarray:
    """The pooled vector of token vectors `X` (zeros for no token), as the head pools them."""
    if not len(X):
        return numpy.zeros((X.shape[1],), dtype="float32")
    return X.max(axis=0) if pooling == "max" else X.mean(axis=0)


def explain_docs(component: Any, docs: List[Doc]) -> Tuple[Any, List[Explanation]]:
    """The scores of `docs` (as `component.predict` gives them) and their explanations, from
    one encoder pass. `docs` were processed by the components upstream of `component`. The
    component checks `check_explainable` before it calls this; the benchmark calls it
    directly, so it still measures what a refused detector would give."""
    model = component.model
    ops = model.ops
    fitted = component._fitted
    method, weight, passages = resolve(
        component.explain_settings, fitted and fitted.detector, component.name
    )
    # a fitted detector's own features (IDF-pooled under its pooling = "idf")
    pooled, tokens = fitted.features(docs, True) if fitted else doc_features(model, docs, True)
    token_arrays = [numpy.asarray(ops.to_numpy(t), dtype="float32") for t in tokens]
    n_spans = int(component.explain_settings["explain_spans"])
    if method in DECOMPOSE_SPLITS:
        return _decomposed(component, docs, pooled, token_arrays, n_spans, weight, passages, method)
    if method == "tokens":
        state = fitted.ready_state()
        raw, per_token = fitted.detector.token_raw_scores(state, pooled, tokens, ops.xp)
        # the doc's score as predict gives it, from the same token search
        scores = sigmoid(ops.xp, fitted.detector.logits_of_raw(state, pooled, raw, ops.xp))
        token_stats = outlier_exposure.base_statistics(state)  # the detector's own scale
        return scores, [
            from_token_scores(doc, unit_scores(token_stats, t), n_spans, weight, passages)
            for doc, t in zip(docs, per_token)
        ]
    if fitted is not None and hasattr(fitted.detector, "raw_of_distances"):
        # a token detector: every row from its tokens' distances, of one token search
        logit_rows, row_values = _distance_row_logits(component, pooled, tokens)
    else:
        logit_rows, row_values = _row_logits(component), token_arrays
    logits = logit_rows(ops.to_numpy(pooled), row_values)
    pooling = model.attrs.get("pooling", "mean")
    weights = fitted.token_weights(docs) if fitted else None
    explanations = passage_explanations(
        docs,
        token_arrays,
        logits,
        logit_rows,
        pooling,
        method,
        n_spans,
        weight,
        row_values,
        passages,
        weights,
    )
    return ops.xp.asarray(sigmoid(numpy, logits)), explanations


def _decomposed(
    component: Any,
    docs: Sequence[Doc],
    pooled: Any,
    token_arrays: Sequence[numpy.ndarray],
    n_spans: int,
    weight: float,
    passages: str,
    method: str = "decompose",
) -> Tuple[Any, List[Explanation]]:
    """The scores (as predict gives them) and decomposition explanations (`method`, one of
    DECOMPOSE_SPLITS): each token's term of
    the raw score (decomposition.py); a token valued by its term x the doc's tokens, a
    passage by the mean of its tokens' values."""
    model, fitted = component.model, component._fitted
    pooling = model.attrs.get("pooling", "mean")
    if pooling != "mean":
        raise ValueError(
            f"anomaly_scorer '{component.name}': explain_method = \"{method}\" needs a doc "
            f'vector that is a weighted sum of token vectors (pooling "mean", or the detector\'s '
            f'pooling = "idf"), not the model\'s pooling = "{pooling}"; use "occlusion".'
        )
    ops, xp = model.ops, model.ops.xp
    state = fitted.ready_state()
    scores = fitted.detector.scores(state, pooled, None, xp)
    X = numpy.asarray(ops.to_numpy(pooled), dtype="float64")
    weights = fitted.token_weights(docs)
    split = DECOMPOSE_SPLITS[method]
    terms = fitted.detector.raw_terms(fitted.state, X, token_arrays, weights, split)
    stats = outlier_exposure.base_statistics(fitted.state)  # the detector's own scale
    out = []
    calibrated = method == "decompose_calibrated"
    if calibrated and not passage_calibration.has_reference(fitted.state, passages):
        raise ValueError(
            f"anomaly_scorer '{component.name}': explain_method = \"{method}\" needs the passage "
            f"reference fitted with the detector (passage_calibration.py), and this detector's "
            f"state has none (fitted by an older version): re-fit it (nlp.initialize, or "
            f"nlp.get_pipe('{component.name}').fit_detector(docs)) and save again, or use "
            f'"decompose".'
        )
    per_doc = [segments(doc, passages) if len(t) == len(doc) else [] for doc, t in zip(docs, terms)]
    raw = [passage_calibration.passage_values(t, segs) for t, segs in zip(terms, per_doc)]
    if calibrated:  # the whole batch's passages in one lookup
        flat = passage_calibration.quantiles(
            fitted.state,
            passages,
            [e - s for segs in per_doc for s, e in segs],
            numpy.concatenate(raw) if raw else numpy.zeros(0),
        )
        at = numpy.cumsum([0] + [len(segs) for segs in per_doc])
        values_of = [flat[at[i] : at[i + 1]] for i in range(len(per_doc))]
    else:
        values_of = [unit_scores(stats, r) for r in raw]
    for doc, t, segs, values in zip(docs, terms, per_doc, values_of):
        if len(t) != len(doc):  # a doc without tokens
            out.append(Explanation(numpy.zeros(len(doc)), [], []))
            continue
        out.append(explanation(unit_scores(stats, len(t) * t), segs, values, n_spans, weight))
    return scores, out


def _row_logits(component: Any) -> Callable[[numpy.ndarray, List[numpy.ndarray]], numpy.ndarray]:
    """A function: (pooled rows, their token vectors) -> the logits of the scores (float64
    numpy; the score is their sigmoid), as the component scores a doc with those vectors."""
    model, fitted = component.model, component._fitted
    xp = model.ops.xp
    if fitted is not None:
        state = fitted.ready_state()
        needs_tokens = fitted.detector.needs_tokens

        def fitted_rows(rows, tokens):
            toks = [xp.asarray(t) for t in tokens] if needs_tokens else None
            logits = fitted.detector.logits(state, xp.asarray(rows), toks, xp)
            return numpy.asarray(model.ops.to_numpy(logits), dtype="float64")

        return fitted_rows
    output_layer = model.get_ref("output_layer")

    def head_rows(rows, tokens):
        raw = output_layer.predict(model.ops.asarray2f(rows))
        return numpy.asarray(model.ops.to_numpy(component._raw_to_logits(raw)), dtype="float64")

    return head_rows


def _distance_row_logits(
    component: Any, pooled: Any, tokens: Sequence[Any]
) -> Tuple[Callable[[numpy.ndarray, List[numpy.ndarray]], numpy.ndarray], List[numpy.ndarray]]:
    """A token detector's row function (pooled rows, their tokens' distances) -> logits, and
    the distances of the tokens of the docs (`pooled`, `tokens`): one token search, as the
    detector scores them; a row of some of a doc's tokens needs no search of its own (the
    same numbers: a token's distance to the bank does not depend on the other tokens)."""
    model, fitted = component.model, component._fitted
    xp = model.ops.xp
    state, detector = fitted.ready_state(), fitted.detector
    distances = detector.token_distances(state, pooled, tokens, xp)

    def distance_rows(rows, row_distances):
        X = xp.asarray(rows)
        raw = detector.raw_of_distances(state, X, list(row_distances), xp)
        logits = detector.logits_of_raw(state, X, raw, xp)
        return numpy.asarray(model.ops.to_numpy(logits), dtype="float64")

    return distance_rows, distances


def passage_explanations(
    docs: Sequence[Doc],
    tokens: Sequence[numpy.ndarray],
    logits: numpy.ndarray,
    logit_rows: Callable[[numpy.ndarray, List[numpy.ndarray]], numpy.ndarray],
    pooling: str,
    method: str,
    n_spans: int,
    weight: float = 0.0,
    row_values: Optional[Sequence[numpy.ndarray]] = None,
    passages: str = "sentences",
    token_weights: Optional[Sequence[numpy.ndarray]] = None,
) -> List[Explanation]:
    """Occlusion ("occlusion") or passage-alone ("alone") explanations of a batch: all
    passages of all docs scored in one call of `logit_rows` (with the pooled row, the rows
    of `row_values` (default: `tokens`) of the tokens kept: the token vectors, or a token
    detector's token distances). `logits`: the docs' score logits. `token_weights` (per
    doc, per token): re-pool with IDF weights (idf_pooling.py), as a detector with
    pooling = "idf" pools a doc.

    "alone": a passage's value is its score as a doc. "occlusion": `tanh(d / 2)` of the drop
    `d` of the score's logit without the passage (0 if it rises), i.e. `2 sigmoid(d) - 1`:
    in [0, 1] and monotone in `d`. The drop in the score itself would tie every passage of a
    doc whose score saturates at 1.0 (a confident head), pointing at the first passage."""
    rows: List[numpy.ndarray] = []
    row_tokens: List[numpy.ndarray] = []
    per_doc: List[List[Tuple[int, int]]] = []
    for i, (doc, X, V) in enumerate(
        zip(docs, tokens, tokens if row_values is None else row_values)
    ):
        segs = segments(doc, passages) if len(X) == len(doc) else []
        per_doc.append(segs)
        for start, end in segs:
            keep = numpy.zeros(len(X), dtype=bool)
            keep[start:end] = True
            if method == "occlusion":
                keep = ~keep
            rows.append(
                pool(X[keep], pooling)
                if token_weights is None
                else idf_pooling.pool_tokens(X[keep], token_weights[i][keep])
            )
            row_tokens.append(V[keep])
    row_logits = logit_rows(numpy.stack(rows), row_tokens) if rows else numpy.zeros(0)
    out, at = [], 0
    for doc, segs, logit in zip(docs, per_doc, logits):
        values = numpy.asarray(row_logits[at : at + len(segs)], dtype="float64")
        at += len(segs)
        if method == "alone":
            values = sigmoid(numpy, values)
        elif len(segs) > 1:
            values = numpy.tanh(numpy.maximum(float(logit) - values, 0.0) / 2.0)
        else:  # the only passage: the doc's own score
            values = sigmoid(numpy, numpy.full(len(segs), float(logit)))
        token_scores = numpy.zeros(len(doc), dtype="float64")
        for (start, end), value in zip(segs, values):
            token_scores[start:end] = value
        out.append(explanation(token_scores, segs, values, n_spans, weight))
    return out


def from_token_scores(
    doc: Doc, token_scores: Any, n_spans: int, weight: float = 0.0, passages: str = "sentences"
) -> Explanation:
    """A token-level explanation: each passage scores the mean of its tokens' scores."""
    token_scores = numpy.asarray(token_scores, dtype="float64").reshape(-1)
    if len(token_scores) != len(doc):  # a doc without tokens
        return Explanation(numpy.zeros(len(doc)), [], [])
    segs = segments(doc, passages)
    values = numpy.asarray([token_scores[s:e].mean() for s, e in segs])
    return explanation(token_scores, segs, values, n_spans, weight)


def explanation(
    token_scores: numpy.ndarray,
    segs: Sequence[Tuple[int, int]],
    values: numpy.ndarray,
    n_spans: int,
    weight: float,
) -> Explanation:
    passages = [(s, e, float(v)) for (s, e), v in zip(segs, values)]
    return Explanation(token_scores, top_spans(passages, n_spans, weight), passages)


def top_spans(
    passages: Sequence[Tuple[int, int, float]], n_spans: int, weight: float = 0.0
) -> List[Tuple[int, int, float]]:
    """The `n_spans` best passages, best first by value x n_tokens ** weight (ties: the
    earlier passage)."""

    def rank(i: int) -> Tuple[float, int]:
        start, end, value = passages[i]
        return (-value * float(max(end - start, 1)) ** weight, i)

    return [passages[i] for i in sorted(range(len(passages)), key=rank)[:n_spans]]


def annotate(doc: Doc, explanation: Explanation) -> None:
    """Set `token._.anomaly_score` (through `doc._.anomaly_token_scores`) and
    `doc.spans["anomaly"]` (scores in its attrs)."""
    doc._.set(TOKEN_SCORES, numpy.asarray(explanation.token_scores, dtype="float64"))
    doc.spans[SPAN_KEY] = SpanGroup(
        doc,
        name=SPAN_KEY,
        spans=[
            Span(doc, *_trimmed(doc, start, end), label=SPAN_LABEL)
            for start, end, _ in explanation.spans
        ],
        attrs={"scores": [score for _, _, score in explanation.spans]},
    )


def _trimmed(doc: Doc, start: int, end: int) -> Tuple[int, int]:
    """The token range without its leading and trailing whitespace tokens (if any is left)."""
    s, e = start, end
    while s < e and doc[s].is_space:
        s += 1
    while e > s and doc[e - 1].is_space:
        e -= 1
    return (s, e) if s < e else (start, end)


def span_records(doc: Doc) -> List[Dict[str, Any]]:
    """`doc.spans["anomaly"]` as plain records (start/end chars, text, score), best first."""
    if SPAN_KEY not in doc.spans:
        return []
    group = doc.spans[SPAN_KEY]
    scores = list(group.attrs.get("scores", [None] * len(group)))
    return [
        {"start": span.start_char, "end": span.end_char, "text": span.text, "score": score}
        for span, score in zip(group, scores)
    ]


def stashed(
    cache: Optional[Tuple[List[Doc], List[Explanation]]], docs: Sequence[Doc]
) -> Optional[List[Explanation]]:
    """The explanations computed by `predict` for exactly these docs (by identity), else None."""
    if cache is None or len(cache[0]) != len(docs):
        return None
    if all(a is b for a, b in zip(cache[0], docs)):
        return cache[1]
    return None
