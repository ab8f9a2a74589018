"""The leading-space convention: how the transformer reads the start of a document.

ModernBERT's byte-level BPE saw almost every word with the space before it ("Ġword"). The
transformer component encodes each doc with `add_prefix_space` (encoder/alignment.py): a
text that does not start with whitespace gets one space before it, so its first word is the
same "Ġword" pre-token as everywhere else. Pretraining and extend-vocab read text the same way;
on raw text they would see a bare "word" at each document start, a form the pipeline never
produces (extend-vocab would spend new tokens on it, pretraining would train it).
"""

from typing import Iterable, List


def needs_leading_space(text: str) -> bool:
    """Whether `add_prefix_space` puts a space before `text` (it does not start with one)."""
    return bool(text) and not text[0].isspace()


def as_the_pipeline_reads(texts: Iterable[str]) -> List[str]:
    """`texts` as the transformer encodes them: a leading space before each that needs one."""
    return [" " + t if needs_leading_space(t) else t for t in texts]
