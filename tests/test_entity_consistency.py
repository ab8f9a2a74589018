"""`entity_consistency`: one label per name within a doc (vote), optional propagation."""

import pytest
import spacy
from spacy.tokens import Doc, Span

from spacy_modernbert.entity_consistency import FACTORY, EntityConsistency, majority

WORDS = "Smith met Smith and Smith in New York . York and Smithson left".split()


def _doc(ents, words=WORDS, sent_starts=None):
    doc = Doc(spacy.blank("en").vocab, words=list(words), sent_starts=sent_starts)
    doc.set_ents([Span(doc, s, e, label=label) for s, e, label in ents], default="outside")
    return doc


def _ents(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def _iob(doc):
    return [(t.ent_iob_, t.ent_type_) for t in doc]


def _rebuilt(doc):
    """The same entities set on a fresh doc by spaCy itself: a valid token annotation."""
    fresh = Doc(doc.vocab, words=[t.text for t in doc])
    fresh.set_ents(
        [Span(fresh, e.start, e.end, label=e.label_) for e in doc.ents], default="outside"
    )
    return fresh


def test_vote_gives_every_mention_the_majority_label():
    doc = _doc([(0, 1, "PER"), (2, 3, "ORG"), (4, 5, "PER"), (6, 8, "LOC")])
    out = EntityConsistency(vote=True)(doc)
    assert _ents(out) == [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "PER"), (6, 8, "LOC")]
    assert _iob(out) == _iob(_rebuilt(out))


def test_a_tie_keeps_the_model_labels():
    ents = [(0, 1, "PER"), (2, 3, "ORG"), (6, 8, "LOC")]
    assert _ents(EntityConsistency(vote=True, propagate=True)(_doc(ents))) == ents
    assert majority(["PER", "ORG"]) is None and majority(["ORG", "PER", "ORG"]) == "ORG"


def test_vote_off_changes_nothing():
    ents = [(0, 1, "PER"), (2, 3, "ORG"), (4, 5, "PER")]
    assert _ents(EntityConsistency(vote=False)(_doc(ents))) == ents


def test_propagate_tags_untagged_occurrences_at_token_boundaries():
    # "Smith" tagged once: its two other mentions are tagged; "Smithson" (another token) is not
    doc = _doc([(0, 1, "PER"), (6, 8, "LOC")])
    out = EntityConsistency(vote=True, propagate=True)(doc)
    assert _ents(out) == [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "PER"), (6, 8, "LOC")]
    assert _iob(out) == _iob(_rebuilt(out))
    # without propagate the doc is unchanged
    assert _ents(EntityConsistency(propagate=False)(_doc([(0, 1, "PER")]))) == [(0, 1, "PER")]


def test_propagate_uses_the_voted_label():
    out = EntityConsistency(propagate=True)(_doc([(0, 1, "ORG"), (2, 3, "PER"), (10, 11, "PER")]))
    # "Smith": ORG, PER -> a tie, so neither is changed and the third mention stays untagged
    assert (4, 5) not in [(s, e) for s, e, _ in _ents(out)]
    out = EntityConsistency(propagate=True)(_doc([(0, 1, "ORG"), (2, 3, "PER"), (9, 10, "LOC")]))
    assert (4, 5, "PER") not in _ents(out)
    out = EntityConsistency(propagate=True)(
        _doc([(0, 1, "ORG"), (2, 3, "PER"), (4, 5, "PER")], words=WORDS + ["Smith"])
    )
    assert _ents(out) == [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "PER"), (13, 14, "PER")]


def test_propagation_never_overrides_or_overlaps_an_entity():
    # "York" tagged LOC; the York inside the ORG "New York" is not retagged, nor split
    doc = _doc([(6, 8, "ORG"), (9, 10, "LOC")])
    out = EntityConsistency(vote=True, propagate=True)(doc)
    assert _ents(out) == [(6, 8, "ORG"), (9, 10, "LOC")]
    # longer strings are placed first: "New York" claims its tokens before "York"
    # (whatever comes first in the doc)
    words = "York . New York . New York".split()
    out = EntityConsistency(propagate=True)(_doc([(0, 1, "LOC"), (2, 4, "GPE")], words=words))
    assert _ents(out) == [(0, 1, "LOC"), (2, 4, "GPE"), (5, 7, "GPE")]


def test_propagation_needs_a_capitalised_string_of_two_characters_and_min_count():
    words = "the A team met the A team and the boss".split()
    doc = _doc([(0, 1, "ORG"), (1, 2, "ORG")], words=words)
    out = EntityConsistency(propagate=True)(doc)
    assert _ents(out) == [(0, 1, "ORG"), (1, 2, "ORG")]  # "the" lowercase, "A" one character
    doc = _doc([(0, 1, "PER")])
    assert _ents(EntityConsistency(propagate=True, min_count=2)(doc)) == [(0, 1, "PER")]
    doc = _doc([(0, 1, "PER"), (2, 3, "PER")])
    out = EntityConsistency(propagate=True, min_count=2)(doc)
    assert (4, 5, "PER") in _ents(out)


def test_propagation_does_not_cross_a_sentence_start():
    words = "New York is big . New York".split()
    starts = [True, False, False, False, False, True, False]
    doc = _doc([(0, 2, "LOC")], words=words, sent_starts=starts)
    assert (5, 7, "LOC") in _ents(EntityConsistency(propagate=True)(doc))
    starts[6] = True  # "New" ends one sentence, "York" starts the next
    doc = _doc([(0, 2, "LOC")], words=words, sent_starts=starts)
    assert _ents(EntityConsistency(propagate=True)(doc)) == [(0, 2, "LOC")]


def test_empty_docs_and_docs_without_entities_pass_through():
    pipe = EntityConsistency(vote=True, propagate=True)
    empty = Doc(spacy.blank("en").vocab, words=[])
    assert len(pipe(empty)) == 0 and pipe(empty).ents == ()
    plain = Doc(spacy.blank("en").vocab, words=WORDS)
    assert pipe(plain).ents == () and all(t.ent_iob_ == "" for t in plain)


def test_min_count_must_be_a_positive_integer():
    with pytest.raises(ValueError, match=r"components.entity_consistency\] min_count = 0"):
        EntityConsistency(min_count=0)
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="min_count"):
        nlp.add_pipe(FACTORY, config={"min_count": True})


def test_the_factory_reads_its_settings_and_a_saved_pipeline_reloads_them(tmp_path):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe(FACTORY, config={"propagate": True, "min_count": 2})
    assert pipe.cfg == {"vote": True, "propagate": True, "min_count": 2}
    assert spacy.blank("en").add_pipe(FACTORY).cfg == {
        "vote": True,
        "propagate": False,
        "min_count": 1,
    }
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe(FACTORY).cfg == pipe.cfg
    ents = [(0, 1, "PER"), (2, 3, "PER")]
    assert _ents(loaded.get_pipe(FACTORY)(_doc(ents))) == _ents(pipe(_doc(ents)))
    assert (4, 5, "PER") in _ents(loaded.get_pipe(FACTORY)(_doc(ents)))


def test_it_runs_inside_nlp_after_a_trained_ner(trained_pipeline, monkeypatch):
    from spacy.training import Example

    names = ["Smith", "Jones", "Paris", "Berlin"]

    def examples(nlp):
        out = []
        for i in range(12):
            a, b = names[i % 4], names[(i + 1) % 4]
            text = f"{a} met {b} in the morning ."
            label = {"Smith": "PER", "Jones": "PER", "Paris": "LOC", "Berlin": "LOC"}
            ents = [(0, len(a), label[a]), (len(a) + 5, len(a) + 5 + len(b), label[b])]
            out.append(Example.from_dict(nlp.make_doc(text), {"entities": ents}))
        return out

    path = trained_pipeline(examples, epochs=10, name="consistency")
    nlp = spacy.load(path)
    nlp.add_pipe(FACTORY, after="ner", config={"propagate": True})
    assert nlp.pipe_names.index(FACTORY) == nlp.pipe_names.index("ner") + 1
    texts = ["Smith met Jones . Smith met Paris and Smith left .", "Berlin met Berlin .", ""]
    with nlp.select_pipes(disable=[FACTORY]):
        before = [nlp(t) for t in texts]
    seen = []
    call = EntityConsistency.__call__

    def spy(self, doc):
        # what the pipe receives inside nlp(): the ner's annotation of the doc
        seen.append((doc.text, _ents(doc), doc.has_annotation("ENT_IOB")))
        return call(self, doc)

    monkeypatch.setattr(EntityConsistency, "__call__", spy)
    after = list(nlp.pipe(texts)) + [nlp(texts[0])]
    assert [t for t, _, _ in seen] == texts + texts[:1]
    assert [e for _, e, _ in seen[:3]] == [_ents(b) for b in before]
    assert all(annotated for _, _, annotated in seen[:2])
    monkeypatch.undo()
    pipe = EntityConsistency(propagate=True)
    for b, a in zip(before, after):
        assert _ents(a) == _ents(pipe(b.copy()))
        assert _iob(a) == _iob(_rebuilt(a))
    assert nlp.analyze_pipes()["problems"][FACTORY] == []
