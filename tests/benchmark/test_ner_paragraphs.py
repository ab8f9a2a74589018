"""benchmarks/ner_paragraphs.py: the rules against gold sentence starts, and the scored views (issue 33)."""

import pytest
import spacy

from benchmarks import ner_paragraphs as np_

# three CoNLL-like sentences: a dateline (no final punctuation), a sentence, a quote
SENTS = [
    (["BUCHAREST", "1996-08-29"], ["B-LOC", "O"]),
    (["Britain", "joined", "the", "talks", "."], ["B-LOC", "O", "O", "O", "O"]),
    (['"', "It", "is", "good", ",", '"', "Smith", "said", "."], ["O"] * 6 + ["B-PER", "O", "O"]),
]


def test_gold_starts_and_blocks():
    assert np_.gold_starts(SENTS) == [0, 2, 7]
    assert [len(b) for b in np_.blocks(list(range(23)))] == [10, 10, 3]


def test_the_news_rules_find_what_the_sentencizer_misses():
    old = np_.boundary_stats(SENTS, "sentencizer")
    new = np_.boundary_stats(SENTS, "news")
    assert old["gold starts"] == new["gold starts"] == 2
    # the sentencizer misses the dateline's end, and puts the quote with the sentence before
    assert old["recall"] == 0.0 and old["rule starts"] == 1
    assert old["misses"] == {
        "after a dateline (LONDON 1996-08-30)": 1,
        "after final punctuation (a quote or dash follows)": 1,
    }
    assert new["recall"] == new["precision"] == 1.0 and not new["misses"]


def test_a_false_start_inside_an_entity_is_counted():
    # one sentence whose entity holds a "." token: the rules cut it, inside the entity
    sents = [(["It", "rose", ".", "Reuters", "said"], ["O", "B-ORG", "I-ORG", "I-ORG", "O"])]
    stats = np_.boundary_stats(sents, "sentencizer")
    assert stats["rule starts"] == 1 and stats["false starts inside an entity"] == 1


def test_views_hold_the_starts_they_name():
    vocab = spacy.blank("en").vocab
    gold = {0, 2, 7}
    assert np_.view_starts("gold", vocab, SENTS) == gold
    assert np_.view_starts("news", vocab, SENTS) is None  # the encoder splits
    assert np_.view_starts("whole", vocab, SENTS) is None
    merges = np_.view_starts("merges:sentencizer", vocab, SENTS)
    cuts = np_.view_starts("cuts:sentencizer", vocab, SENTS)
    assert merges == {0} and cuts == {0, 2, 7, 8}  # the sentencizer starts at "It", after the quote
    assert merges <= gold <= cuts
    assert np_.view_starts("merges:news", vocab, SENTS) == gold
    with pytest.raises(ValueError, match="unknown view"):
        np_.view_starts("merges:other", vocab, SENTS)


def test_every_view_is_described_and_test_views_are_a_subset():
    assert set(np_.TEST_VIEWS) <= set(np_.DEV_VIEWS)
    assert "news" in np_.TEST_VIEWS and "sentencizer" in np_.TEST_VIEWS
