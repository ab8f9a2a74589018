import numpy
import pytest
import spacy
from spacy.tokens import Doc

from spacy_modernbert.encoder.alignment import tokenize_docs
from spacy_modernbert.encoder.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def tokenizer(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)[1]


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def _pieces_of(pieces, token_i):
    start = int(pieces.align_lengths[:token_i].sum())
    return pieces.align_data[start : start + pieces.align_lengths[token_i]]


def _check_invariants(doc, pieces):
    assert pieces.align_lengths.shape == (len(doc),)
    assert (pieces.align_lengths >= 1).all(), "every token needs at least one piece"
    assert pieces.align_data.shape == (int(pieces.align_lengths.sum()),)
    if len(pieces.align_data):
        assert pieces.align_data.min() >= 0
        assert pieces.align_data.max() <= pieces.n_content + 1


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x",
        "Hello world",
        "  leading and  double  spaces\n\nand newlines\t tabs  ",
        "emoji 👩‍👩‍👧 and 😀😀, e\u0301 combining, שלום RTL, 中文字符 mixed",
        "NUL\x00 and control\x07 chars",
        '{"json": [1, 2, 3], "html": "<b>x</b>"}',
    ],
)
def test_alignment_invariants(nlp, tokenizer, text):
    doc = nlp(text)
    (pieces,) = tokenize_docs(tokenizer, [doc])
    _check_invariants(doc, pieces)


def test_alignment_long_doc(nlp, tokenizer):
    doc = nlp(" ".join(f"word{i % 97}" for i in range(20000)))
    assert len(doc) == 20000
    (pieces,) = tokenize_docs(tokenizer, [doc])
    _check_invariants(doc, pieces)


def test_leading_space_piece_lands_on_its_own_token(nlp, tokenizer):
    doc = nlp("Hello world again")
    (pieces,) = tokenize_docs(tokenizer, [doc])
    strings = ["[CLS]", *pieces.strings, "[SEP]"]
    for token in doc:
        token_pieces = "".join(strings[j] for j in _pieces_of(pieces, token.i))
        # Byte-level BPE marks the leading space with "Ġ"; the piece belongs to this token
        assert token_pieces.replace("Ġ", "") == token.text
        if token.i:
            assert token_pieces.startswith("Ġ")
    assert pieces.strings[0].startswith("Ġ")  # prefix space before the first word too
    # no piece is shared between two word tokens
    assert len(set(pieces.align_data.tolist())) == len(pieces.align_data)


def test_first_word_encoded_as_in_running_text(nlp, tokenizer):
    def word_pieces(pieces, token_i):
        strings = ["[CLS]", *pieces.strings, "[SEP]"]
        return [strings[j] for j in _pieces_of(pieces, token_i)]

    first = tokenize_docs(tokenizer, [nlp("payments failed")])[0]
    middle = tokenize_docs(tokenizer, [nlp("the payments failed")])[0]
    assert word_pieces(first, 0) == word_pieces(middle, 1)
    without = tokenize_docs(tokenizer, [nlp("payments failed")], add_prefix_space=False)[0]
    assert not without.strings[0].startswith("Ġ")


def test_doc_from_words_encodes_as_the_hf_loop_and_pretraining(nlp, tokenizer):
    # A corpus doc (Doc(words=...), convert-conll, spacy.Corpus) ends with a space after its
    # last word. The encoder must feed the same pieces as a plain HF loop (each word with its
    # leading space) and as pretraining (the sentence with a leading space): no lone "Ġ" for
    # the trailing space, which belongs to no token and which pretraining never shows.
    words = ["EU", "rejects", "German", "call", "to", "boycott", "British", "lamb", "."]
    doc = Doc(nlp.vocab, words=words)
    assert doc.text.endswith(" ")
    (pieces,) = tokenize_docs(tokenizer, [doc])
    backend = tokenizer.backend_tokenizer
    word_by_word = [i for w in words for i in backend.encode(" " + w, add_special_tokens=False).ids]
    assert pieces.ids.tolist() == word_by_word
    assert (
        pieces.ids.tolist()
        == tokenizer(" " + " ".join(words), add_special_tokens=False)["input_ids"]
    )
    _check_invariants(doc, pieces)


def test_trailing_space_changes_no_piece(nlp, tokenizer):
    words = ["Peter", "Blackburn", "lives", "in", "Brussels"]
    spaced = Doc(nlp.vocab, words=words)
    bare = Doc(nlp.vocab, words=words, spaces=[True] * 4 + [False])
    a, b = tokenize_docs(tokenizer, [spaced, bare])
    numpy.testing.assert_array_equal(a.ids, b.ids)
    numpy.testing.assert_array_equal(a.align_data, b.align_data)
    # a whitespace *token* at the end keeps its pieces
    doc = nlp("Hello world\n\n")
    assert doc[-1].is_space
    (pieces,) = tokenize_docs(tokenizer, [doc])
    _check_invariants(doc, pieces)


def test_byte_split_characters_map_to_their_token(nlp, tokenizer):
    doc = nlp("ok 😀 done")
    (pieces,) = tokenize_docs(tokenizer, [doc])
    emoji_pieces = _pieces_of(pieces, 1)
    assert len(emoji_pieces) >= 2  # the emoji is split into byte pieces
    for other in (0, 2):
        assert not set(_pieces_of(pieces, other).tolist()) & set(emoji_pieces.tolist())


def test_whitespace_token_gets_pieces(nlp, tokenizer):
    doc = nlp("a  b")  # spaCy makes the extra space a token
    assert [t.is_space for t in doc] == [False, True, False]
    (pieces,) = tokenize_docs(tokenizer, [doc])
    _check_invariants(doc, pieces)


def test_batch_and_single_agree(nlp, tokenizer):
    docs = [nlp(t) for t in ["one two", "", "three four five"]]
    batched = tokenize_docs(tokenizer, docs)
    for doc, b in zip(docs, batched):
        (single,) = tokenize_docs(tokenizer, [doc])
        numpy.testing.assert_array_equal(single.ids, b.ids)
        numpy.testing.assert_array_equal(single.align_data, b.align_data)


def test_multi_word_piece_is_shared_by_its_tokens(nlp, tiny_checkpoint, tmp_path):
    """A token spanning words (extend-vocab --max-words-per-term) lands on every spaCy token
    it covers, with its leading space as any word piece, and on no other."""
    from spacy_modernbert.vocab.extend import extend_vocab

    out = tmp_path / "extended"
    extend_vocab(str(tiny_checkpoint), [], out, terms=["what is my", "credit score"], max_words=3)
    extended = load_checkpoint(str(out))[1]
    doc = nlp("What is my credit score? what is my credit scores")
    (pieces,) = tokenize_docs(extended, [doc])
    _check_invariants(doc, pieces)
    strings = ["[CLS]", *pieces.strings, "[SEP]"]
    shared = {}
    for token in doc:
        for j in _pieces_of(pieces, token.i).tolist():
            shared.setdefault(j, []).append(token.text)
    by_string = {strings[j]: words for j, words in shared.items() if "Ġ" in strings[j][1:]}
    # the first word gets its prefix space; "What" is capitalised, so no term there
    assert by_string == {"ĠcreditĠscore": ["credit", "score"], "ĠwhatĠisĠmy": ["what", "is", "my"]}
    assert strings.count("ĠcreditĠscore") == 1  # "credit scores" is no "credit score"
    assert extended.decode(pieces.ids) == " " + doc.text
