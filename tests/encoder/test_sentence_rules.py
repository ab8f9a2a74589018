"""`sentence_rules`: how `sentence_windows` splits a doc without sentence boundaries (issue 33).

"news" (what the shipped configs set) adds to spaCy's sentencizer punctuation: an opening quote, bracket or dash
after a sentence end starts the next sentence, and a news dateline is a sentence of its own.
"sentencizer" is spaCy's rules alone, and the default of the registered v1 architectures: a
config without the setting (a pipeline saved before it existed) reads as it did. A doc with its own boundaries is split where they say,
whatever the rules.
"""

import numpy
import pytest
import spacy
from spacy.tokens import Doc

from spacy_modernbert.encoder.sentences import RULE_SETS, sentence_token_starts


def _sents(words, rules="news", **kw):
    doc = Doc(spacy.blank("en").vocab, words=words.split(), **kw)
    starts = sentence_token_starts(doc, record=True, rules=rules)
    assert starts == [s.start for s in doc.sents]
    return [s.text for s in doc.sents]


@pytest.mark.parametrize(
    "words, sentences",
    [
        # an opening quote after the final punctuation starts the next sentence ...
        (
            'It rose . " We are happy , " he said .',
            ["It rose .", '" We are happy , " he said .'],
        ),
        # ... a closing one (the sentence opened a quote) stays with its sentence
        (
            'He said : " We won . " Then they left .',
            ['He said : " We won . "', "Then they left ."],
        ),
        # a closing bracket stays, a dash (a sign-off, a press review's item) starts
        ("It fell ( sharply . ) Rates rose .", ["It fell ( sharply . )", "Rates rose ."]),
        ("Prices fell . -- Caracas newsroom", ["Prices fell .", "-- Caracas newsroom"]),
        # a dateline, with its region parts, is its own sentence
        (
            "Peter Blackburn BRUSSELS 1996-08-22 The EU said so . It did .",
            ["Peter Blackburn", "BRUSSELS 1996-08-22", "The EU said so .", "It did ."],
        ),
        (
            "NICE , France 1996-08-29 Struggling Nice lost .",
            ["NICE , France 1996-08-29", "Struggling Nice lost ."],
        ),
        # a date inside a sentence is no dateline
        ("Talks began on 1996-08-29 in Paris .", ["Talks began on 1996-08-29 in Paris ."]),
        ("The EU met on 1996-08-29 Brussels said .", ["The EU met on 1996-08-29 Brussels said ."]),
        ("no punctuation at all", ["no punctuation at all"]),
        # punctuation that ends the doc never starts a sentence of its own
        ('They do not want to talk . "', ['They do not want to talk . "']),
        ('" It is valid , " he said . " --', ['" It is valid , " he said . " --']),
    ],
)
def test_news_rules(words, sentences):
    assert _sents(words) == sentences


def test_a_dateline_as_spacys_tokenizer_splits_it():
    """`nlp.make_doc` cuts an ISO date in five tokens: the dateline is still found."""
    doc = spacy.blank("en").make_doc(
        "Peter Blackburn BRUSSELS 1996-08-22 The EU said so. NICE, France 1996-08-29 Nice lost."
    )
    sentence_token_starts(doc, record=True, rules="news")
    assert [s.text for s in doc.sents] == [
        "Peter Blackburn",
        "BRUSSELS 1996-08-22",
        "The EU said so.",
        "NICE, France 1996-08-29",
        "Nice lost.",
    ]
    # a hyphenated place, cut in three by the tokenizer, stays whole (it is an entity)
    doc = spacy.blank("en").make_doc("AL-RAM, West Bank 1996-08-30 Police said so.")
    sentence_token_starts(doc, record=True, rules="news")
    assert [s.text for s in doc.sents] == ["AL-RAM, West Bank 1996-08-30", "Police said so."]
    doc = spacy.blank("en").make_doc("ALKHAN-YURT, Russia 1996-08-22")
    assert sentence_token_starts(doc, rules="news") == [0]


def test_sentencizer_rules_are_spacys_sentencizer():
    """The "sentencizer" rule set is exactly spaCy's Sentencizer on a doc without line breaks,
    where the news rules differ (a quote after a period, a dateline)."""
    from spacy.pipeline import Sentencizer

    nlp = spacy.blank("en")
    text = 'It rose. "We are happy," he said. BRUSSELS 1996-08-22 The EU said so! Yes... Ok'
    expected = [t.i for t in Sentencizer()(nlp.make_doc(text)) if t.is_sent_start]
    assert sentence_token_starts(nlp.make_doc(text), rules="sentencizer") == expected
    assert sentence_token_starts(nlp.make_doc(text), rules="news") != expected


@pytest.mark.parametrize("rules", RULE_SETS)
def test_own_boundaries_win_over_every_rule_set(rules):
    words = 'It rose . " We are happy , " he said . BRUSSELS 1996-08-22 The EU said so .'.split()
    own = [i in (0, 4) for i in range(len(words))]  # boundaries no rule would set
    doc = Doc(spacy.blank("en").vocab, words=words, sent_starts=own)
    assert sentence_token_starts(doc, record=True, rules=rules) == [0, 4]
    assert [s.start for s in doc.sents] == [0, 4]


@pytest.mark.parametrize("rules", RULE_SETS)
def test_line_breaks_end_sentences_under_every_rule_set(rules):
    doc = spacy.blank("en").make_doc("Peter Blackburn\nBrussels said so\nIt did")
    starts = sentence_token_starts(doc, rules=rules)
    assert [doc[s].text for s in starts] == ["Peter", "Brussels", "It"]


def test_unknown_rules_are_refused_with_the_choices(tiny_checkpoint):
    from spacy_modernbert.encoder.architecture import modernbert_transformer_v1

    with pytest.raises(ValueError, match="sentence_rules must be one of"):
        modernbert_transformer_v1(str(tiny_checkpoint), sentence_windows=True, sentence_rules="x")
    with pytest.raises(ValueError, match="sentence_rules must be one of"):
        sentence_token_starts(Doc(spacy.blank("en").vocab, words=["a"]), rules="x")


@pytest.fixture(scope="module")
def saved(tiny_checkpoint, tmp_path_factory):
    from tests.conftest import _transformer_config

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=_transformer_config(tiny_checkpoint, sentence_windows=True))
    nlp.initialize()
    path = tmp_path_factory.mktemp("rules") / "p"
    nlp.to_disk(path)
    # as a pipeline saved before `sentence_rules` existed: spaCy writes every filled default
    # into config.cfg, so the setting's line is taken out
    cfg = path / "config.cfg"
    lines = cfg.read_text(encoding="utf8").splitlines(keepends=True)
    cfg.write_text("".join(x for x in lines if not x.startswith("sentence_rules")), "utf8")
    return path


TEXT = 'Prices rose . " We are happy , " he said . LONDON 1996-08-30 Shares fell .'


def _read(nlp):
    doc = nlp(Doc(nlp.vocab, words=TEXT.split()))
    return [s.text for s in doc.sents], doc._.trf_data.model_output.last_hidden_state[0]


def test_the_encoder_splits_by_its_rules_and_a_config_override_switches_them(saved):
    """`saved`'s config has sentence_windows but no sentence_rules, as every pipeline saved
    before the setting existed: it keeps the sentencizer's rules; a config override at load
    switches it to the shipped configs' "news"."""
    assert "sentence_rules" not in (saved / "config.cfg").read_text(encoding="utf8")
    nlp = spacy.load(
        saved, config={"components": {"transformer": {"model": {"sentence_rules": "news"}}}}
    )
    assert nlp.get_pipe("transformer").model.attrs["sentence_rules"] == "news"
    news, news_hidden = _read(nlp)
    assert news == [
        "Prices rose .",
        '" We are happy , " he said .',
        "LONDON 1996-08-30",
        "Shares fell .",
    ]
    old = spacy.load(saved)
    assert old.get_pipe("transformer").model.attrs["sentence_rules"] == "sentencizer"
    sents, old_hidden = _read(old)
    assert sents == [
        'Prices rose . "',
        'We are happy , " he said .',
        "LONDON 1996-08-30 Shares fell .",
    ]
    assert not numpy.allclose(news_hidden, old_hidden, atol=1e-4)  # other windows, other vectors


def test_a_doc_with_sentences_reads_the_same_under_both_rule_sets(saved):
    """A user's senter / sentencizer before the transformer: the rules change nothing."""
    outs = []
    for rules in RULE_SETS:
        nlp = spacy.load(
            saved, config={"components": {"transformer": {"model": {"sentence_rules": rules}}}}
        )
        words = TEXT.split()
        doc = nlp(Doc(nlp.vocab, words=words, sent_starts=[i in (0, 7) for i in range(len(words))]))
        assert [s.start for s in doc.sents] == [0, 7]
        outs.append(doc._.trf_data.model_output.last_hidden_state[0])
    numpy.testing.assert_allclose(outs[0], outs[1], atol=1e-6)
