"""The CLINC150 converter: intents and out-of-scope queries to Docs, one list per split.

CLINC150 (Larson et al., EMNLP 2019) is a JSON object whose keys are splits (`train`, `val`,
`test`) and their out-of-scope parts (`oos_train`, `oos_val`, `oos_test`); each item is
`[text, intent]`, intent `oos` for out-of-scope. Pure functions (spaCy and the standard
library only); `spacy_modernbert/cli/convert_clinc.py` is the command.

Invariants (what `textcat` and `anomaly_scorer` read from the reference docs):
* an in-scope doc has `doc.cats[intent] = 1.0` and `doc.cats[label] = 0.0` (label: the
  anomaly label); the other intents are absent, which an exclusive `textcat` reads as 0.0;
* an out-of-scope doc (an `oos_*` key, or intent `oos` under any key) has `doc.cats[label]
  = 1.0` and no intent: the textcat's target is all zeros (it is never a 151st intent);
* `val` becomes `dev`; `oos_X` joins split `X`; the intent list (sorted, no `oos`) is what
  the textcat is initialized with (intents.json);
* subsampling and carving are per intent, seeded, and never move a doc between two
  reported splits: a dev split carved from `train` leaves `val` untouched for the report.
"""

import json
import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from ..anomaly import DEFAULT_LABEL
from .docbins import blank_nlp

PathLike = Union[str, Path]
OOS_INTENT = "oos"
OOS_PREFIX = "oos_"
# CLINC150's split keys -> the project's split names (anything else keeps its key).
SPLIT_NAMES = {"val": "dev"}
Item = Tuple[str, Optional[str]]  # (text, intent); intent None: out-of-scope


def split_name(key: str) -> str:
    """The split a CLINC150 key belongs to: `val` -> `dev`, `oos_X` -> the split of `X`."""
    base = key[len(OOS_PREFIX) :] if key.startswith(OOS_PREFIX) else key
    return SPLIT_NAMES.get(base, base)


def read_clinc(path: PathLike) -> Dict[str, List[Item]]:
    """Read a CLINC150 JSON file: split name -> `(text, intent or None)` items, in file order.

    path (str | Path): the JSON object of split keys to `[text, intent]` lists.
    RETURNS (Dict[str, List[Item]]): the items of each split (`oos_*` keys merged into theirs,
        their items and those with intent `oos` get intent None).
    RAISES ValueError: not a JSON object of lists, or an item that is not `[text, intent]`
        with a non-empty text and intent (named by its key and index), or no items at all.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(
            f"{path}: expected a JSON object of splits (train, val, oos_train, ...), got {type(data).__name__}"
        )
    out: Dict[str, List[Item]] = {}
    for key, items in data.items():
        if not isinstance(items, list):
            raise ValueError(
                f"{path}: key {key!r}: expected a list of [text, intent] items, got {type(items).__name__}"
            )
        split = out.setdefault(split_name(key), [])
        for index, item in enumerate(items):
            split.append(_parse_item(path, key, index, item))
    if not any(out.values()):
        raise ValueError(f"{path}: no documents (every split is empty)")
    return out


def _parse_item(path: PathLike, key: str, index: int, item: object) -> Item:
    where = f"{path}: {key}[{index}]"
    if not isinstance(item, (list, tuple)) or len(item) != 2:
        raise ValueError(f"{where}: expected [text, intent], got {item!r:.80}")
    text, intent = item
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where}: the text must be a non-empty string, got {text!r:.80}")
    if not isinstance(intent, str) or not intent.strip():
        raise ValueError(f"{where}: the intent must be a non-empty string, got {intent!r:.80}")
    out_of_scope = key.startswith(OOS_PREFIX) or intent == OOS_INTENT
    return text, None if out_of_scope else intent


def intents_of(splits: Dict[str, List[Item]]) -> List[str]:
    """The sorted in-scope intents of every split (what the textcat predicts)."""
    return sorted({intent for items in splits.values() for _, intent in items if intent})


def per_intent(
    items: Sequence[Item], n: int, seed: int, out_of_scope: Optional[int] = None
) -> Tuple[List[Item], List[Item]]:
    """Split `items` into (n per intent, the rest), seeded; out-of-scope items count as one
    group of which `out_of_scope` are taken (None: the same fraction as the intents)."""
    if n < 0:
        raise ValueError(f"the number per intent must be >= 0, got {n}")
    groups: Dict[Optional[str], List[int]] = {}
    for i, (_, intent) in enumerate(items):
        groups.setdefault(intent, []).append(i)
    rng = random.Random(seed)
    in_scope = [len(v) for k, v in groups.items() if k is not None]
    taken = set()
    for intent, indices in sorted(groups.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        k = n
        if intent is None:
            frac = n / (sum(in_scope) / len(in_scope)) if in_scope else 0.0
            k = out_of_scope if out_of_scope is not None else round(frac * len(indices))
        taken.update(rng.sample(indices, min(k, len(indices))))
    chosen = [items[i] for i in sorted(taken)]
    rest = [items[i] for i in range(len(items)) if i not in taken]
    return chosen, rest


def clinc_to_docs(
    path: PathLike,
    carve_dev: int = 0,
    per_intent_train: Optional[int] = None,
    seed: int = 0,
    label: str = DEFAULT_LABEL,
    nlp=None,
) -> Tuple[Dict[str, List[Doc]], List[str]]:
    """Convert CLINC150 into Docs per split, and the intent list.

    path (str | Path): the CLINC150 JSON file.
    carve_dev (int): if > 0, carve this many docs per intent (and the same fraction of the
        out-of-scope docs) from `train` into `dev`, and write `val` as split `val` (so the
        split that chooses, dev, is not the one that reports, val).
    per_intent_train (Optional[int]): keep this many training docs per intent (the same
        fraction of out-of-scope ones), after carving; None keeps all.
    seed (int): the seed of carving and subsampling.
    label (str): the doc.cats label of out-of-scope (the anomaly label).
    nlp: the pipeline whose tokenizer is used (default: `spacy.blank("en")`).
    RETURNS (Tuple[Dict[str, List[Doc]], List[str]]): split name -> docs, and the intents.
    RAISES ValueError: a malformed file, or --carve-dev / --per-intent without a train split.
    """
    splits = read_clinc(path)
    intents = intents_of(splits)
    if label in intents:
        raise ValueError(
            f"{path}: {label!r} is an intent of the data and the out-of-scope label; choose another --label"
        )
    if (carve_dev or per_intent_train is not None) and "train" not in splits:
        raise ValueError(f"{path}: --carve-dev and --per-intent need a 'train' split")
    if carve_dev:
        if "dev" in splits:
            splits["val"] = splits.pop("dev")
        splits["dev"], splits["train"] = per_intent(splits["train"], carve_dev, seed)
    if per_intent_train is not None:
        splits["train"], _ = per_intent(splits["train"], per_intent_train, seed + 1)
    nlp = blank_nlp(nlp)
    out: Dict[str, List[Doc]] = {}
    for name, items in splits.items():
        docs = []
        for text, intent in items:
            doc = nlp.make_doc(text)
            if intent is None:
                doc.cats[label] = 1.0
            else:
                doc.cats[intent] = 1.0
                doc.cats[label] = 0.0
            docs.append(doc)
        out[name] = docs
    return out, intents
