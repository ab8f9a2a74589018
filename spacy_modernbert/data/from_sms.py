"""The SMS Spam Collection converter: "ham|spam<TAB>text" lines to Docs, split by label.

Split from `converters.py` (issue 25: one idea per module; the annotation conventions all
converters share are stated there). Pure functions (spaCy and the standard library only).

Invariant: spam is the anomaly (`doc.cats[label] = 1.0`), NER is left unannotated (missing,
not "no entities"), and the train/dev/test split is stratified and fixed by the seed.
"""

from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from spacy.tokens import Doc

from ..anomaly import DEFAULT_LABEL
from .docbins import blank_nlp
from .splits import stratified_split

PathLike = Union[str, Path]


def read_sms(path: PathLike, limit: Optional[int] = None) -> List[Tuple[str, bool]]:
    """Read the SMS Spam Collection: `(text, is_spam)` per non-blank line.

    path (str | Path): the TSV file (`ham` or `spam`, a tab, the message).
    limit (Optional[int]): read at most this many messages.
    RETURNS (List[Tuple[str, bool]]): the messages in file order.
    RAISES ValueError: a line without a tab, with a label other than ham/spam or with an
        empty message (named by its line number), or a file without messages.
    """
    out: List[Tuple[str, bool]] = []
    with Path(path).open("r", encoding="utf8") as file_:
        for line_no, line in enumerate(file_, start=1):
            if limit is not None and len(out) >= limit:
                break
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            if "\t" not in line:
                raise ValueError(
                    f"{path}: line {line_no}: expected 'ham<TAB>text' or 'spam<TAB>text', got {line[:60]!r}"
                )
            tag, text = line.split("\t", 1)
            tag = tag.strip().lower()
            if tag not in ("ham", "spam"):
                raise ValueError(
                    f"{path}: line {line_no}: label must be 'ham' or 'spam', got {tag!r}"
                )
            if not text.strip():
                raise ValueError(f"{path}: line {line_no}: empty message")
            out.append((text, tag == "spam"))
    if not out:
        raise ValueError(f"{path}: no documents (no messages found)")
    return out


def sms_to_docs(
    path: PathLike,
    dev_frac: float = 0.15,
    test_frac: float = 0.15,
    seed: int = 0,
    limit: Optional[int] = None,
    label: str = DEFAULT_LABEL,
    nlp=None,
) -> Dict[str, List[Doc]]:
    """Convert the SMS Spam Collection into stratified train/dev/test Docs (spam = anomaly).

    Each doc gets `doc.cats[label]` = 1.0 (spam) or 0.0 (ham); NER stays unannotated
    (no entities set, all tokens missing).

    path (str | Path): the TSV file.
    dev_frac (float): fraction for dev.
    test_frac (float): fraction for test.
    seed (int): the seed of the split.
    limit (Optional[int]): read at most this many messages.
    label (str): the doc.cats label.
    nlp: the pipeline whose tokenizer is used (default: `spacy.blank("en")`).
    RETURNS (Dict[str, List[Doc]]): {"train": [...], "dev": [...], "test": [...]}.
    RAISES ValueError: a malformed line or bad fractions.
    """
    messages = read_sms(path, limit=limit)
    splits = stratified_split([is_spam for _, is_spam in messages], dev_frac, test_frac, seed)
    nlp = blank_nlp(nlp)
    out: Dict[str, List[Doc]] = {}
    for name, indices in zip(("train", "dev", "test"), splits):
        docs = []
        for i in indices:
            text, is_spam = messages[i]
            doc = nlp.make_doc(text)
            doc.cats[label] = 1.0 if is_spam else 0.0
            docs.append(doc)
        out[name] = docs
    return out
