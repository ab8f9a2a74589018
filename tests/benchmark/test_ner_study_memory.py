"""`ner_study.ours_ner(doc_memory=True)`: the ner reads its listener through the document memory."""

import random

import pytest
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


def _numbered(n):
    return [([f"w{k}", "."], ["O", "O"]) for k in range(n)]


def test_memory_block_steps_are_the_sentence_steps_each_with_its_block():
    """memory_block: the annotated examples of each step are exactly the sentence recipe's (same
    shuffle, same steps); each is followed by the other sentences of its block, unannotated,
    all in the annotated example's memory group; the encoded sentences per step are x block."""
    from spacy.tokens import Doc
    from spacy.training import Example

    from spacy_modernbert.layers.document_memory import MEMORY_GROUP_KEY, MEMORY_READ_ONLY_KEY

    vocab = spacy.blank("en").vocab
    sents = _numbered(40)
    groups = ner_study.group_sentences(sents, 1)

    def make_doc(group):
        return Doc(vocab, words=[w for ws, _ in group for w in ws])

    examples = [
        Example.from_dict(make_doc(g), {"words": g[0][0], "entities": g[0][1]}) for g in groups
    ]
    plain = ner_study.make_batches(examples, random.Random(3), batch_size=8)
    neighbours = ner_study.memory_neighbours(examples, groups, 10, make_doc)
    steps = ner_study.make_batches(examples, random.Random(3), batch_size=8, neighbours=neighbours)
    assert len(steps) == len(plain) == 5
    for step, sentence_step in zip(steps, plain):
        assert len(step) == 8 * 10
        annotated = [eg for eg in step if any(t.ent_iob for t in eg.reference)]
        assert annotated == sentence_step
        for i in range(0, len(step), 10):
            target, rest = step[i], step[i + 1 : i + 10]
            k = examples.index(target)
            block = range(k - k % 10, k - k % 10 + 10)
            assert [r.predicted[0].text for r in rest] == [f"w{j}" for j in block if j != k]
            assert all(not any(t.ent_iob for t in r.reference) for r in rest)
            groups_seen = {d.predicted.user_data[MEMORY_GROUP_KEY] for d in step[i : i + 10]}
            assert groups_seen == {k}
    # memory_block_grad=False: the neighbours are read for the memory only, the target trained
    frozen = ner_study.memory_neighbours(examples, groups, 10, make_doc, trained=False)
    assert all(
        eg.predicted.user_data.get(MEMORY_READ_ONLY_KEY)
        for others in frozen.values()
        for eg in others
    )
    assert not any(eg.predicted.user_data.get(MEMORY_READ_ONLY_KEY) for eg in examples)


def test_ours_ner_with_memory_block_trains_and_refuses_other_recipes(tiny_checkpoint):
    sents = SENTS[:3] * 4  # 12 sentences: blocks of 3
    result = ner_study.ours_ner(
        tiny_checkpoint,
        sents,
        sents,
        1e-3,
        epochs=1,
        batch_size=4,
        sentence_windows=True,
        doc_memory=True,
        memory_block=3,
    )
    assert result["steps"] == 3  # the sentence recipe's: 12 sentences, 4 per step
    assert set(result["f1_by_doc_size"]) == {1, 10, "10sz"}
    with pytest.raises(ValueError, match="memory_block.*doc_memory=True and docs_of=1"):
        ner_study.ours_ner(
            tiny_checkpoint,
            sents,
            sents,
            1e-3,
            epochs=1,
            docs_of=3,
            doc_memory=True,
            memory_block=3,
        )
