"""Hostile text (issue 14, item 5): special-token strings typed in a document are plain text.

Without this, "[CLS] [SEP] [MASK] [PAD] [UNK]" was encoded as the real special ids
(1, 2, 4, 3, 0), and "[SEP][CLS][MASK]" x 20k put 60,000 special ids inside one doc: anyone
could steer NER or the anomaly score by typing them. Checked by piece ids.
"""

import pytest
import spacy
from transformers import AutoTokenizer

from spacy_modernbert.encoder.alignment import tokenize_docs

SPECIAL_TEXT = "[CLS] [SEP] [MASK] [PAD] [UNK]"


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return AutoTokenizer.from_pretrained(str(tiny_checkpoint), use_fast=True)


@pytest.fixture(scope="module")
def nlp(tiny_checkpoint, transformer_config):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer",
        config=transformer_config(tiny_checkpoint, max_length=128, max_batch_tokens=1024),
    )
    nlp.initialize()
    return nlp


def test_tokenizer_alone_would_emit_special_ids(tokenizer):
    """The hazard is real with this tokenizer (so the tests below can fail)."""
    ids = tokenizer.backend_tokenizer.encode(" " + SPECIAL_TEXT, add_special_tokens=False).ids
    assert set(tokenizer.all_special_ids) <= set(ids)


@pytest.mark.parametrize(
    "text", [SPECIAL_TEXT, "[SEP][CLS][MASK]" * 200, "x[PAD]y [UNK]z", "<[CLS]>"]
)
def test_special_token_strings_are_plain_text(tokenizer, text):
    doc = spacy.blank("en")(text)
    (pieces,) = tokenize_docs(tokenizer, [doc])
    specials = set(tokenizer.all_special_ids)
    assert not specials & set(pieces.ids.tolist())
    # the pieces spell the text (byte-level BPE: nothing dropped)
    decoded = tokenizer.backend_tokenizer.decoder.decode(pieces.strings)
    assert decoded.strip() == text.strip()
    assert (pieces.align_lengths >= 1).all()
    # the tokenizer is left as it was found
    assert tokenizer.backend_tokenizer.encode_special_tokens is False


def test_pipeline_has_one_cls_and_one_sep_per_window(nlp, tokenizer):
    doc = nlp("Alice wrote " + SPECIAL_TEXT + " and left.")
    ids = doc._.trf_data.wordpieces.input_ids[0].tolist()
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    assert not set(tokenizer.all_special_ids) & set(ids[1:-1])


def test_typed_cls_tokens_are_not_the_cls_id(nlp):
    """A doc of 50 typed "[CLS]" holds exactly one [CLS] id: the real one, first."""
    doc = nlp("[CLS]" * 50)
    ids = doc._.trf_data.wordpieces.input_ids[0].tolist()
    cls_id = nlp.get_pipe("transformer").model.shims[0].tokenizer.cls_token_id
    assert ids.count(cls_id) == 1 and ids[0] == cls_id


@pytest.mark.parametrize("setting", ["truncation", "padding"])
def test_tokenizer_truncation_or_padding_settings_are_ignored(tokenizer, setting):
    """A tokenizer.json saved with truncation (docs cut short) or a fixed padding length
    (memory on every call) must not change the pieces: windows are planned by us."""
    import copy

    tok = copy.deepcopy(tokenizer)
    text = "one two three four five six seven eight nine ten eleven twelve"
    doc = spacy.blank("en")(text)
    (expected,) = tokenize_docs(tokenizer, [doc])
    if setting == "truncation":
        tok.backend_tokenizer.enable_truncation(4)
    else:
        tok.backend_tokenizer.enable_padding(length=10**6)
    (pieces,) = tokenize_docs(tok, [doc])
    assert pieces.ids.tolist() == expected.ids.tolist()
    assert len(pieces.ids) > 4 and len(pieces.ids) < 100
