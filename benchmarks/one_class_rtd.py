"""Replaced-token detection in the one-class benchmark (`--replaced-tokens`, issue 32).

Why a module of its own: the `replaced_tokens` detector (spacy_modernbert/anomaly/
replaced_tokens.py) is fitted on corrupted copies of the normal training docs, encoded by the
same encoder; the component builds and encodes them itself (fitted.py), the benchmark, which
fits every detector of its grid from one encoder pass, encodes them once per checkpoint here.

Invariants: the copies are the component's own (`corrupt_docs` of the training docs as spaCy's
blank English tokenizer makes them, seed `detectors.SEED`, the detector's default rate),
encoded as Docs (their tokenization kept, so each token keeps its mask), as fitted.py
encodes them. The grid's configurations are `RTD_GRID`, added to ours' grid (x checkpoint)
when the option is on.
"""

from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy

# ours' extra configurations with --replaced-tokens (x checkpoint, as every ours setting).
RTD_GRID: List[Dict[str, Any]] = [
    {"name": "replaced_tokens", "detector": "replaced_tokens", "top_k_tokens": 0},
    {"name": "replaced_tokens top5", "detector": "replaced_tokens", "top_k_tokens": 5},
]
# The summary row of ours restricted to RTD_GRID (its own validation choice over checkpoints).
ROW = "ours @replaced_tokens"


def corrupted_features(
    checkpoint: Path,
    texts: Sequence[str],
    seed: int,
    encode: Callable[[Path, Sequence[Any], int], Tuple[numpy.ndarray, List[numpy.ndarray]]],
) -> Tuple[List[numpy.ndarray], List[numpy.ndarray]]:
    """(token vectors, replaced masks) of the corrupted copies of `texts` (see the module)."""
    import spacy

    from spacy_modernbert.anomaly import detectors
    from spacy_modernbert.anomaly.replaced_tokens import REPLACE_RATE, corrupt_docs

    nlp = spacy.blank("en")
    copies, masks = corrupt_docs([nlp.make_doc(t) for t in texts], REPLACE_RATE, detectors.SEED)
    _, tokens = encode(checkpoint, copies, seed)
    if any(len(t) != len(m) for t, m in zip(tokens, masks)):
        raise AssertionError("a corrupted copy lost its tokenization")
    return tokens, masks


def detector_and_extra(cfg: Dict[str, Any], feats: Dict[str, Any], keep: numpy.ndarray, make):
    """(the detector of `cfg`, the extra fit arguments it needs): `make` for the registered
    detectors; for replaced_tokens the corrupted copies of the kept training docs."""
    if cfg["detector"] != "replaced_tokens":
        return make(), {}
    from spacy_modernbert.anomaly.replaced_tokens import ReplacedTokensDetector

    from .one_class_grids import MEMORY_BANK_SIZE

    detector = ReplacedTokensDetector(
        top_k_tokens=cfg.get("top_k_tokens", 0), memory_bank_size=MEMORY_BANK_SIZE
    )
    tokens, masks = feats["corrupted"]
    if len(tokens) > len(keep):  # the copies of the kept docs (all of them up to the bank size)
        tokens, masks = [tokens[i] for i in keep], [masks[i] for i in keep]
    return detector, {"corrupted": (tokens, masks)}
