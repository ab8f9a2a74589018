"""The leading-space convention: how the transformer reads the start of a document.

ModernBERT's byte-level BPE saw almost every word with the space before it ("Ġword"). The
transformer component encodes each doc with `add_prefix_space` (encoder/alignment.py): a
text that does not start with whitespace gets one space before it, so its first word is the
same "Ġword" pre-token as everywhere else. Pretraining and extend-vocab read text the same way;
on raw text they would see a bare "word" at each document start, a form the pipeline never
produces (extend-vocab would spend new tokens on it, pretraining would train it).

The end of a document follows the same rule from the other side: the transformer drops the
last token's trailing whitespace (`alignment.text_to_encode`), so a text read from a file that
ends in a space must not give pretraining a lone "Ġ" piece before [SEP] that the pipeline
never feeds. spaCy's tokenizer gives a token at most one trailing " " (further whitespace is a
token of its own), so the space dropped is exactly a final " " after a non-space character.
"""

from typing import Iterable, List


def needs_leading_space(text: str) -> bool:
    """Whether `add_prefix_space` puts a space before `text` (it does not start with one)."""
    return bool(text) and not text[0].isspace()


def without_final_space(text: str) -> str:
    """`text` without the final " " that spaCy's tokenizer makes its last token's whitespace."""
    if len(text) >= 2 and text[-1] == " " and not text[-2].isspace():
        return text[:-1]
    return text


def as_the_pipeline_reads(texts: Iterable[str]) -> List[str]:
    """`texts` as the transformer encodes them: a leading space before each that needs one,
    and no final space where the pipeline drops it."""
    out = []
    for text in texts:
        text = without_final_space(text)
        out.append(" " + text if needs_leading_space(text) else text)
    return out
