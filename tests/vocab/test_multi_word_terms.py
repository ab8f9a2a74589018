"""extend-vocab --max-words-per-term: multi-word tokens ("credit score") kept whole by a rewritten
pre-tokenizer. Text round-trips, the new pre-tokenizer cuts text with no term exactly as the
base one, a term never fires inside a longer word, special tokens keep their ids and their
matching, the leading-space convention holds, tokenization only joins base pieces, the
checkpoint loads by path, and bad terms or tokenizers get a one-line error."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from spacy_modernbert.vocab import VocabError
from spacy_modernbert.vocab.bpe import superword_pre_tokenizer
from spacy_modernbert.vocab.extend import extend_vocab

from .util import DEMO
from .util import demo_texts as _texts
from .util import tokenizer as _tok

TERMS = ["credit score", "what is my", "what is", "pto balance", "payments"]
HOSTILE = [
    "",
    "x",
    "what is my credit score",
    "What is my credit score?",
    "what isn't my credit scores, what is2 or what is_x",
    "my pto balances; pto balance. pto  balance",
    "  leading and  double  spaces\n\nand newlines\t tabs  what is  my",
    "emoji 👩‍👩‍👧 and 😀😀, e\u0301 combining, שלום RTL, 中文字符 mixed",
    "it's what's what'll they're I'dwhat is x-what is (what is my) 3what is",
    "NUL\x00 and control\x07 chars [CLS] what is my [SEP] [MASK]",
    '{"json": [1, 2, 3], "html": "<b>credit score</b>"}',
]


def _boundaries(pieces):
    out, pos = set(), 0
    for piece in pieces:
        pos += len(piece)
        out.add(pos)
    return out


@pytest.fixture(scope="module")
def with_terms(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("terms") / "out"
    summary = extend_vocab(str(tiny_checkpoint), [], out, terms=TERMS, max_words=3)
    return out, summary


@pytest.fixture(scope="module")
def mined(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("mined") / "out"
    summary = extend_vocab(
        str(tiny_checkpoint), _texts("train"), out, max_new=150, min_freq=3, max_words=3
    )
    return out, summary


def test_no_term_pattern_cuts_exactly_as_byte_level(tiny_checkpoint):
    from tokenizers import Tokenizer

    base = _tok(tiny_checkpoint).backend_tokenizer
    data = json.loads(base.to_str())
    for terms in ([], ["zzq yyq", "qqz qqy qqx"]):  # none of them in the texts
        data["pre_tokenizer"] = superword_pre_tokenizer(terms)
        rebuilt = Tokenizer.from_str(json.dumps(data)).pre_tokenizer
        for text in HOSTILE + _texts("dev"):
            assert rebuilt.pre_tokenize_str(text) == base.pre_tokenizer.pre_tokenize_str(text)


def test_terms_are_one_token_with_their_leading_space(tiny_checkpoint, with_terms):
    out, summary = with_terms
    new = _tok(out)
    ids = {t["text"]: t["id"] for t in summary["tokens"] if t["word"]}
    assert summary["multi_word_terms"] == 4
    for term in ("credit score", "pto balance"):
        assert " " + term in ids  # added as running text has it: after a space
        got = new(f"my {term} today", add_special_tokens=False)["input_ids"]
        assert ids[" " + term] in got
        assert new.convert_ids_to_tokens(ids[" " + term]).startswith("Ġ")
    encoded = new("so what is my credit score", add_special_tokens=False)["input_ids"]
    assert encoded[-2:] == [ids[" what is my"], ids[" credit score"]]  # longest term first
    encoded = new("so what is the credit score", add_special_tokens=False)["input_ids"]
    assert ids[" what is"] in encoded and ids[" what is my"] not in encoded


@pytest.mark.parametrize(
    "text",
    [
        "what isn't it",
        "my pto balances",
        "my credit scores",
        "what is2",
        "somewhat is my",
        "xpto balance",
    ],
)
def test_a_term_never_fires_inside_a_longer_word(tiny_checkpoint, with_terms, text):
    out, summary = with_terms
    multi = {t["id"] for t in summary["tokens"] if t["word"] and " " in t["text"].strip()}
    new = _tok(out)
    assert not multi & set(new(text, add_special_tokens=False)["input_ids"])
    base_pre = _tok(tiny_checkpoint).backend_tokenizer.pre_tokenizer
    assert new.backend_tokenizer.pre_tokenizer.pre_tokenize_str(text) == (
        base_pre.pre_tokenize_str(text)
    )


@pytest.mark.parametrize("which", ["with_terms", "mined"])
def test_round_trip_and_only_base_pieces_joined(tiny_checkpoint, which, request):
    out, summary = request.getfixturevalue(which)
    base, new = _tok(tiny_checkpoint), _tok(out)
    first_new, used = len(base), 0
    for text in HOSTILE + _texts("dev"):  # dev was never mined
        ids = new(text, add_special_tokens=False)["input_ids"]
        old = base(text, add_special_tokens=False)["input_ids"]
        assert new.decode(ids) == text
        new_pieces, old_pieces = new.convert_ids_to_tokens(ids), base.convert_ids_to_tokens(old)
        assert "".join(new_pieces) == "".join(old_pieces)
        assert _boundaries(new_pieces) <= _boundaries(old_pieces), text
        used += sum(i >= first_new for i in ids)
    assert used > 0


def test_mined_terms_span_words(mined):
    out, summary = mined
    multi = [t for t in summary["tokens"] if t["word"] and " " in t["text"].strip()]
    assert summary["multi_word_terms"] == len(multi) > 0
    assert all(len(t["text"].split()) <= 3 for t in multi)
    assert summary["pieces_per_word_after"] < summary["pieces_per_word_before"]


def test_special_tokens_keep_their_ids_and_matching(tiny_checkpoint, with_terms):
    out, _ = with_terms
    base, new = _tok(tiny_checkpoint), _tok(out)
    assert new.all_special_tokens == base.all_special_tokens
    assert new.all_special_ids == base.all_special_ids
    ids = new("[CLS] what is my [SEP]", add_special_tokens=False)["input_ids"]
    assert ids[0] == base.cls_token_id and ids[-1] == base.sep_token_id
    assert new.convert_ids_to_tokens(ids[1:-1]) == ["ĠwhatĠisĠmy", "Ġ"]


def test_mean_init_and_loading_by_path(tiny_checkpoint, with_terms):
    from spacy_modernbert.encoder.checkpoint import load_checkpoint

    out, summary = with_terms
    base = _tok(tiny_checkpoint)
    old = load_file(str(tiny_checkpoint / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    new = load_file(str(out / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    token = next(t for t in summary["tokens"] if t["text"] == " credit score")
    pieces = (
        base(" credit", add_special_tokens=False)["input_ids"]
        + base(" score", add_special_tokens=False)["input_ids"]
    )
    assert token["pieces"] == pieces
    torch.testing.assert_close(new[token["id"]], old[pieces].mean(0))
    encoder, tok = load_checkpoint(str(out))
    ids = tok("what is my credit score", return_tensors="pt")["input_ids"]
    assert token["id"] in ids[0].tolist()
    with torch.no_grad():
        hidden = encoder(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert hidden.shape[:2] == ids.shape and torch.isfinite(hidden).all()


@pytest.mark.parametrize(
    "terms,max_words,match",
    [
        (["credit score"], 1, "--max-words-per-term"),
        (["credit-score card"], 3, "cuts it into ' credit', '-', 'score', ' card'"),
        (["what is my card"], 3, "at most 3 words"),
        (["credit  score"], 3, "single spaces"),
        (["pto 42"], 3, "letters only"),
    ],
)
def test_bad_multi_word_terms_are_refused(tiny_checkpoint, tmp_path, terms, max_words, match):
    with pytest.raises(VocabError, match=match):
        extend_vocab(str(tiny_checkpoint), [], tmp_path / "o", terms=terms, max_words=max_words)
    assert not (tmp_path / "o").exists()


def test_other_pre_tokenizers_are_refused_for_multi_word_terms(tiny_checkpoint, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(tiny_checkpoint, base)
    data = json.loads((base / "tokenizer.json").read_text(encoding="utf8"))
    data["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [{"type": "Digits", "individual_digits": True}, data["pre_tokenizer"]],
    }
    (base / "tokenizer.json").write_text(json.dumps(data), encoding="utf8")
    with pytest.raises(VocabError, match="plain ByteLevel pre-tokenizer"):
        extend_vocab(str(base), _texts("train"), tmp_path / "o", max_words=2)
    extend_vocab(str(base), _texts("train"), tmp_path / "o", max_words=1, max_new=10)


def test_cli_takes_terms_with_spaces(tiny_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    terms = tmp_path / "terms.txt"
    terms.write_text("credit score\npto balance\n", encoding="utf8")
    args = ["extend-vocab", str(tiny_checkpoint), str(DEMO / "train.jsonl"), "--terms", str(terms)]
    refused = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "a")])
    assert refused.exit_code == 1 and "--max-words-per-term" in " ".join(refused.output.split())
    result = CliRunner().invoke(
        app, [*args, "--output", str(tmp_path / "b"), "--max-words-per-term", "2"]
    )
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "b" / "vocab_extension.json").read_text(encoding="utf8"))
    assert record["multi_word_terms"] == 2 and record["max_words_per_term"] == 2


def test_contextual_init_reads_a_multi_word_term_where_it_occurs(tiny_checkpoint, tmp_path):
    from spacy_modernbert.vocab.contextual import find_occurrences

    texts = ["please check my credit score today", "is the credit score ok?"]
    summary = extend_vocab(
        str(tiny_checkpoint),
        texts,
        tmp_path / "o",
        terms=["credit score"],
        max_words=2,
        init="contextual",
    )
    token = next(t for t in summary["tokens"] if t["text"] == " credit score")
    new = _tok(tmp_path / "o").backend_tokenizer
    found = find_occurrences(_tok(tiny_checkpoint), texts, ["ĠcreditĠscore"], 4, new.pre_tokenizer)
    assert [(t[:s], t[s:e]) for t, s, e in found["ĠcreditĠscore"]] == [
        ("please check my", " credit score"),
        ("is the", " credit score"),
    ]
    rows = load_file(str(tmp_path / "o" / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    assert torch.isfinite(rows[token["id"]]).all()


def test_a_saved_pipeline_keeps_the_multi_word_tokenizer(with_terms, transformer_config, tmp_path):
    import spacy

    from spacy_modernbert.encoder.alignment import tokenize_docs

    out, summary = with_terms
    ids = {t["text"]: t["id"] for t in summary["tokens"] if t["word"]}
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(out))
    nlp.initialize()
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    text = "what is my credit score? my credit scores"
    doc = loaded(text)
    assert doc._.trf_data.model_output.last_hidden_state.shape[1] > 0
    (pieces,) = tokenize_docs(loaded.get_pipe("transformer").model.tokenizer, [doc])
    assert list(pieces.ids).count(ids[" credit score"]) == 1
    assert ids[" what is my"] in list(pieces.ids)


def _multi_word_rows(summary):
    """New entries on the way to (or being) a multi-word term: tokens whose text spans words."""
    return sum(" " in t["text"].strip() for t in summary["tokens"])


def _single_words(summary):
    return {t["text"] for t in summary["tokens"] if t["word"] and " " not in t["text"].strip()}


@pytest.mark.parametrize("share", [0.0, 0.2])
def test_multi_word_share_caps_the_rows_multi_word_terms_take(
    tiny_checkpoint, mined, tmp_path, share
):
    _, uncapped = mined
    assert _multi_word_rows(uncapped) > 0.2 * 150  # the cap binds on this text
    summary = extend_vocab(
        str(tiny_checkpoint),
        _texts("train"),
        tmp_path / "o",
        max_new=150,
        min_freq=3,
        max_words=3,
        multi_word_share=share,
    )
    assert summary["multi_word_share"] == share
    assert _multi_word_rows(summary) <= int(share * 150)
    assert summary["multi_word_terms"] <= _multi_word_rows(summary)
    if share:
        assert summary["multi_word_terms"] > 0
    # the rows the cap frees go to single words: the budget is still spent
    assert summary["new_tokens"] == uncapped["new_tokens"] == 150
    assert _single_words(summary) > _single_words(uncapped)


def test_multi_word_share_outside_0_1_is_refused(tiny_checkpoint, tmp_path):
    with pytest.raises(VocabError, match="--multi-word-share"):
        extend_vocab(
            str(tiny_checkpoint), _texts("train"), tmp_path / "o", max_words=3, multi_word_share=1.5
        )


def test_cli_takes_multi_word_share(tiny_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    args = ["extend-vocab", str(tiny_checkpoint), str(DEMO / "train.jsonl"), "--min-freq", "3"]
    args += ["--max-new", "150", "--max-words-per-term", "3", "--multi-word-share", "0.1"]
    result = CliRunner().invoke(app, [*args, "--output", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "o" / "vocab_extension.json").read_text(encoding="utf8"))
    assert record["multi_word_share"] == 0.1
    assert 0 < sum(" " in t["text"].strip() for t in record["tokens"]) <= 15
