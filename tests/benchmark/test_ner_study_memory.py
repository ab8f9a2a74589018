"""`ner_study.ours_ner(doc_memory=True)`: the ner reads its listener through the document memory."""

import spacy

from benchmarks import ner_study
from spacy_modernbert.layers.document_memory import NAME

SENTS = [
    (
        ["Mr.", "Smith", "met", "Jones", "in", "Paris", "."],
        ["O", "B-PER", "O", "B-PER", "O", "B-LOC", "O"],
    ),
    (["Smith", "left", "."], ["B-PER", "O", "O"]),
    (["Acme", "hired", "Jones", "."], ["B-ORG", "O", "B-PER", "O"]),
] * 4


def test_ours_ner_with_the_memory_trains_on_windowed_docs_and_scores_every_view(
    tiny_checkpoint, tmp_path
):
    result = ner_study.ours_ner(
        tiny_checkpoint,
        SENTS,
        SENTS,
        1e-3,
        epochs=1,
        batch_size=4,
        docs_of=3,
        sentence_windows=True,
        doc_memory=True,
        save_to=tmp_path / "nlp",
    )
    # sentences, 10-sentence docs at gold starts, and paragraphs without starts
    assert set(result["f1_by_doc_size"]) == {1, 10, "10sz"}
    tok2vec = spacy.util.load_config(tmp_path / "nlp" / "config.cfg")["components"]["ner"]["model"][
        "tok2vec"
    ]
    assert tok2vec["@architectures"] == NAME and tok2vec["key"] == "lower"
    assert tok2vec["tok2vec"]["@architectures"] == "spacy-transformers.TransformerListener.v1"
    nlp = spacy.load(tmp_path / "nlp")
    assert list(nlp.get_pipe("transformer").listener_map) == ["ner"]
