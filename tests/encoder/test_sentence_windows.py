"""`sentence_windows`: a paragraph's pieces get exactly the vectors its sentences get one by one (issue 33)."""

import numpy
import pytest
import spacy
from spacy.tokens import Doc

from spacy_modernbert.encoder.windows import plan_sentence_windows

SENTS = [
    ["The", "European", "Commission", "said", "on", "Thursday", "it", "disagreed", "."],
    ["Germany", "'s", "representative", "to", "the", "European", "Union", "said", "so", "."],
    ["Peter", "Blackburn", "reported", "from", "Brussels", "."],
]


@pytest.fixture(scope="module")
def encode(tiny_checkpoint, transformer_config):
    pipelines = {}

    def run(doc_words, sent_starts, sentence_windows, max_length=512):
        key = (sentence_windows, max_length)
        if key not in pipelines:
            nlp = spacy.blank("en")
            nlp.add_pipe(
                "transformer",
                config=transformer_config(
                    tiny_checkpoint, sentence_windows=sentence_windows, max_length=max_length
                ),
            )
            nlp.initialize()
            pipelines[key] = nlp
        nlp = pipelines[key]
        spaces = [True] * (len(doc_words) - 1) + [False]  # no trailing whitespace piece
        doc = nlp(Doc(nlp.vocab, words=doc_words, spaces=spaces, sent_starts=sent_starts))
        return doc._.trf_data.model_output.last_hidden_state[0]

    return run


def _paragraph():
    words = [w for s in SENTS for w in s]
    starts = [j == 0 for s in SENTS for j in range(len(s))]
    return words, starts


def _alone(encode, **kw):
    """Content pieces of each sentence encoded as its own doc, concatenated; and the first [CLS]."""
    outs = [encode(s, None, False, **kw) for s in SENTS]
    return outs[0][0], numpy.concatenate([o[1:-1] for o in outs])


def test_paragraph_with_sentence_windows_equals_its_sentences_alone(encode):
    words, starts = _paragraph()
    para = encode(words, starts, True)
    cls, content = _alone(encode)
    assert para.shape[0] == content.shape[0] + 2
    numpy.testing.assert_allclose(para[1:-1], content, atol=2e-5, rtol=1e-4)
    numpy.testing.assert_allclose(para[0], cls, atol=2e-5, rtol=1e-4)


def test_without_the_option_the_paragraph_attends_across_sentences(encode):
    words, starts = _paragraph()
    whole = encode(words, starts, False)
    _, content = _alone(encode)
    assert not numpy.allclose(whole[1:-1], content, atol=1e-3)


def test_doc_without_sentence_boundaries_is_split_by_the_sentencizer_rules(encode):
    """`nlp("a paragraph")` sets no boundaries: the encoder splits where spaCy's sentencizer
    would (here: after each "."), so the paragraph still equals its sentences alone."""
    words, starts = _paragraph()
    numpy.testing.assert_allclose(encode(words, None, True), encode(words, starts, True), atol=1e-6)
    _, content = _alone(encode)
    numpy.testing.assert_allclose(encode(words, None, True)[1:-1], content, atol=2e-5, rtol=1e-4)


def test_doc_without_sentence_punctuation_is_one_window(encode):
    words = [w for s in SENTS for w in s if w != "."]
    numpy.testing.assert_allclose(encode(words, None, True), encode(words, None, False), atol=1e-6)


def test_sentence_token_starts_prefer_the_docs_own_boundaries():
    from spacy_modernbert.encoder.sentences import sentence_token_starts

    vocab = spacy.blank("en").vocab
    words, _ = _paragraph()
    assert sentence_token_starts(Doc(vocab, words=words)) == [0, 9, 19]
    own = [i in (0, 4) for i in range(len(words))]  # boundaries that no rule would set
    assert sentence_token_starts(Doc(vocab, words=words, sent_starts=own)) == [0, 4]
    assert sentence_token_starts(Doc(vocab, words=[])) == []


def test_sentence_longer_than_a_window_is_cut_inside_it(encode):
    words, starts = _paragraph()
    para = encode(words, starts, True, max_length=12)
    _, content = _alone(encode, max_length=12)
    numpy.testing.assert_allclose(para[1:-1], content, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("starts,n", [([0, 5, 9], 20), ([], 7), ([3, 3, 40], 30), ([2, 4], 40)])
def test_sentence_windows_own_every_piece_once_and_never_cross_a_boundary(starts, n):
    windows = plan_sentence_windows(0, starts, n, max_length=12, overlap=2)
    owned = numpy.concatenate([numpy.arange(w.own_start, w.own_end) for w in windows])
    numpy.testing.assert_array_equal(owned, numpy.arange(n))
    for w in windows:
        assert w.length <= 12
        assert not any(w.start < s < w.end for s in starts), (w, starts)


@pytest.mark.parametrize(
    "text, sentences",
    [
        (
            "Peter Blackburn\nBRUSSELS 1996-08-22\nThe EU said so. It did.",
            ["Peter Blackburn\n", "BRUSSELS 1996-08-22\n", "The EU said so.", "It did."],
        ),
        ("Hi.\n\nThere", ["Hi.\n\n", "There"]),  # a sentence never starts at whitespace
        ("\nA. B", ["\nA. B"]),  # nor is leading whitespace a sentence; "A." is one token
        ("no punctuation at all", ["no punctuation at all"]),
    ],
)
def test_rule_sentences_end_at_punctuation_and_line_breaks(text, sentences):
    from spacy_modernbert.encoder.sentences import sentence_token_starts

    doc = spacy.blank("en").make_doc(text)
    starts = sentence_token_starts(doc, record=True)
    assert [s.text for s in doc.sents] == sentences
    assert starts == [s.start for s in doc.sents]


def test_without_line_breaks_the_rules_are_spacys_sentencizer():
    from spacy.pipeline import Sentencizer

    from spacy_modernbert.encoder.sentences import sentence_token_starts

    nlp = spacy.blank("en")
    text = 'It disagreed. Germany said so! He reported ( from Brussels ). Yes...  "No." Ok'
    expected = [t.i for t in Sentencizer()(nlp.make_doc(text)) if t.is_sent_start]
    doc = nlp.make_doc(text)
    assert sentence_token_starts(doc, rules="sentencizer") == expected
    assert not doc.has_annotation("SENT_START")  # record=False leaves the doc as it was
