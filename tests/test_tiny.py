"""The tiny offline checkpoint: its tokenizer is trained on the texts it is given."""

import spacy
from spacy.tokens import DocBin
from transformers import AutoTokenizer

from spacy_modernbert.tiny import _read_texts, create_tiny_checkpoint


def test_tokenizer_learns_the_words_of_a_spacy_corpus(tmp_path):
    nlp = spacy.blank("en")
    texts = [f"Ticket {i}: the zorblax cluster of node{i} is down." for i in range(200)] + ["   "]
    path = tmp_path / "train.spacy"
    DocBin(docs=[nlp.make_doc(t) for t in texts]).to_disk(path)
    assert list(_read_texts([path])) == texts[:-1]  # blank docs are skipped
    out = create_tiny_checkpoint(tmp_path / "ckpt", [path], vocab_size=600)
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    # a word that only the corpus contains is one piece, with its leading space
    assert tokenizer.tokenize(" zorblax") == ["Ġzorblax"]
    untrained = AutoTokenizer.from_pretrained(
        str(create_tiny_checkpoint(tmp_path / "bare", [], vocab_size=600))
    )
    assert len(untrained.tokenize(" zorblax")) > 1
