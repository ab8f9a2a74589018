"""Passage calibration of the explain method "decompose_calibrated": a passage's value is the
share of the normal fit docs' passages of about its length whose value is lower.

Why: the decomposition methods (decomposition.py) value a passage by the raw score the doc
would have if every token weighed like the passage's, and map it to [0, 1] with the
detector's *doc* scale (location and spread of the fit docs' scores). A passage value is
not a doc score: it spreads wider (a short passage's mean term is noisy), so on the doc scale
most passages of a doc with an anomaly land in the flat top of the map and the ranking
(value x n_tokens ** explain_length_weight) is left to their length. Compared with the
passages of normal docs cut the same way and of about the same length, the value becomes a
quantile: "this passage is valued above 97% of normal passages of its length", the same
number for a passage of 3 tokens and of 30. Measured on the dev pointing docs of
`python -m benchmarks explain` (SMS, 3 seeds x 60 docs, MLM checkpoint, "linear" split,
lines, length weight 0.25): knn 0.82 and mahalanobis 0.82 against 0.78 and 0.77 on the doc
scale (BENCHMARKS.md, "Anomaly explanations and doc vectors").

The reference is fitted with the detector (`FittedDetector.fit`: at most REFERENCE_DOCS of
the kept normal docs, a seeded uniform subsample; a knn fit doc leaves its own bank row out
of its neighbours, as the detector's fit scores do) for both passage units, and stored in
the detector's state (saved and loaded with it): per unit, every reference passage's length
(tokens) and value. A passage is compared with the reference passages of the lengths nearest
its own on a log scale, whole lengths, at least NEAREST of them (all, when there are fewer);
the quantile counts ties half (`(#below + #below_or_equal) / 2n`). A state fitted before this
module existed has no reference: the method is refused with a message to re-fit.

Numpy only (the component imports this module).
"""

from typing import Any, Dict, List, Sequence, Tuple

import numpy

# The fit docs (at most; a seeded uniform subsample) whose passages make the reference.
REFERENCE_DOCS = 500
# A passage is compared with at least this many reference passages of the nearest lengths.
NEAREST = 1000
# The decomposition split whose terms value the passages (decomposition.SPLITS).
SPLIT = "linear"


# The state keys of a unit's reference: these prefixes + the unit's name.
PREFIXES = ("passage_lengths_", "passage_values_")


def state_keys(unit: str) -> Tuple[str, str]:
    """The state arrays of `unit`'s reference: passage lengths (tokens) and values."""
    return PREFIXES[0] + unit, PREFIXES[1] + unit


def has_reference(state: Dict[str, Any], unit: str) -> bool:
    return all(key in state for key in state_keys(unit))


def check_state(state: Dict[str, numpy.ndarray], name: str) -> None:
    """Refuse a stored passage reference that is partial or malformed (a state is a file a
    stranger may hand over): per unit, both arrays, one dimension, one length, lengths >= 0."""
    units = {key[len(p) :] for key in state for p in PREFIXES if key.startswith(p)}
    for unit in sorted(units):
        length_key, value_key = state_keys(unit)
        lengths, values = state.get(length_key), state.get(value_key)
        if (
            lengths is None
            or values is None
            or lengths.dtype.kind not in "iu"
            or lengths.ndim != 1
            or values.shape != lengths.shape
            or (len(lengths) and int(lengths.min()) < 0)
        ):
            shapes = [None if a is None else f"{a.dtype} {a.shape}" for a in (lengths, values)]
            raise ValueError(
                f"the {name} detector's passage reference for {unit!r} has lengths and values "
                f"{shapes}, expected integers (n,) >= 0 and (n,); re-fit the detector and save again"
            )


def passage_values(terms: numpy.ndarray, segs: Sequence[Tuple[int, int]]) -> numpy.ndarray:
    """Each passage's value from a doc's token terms: the raw score the doc would have if
    every token weighed like the passage's (n_tokens x the passage's mean term)."""
    return numpy.asarray([len(terms) * terms[s:e].mean() for s, e in segs], dtype="float64")


def fit(
    detector: Any,
    state: Dict[str, Any],
    docs: Sequence[Any],
    pooled: numpy.ndarray,
    tokens: Sequence[numpy.ndarray],
    token_weights: Any,
    bank_rows: Sequence[int],
) -> Dict[str, numpy.ndarray]:
    """The reference arrays (state_keys, every unit of explain.PASSAGE_UNITS) of the normal
    fit docs `docs` (their pooled vectors and token vectors as the detector reads them;
    `bank_rows`: each doc's row in a knn bank, left out of its own neighbours)."""
    from .explain import PASSAGE_UNITS, segments  # explain imports this module

    terms = detector.raw_terms(state, pooled, tokens, token_weights, SPLIT, exclude=bank_rows)
    out: Dict[str, numpy.ndarray] = {}
    for unit in PASSAGE_UNITS:
        lengths: List[int] = []
        values: List[numpy.ndarray] = []
        for doc, t in zip(docs, terms):
            if not len(t) or len(t) != len(doc):
                continue
            segs = segments(doc, unit)
            lengths.extend(e - s for s, e in segs)
            values.append(passage_values(t, segs))
        length_key, value_key = state_keys(unit)
        out[length_key] = numpy.asarray(lengths, dtype="int64")
        out[value_key] = numpy.concatenate(values) if values else numpy.zeros(0)
    return out


def quantiles(
    state: Dict[str, Any], unit: str, lengths: Sequence[int], values: Sequence[float]
) -> numpy.ndarray:
    """Each passage's (`lengths[i]` tokens, value `values[i]`) quantile among the reference
    passages of `unit` of the nearest lengths (module docstring); in [0, 1]."""
    length_key, value_key = state_keys(unit)
    ref_lengths = numpy.asarray(state[length_key], dtype="int64")
    ref_values = numpy.asarray(state[value_key], dtype="float64")
    if not len(ref_values):
        raise ValueError("the passage reference of the detector is empty")
    by_length = numpy.argsort(ref_lengths, kind="stable")
    ref_lengths, ref_values = ref_lengths[by_length], ref_values[by_length]
    unique, starts, counts = numpy.unique(ref_lengths, return_index=True, return_counts=True)
    log_unique = numpy.log(numpy.maximum(unique, 1))
    need = min(NEAREST, len(ref_values))
    lengths = numpy.maximum(numpy.asarray(lengths, dtype="int64").reshape(-1), 1)
    values = numpy.asarray(values, dtype="float64").reshape(-1)
    out = numpy.zeros(len(values), dtype="float64")
    for length in numpy.unique(lengths):  # one reference per length, sorted once
        order = numpy.argsort(numpy.abs(log_unique - numpy.log(length)), kind="stable")
        groups = order[: int(numpy.searchsorted(numpy.cumsum(counts[order]), need)) + 1]
        # the nearest lengths are a run of the length-sorted reference
        first, last = groups.min(), groups.max()
        ref = numpy.sort(ref_values[starts[first] : starts[last] + counts[last]])
        at = lengths == length
        below = numpy.searchsorted(ref, values[at], side="left")
        at_most = numpy.searchsorted(ref, values[at], side="right")
        out[at] = (below + at_most) / (2.0 * len(ref))
    return out
