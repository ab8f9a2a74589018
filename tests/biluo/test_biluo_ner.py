"""`biluo_ner`: valid decoding, training on a shared transformer, round trips, refusals."""
import itertools
import random

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

import spacy_modernbert.biluo.component  # noqa: F401  (the factory, also an entry point)
import spacy_modernbert.biluo.model  # noqa: F401
from spacy_modernbert.biluo.component import allowed_transitions, biluo_tags, viterbi

TRAIN = [
    ("Peter Blackburn flew to Paris on Monday .", [(0, 2, "PER"), (4, 5, "LOC")]),
    ("Maria Lopez works for Acme Corp in Berlin .", [(0, 2, "PER"), (4, 6, "ORG"), (7, 8, "LOC")]),
    ("Acme Corp hired Peter in Paris .", [(0, 2, "ORG"), (3, 4, "PER"), (5, 6, "LOC")]),
    ("Nothing happened here today .", []),
]


def _valid(tags):
    """A BILUO sequence is valid when every entity opens with B and closes with L of one label, or is one U."""
    open_label = None
    for tag in tags:
        prefix, label = tag[:1], tag[2:]
        if open_label is None:
            if prefix not in ("O", "B", "U"):
                return False
            open_label = label if prefix == "B" else None
        else:
            if prefix not in ("I", "L") or label != open_label:
                return False
            open_label = None if prefix == "L" else open_label
    return open_label is None


def test_viterbi_always_decodes_a_valid_sequence():
    tags = biluo_tags(["PER", "LOC"])
    rng = numpy.random.default_rng(0)
    transitions = allowed_transitions(tags)
    for length in [1, 2, 3, 7, 20]:
        for _ in range(50):
            path = [tags[i] for i in viterbi(rng.normal(size=(length, len(tags))) * 5, *transitions)]
            assert len(path) == length and _valid(path), path
    assert viterbi(numpy.zeros((0, len(tags))), *transitions) == []


def test_viterbi_keeps_the_best_sequence_when_it_is_valid():
    tags = biluo_tags(["PER"])
    want = ["B-PER", "L-PER", "O", "U-PER"]
    scores = numpy.full((4, len(tags)), -5.0)
    for t, tag in enumerate(want):
        scores[t, tags.index(tag)] = 0.0
    assert [tags[i] for i in viterbi(scores, *allowed_transitions(tags))] == want
    # "I-PER" first is invalid: the best valid path replaces it
    scores[0] = -5.0
    scores[0, tags.index("I-PER")] = 0.0
    assert _valid([tags[i] for i in viterbi(scores, *allowed_transitions(tags))])


def _nlp(tiny_checkpoint, transformer_config, hidden_width=0):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint))
    listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
                "pooling": {"@layers": "reduce_first.v1"}}
    nlp.add_pipe("biluo_ner", config={"model": {"@architectures": "spacy-modernbert.BiluoTagger.v1",
                                                 "hidden_width": hidden_width, "tok2vec": listener}})
    return nlp


def _examples(nlp):
    out = []
    for text, ents in TRAIN:
        words = text.split()
        doc = Doc(nlp.vocab, words=words)
        spans = [(sum(len(w) + 1 for w in words[:s]), sum(len(w) + 1 for w in words[:e]) - 1, label) for s, e, label in ents]
        out.append(Example.from_dict(doc, {"entities": spans}))
    return out


def test_training_on_a_shared_transformer_lowers_loss_and_learns_the_entities(tiny_checkpoint, transformer_config):
    spacy.util.fix_random_seed(0)
    nlp = _nlp(tiny_checkpoint, transformer_config, hidden_width=32)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.01
    assert nlp.get_pipe("biluo_ner").labels == ("LOC", "ORG", "PER")
    history = []
    for _ in range(60):
        losses = {}
        nlp.update(random.Random(0).sample(examples, len(examples)), sgd=optimizer, losses=losses)
        history.append(losses["biluo_ner"])
    assert history[-1] < 0.2 * history[0], history
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] > 0.8
    # the encoder was updated through the listener (the last listener's backprop)
    assert losses["transformer"] > 0


def test_round_trip_keeps_labels_and_predictions(tiny_checkpoint, transformer_config, tmp_path):
    spacy.util.fix_random_seed(0)
    nlp = _nlp(tiny_checkpoint, transformer_config)
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    texts = [text for text, _ in TRAIN]
    before = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("biluo_ner").labels == ("LOC", "ORG", "PER")
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in loaded.pipe(texts)] == before
    # an empty doc and a batch of them are a sane result, not a crash
    assert list(loaded.pipe(["", ""]))[0].ents == ()


def test_refusals_name_the_fix(tiny_checkpoint, transformer_config):
    nlp = _nlp(tiny_checkpoint, transformer_config)
    pipe = nlp.get_pipe("biluo_ner")
    with pytest.raises(ValueError, match="without '-'"):
        pipe.add_label("B-PER")
    blank = [Example.from_dict(Doc(nlp.vocab, words=["no", "entities"]), {"entities": []})]
    with pytest.raises(ValueError, match="no entity labels"):
        nlp.initialize(lambda: blank)


def test_tag_set_is_O_then_BILU_per_label():
    assert biluo_tags(["PER", "LOC", "PER"]) == ["O"] + [f"{p}-{l}" for l, p in itertools.product(["LOC", "PER"], "BILU")]
