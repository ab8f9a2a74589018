"""extend-vocab: the extended tokenizer round-trips text and uses its new tokens, special tokens
keep their ids, every token-indexed tensor grows (tied and untied decoders), mean
initialisation is the mean of the old pieces, the output loads through our own loaders, and
bad input gets a one-line error."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from spacy_modernbert.vocab import VocabError
from spacy_modernbert.vocab.extend import extend_vocab

from .util import DEMO
from .util import demo_texts as _texts
from .util import mlm_base as _mlm_base
from .util import tokenizer as _tok


@pytest.fixture(scope="module")
def extended(tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("ext") / "out"
    summary = extend_vocab(str(tiny_checkpoint), _texts("train"), out, max_new=120, min_freq=3)
    return out, summary


def test_text_round_trips_and_new_tokens_are_used(tiny_checkpoint, extended):
    out, summary = extended
    base, new = _tok(tiny_checkpoint), _tok(out)
    first_new = len(base)
    used = 0
    for text in _texts("dev"):  # never mined
        ids = new(text, add_special_tokens=False)["input_ids"]
        old = base(text, add_special_tokens=False)["input_ids"]
        assert new.decode(ids) == base.decode(old) == text
        assert "".join(new.convert_ids_to_tokens(ids)) == "".join(base.convert_ids_to_tokens(old))
        used += sum(i >= first_new for i in ids)
        assert len(ids) <= len(old)
    assert used > 0
    words = [t for t in summary["tokens"] if t["word"] and t["text"].startswith(" ")]
    assert words
    for token in words:  # each word, in running text (with its leading space), is one new token
        ids = new("the logs of" + token["text"] + " today", add_special_tokens=False)["input_ids"]
        assert token["id"] in ids


def test_special_tokens_and_old_vocabulary_keep_their_ids(tiny_checkpoint, extended):
    out, summary = extended
    base, new = _tok(tiny_checkpoint), _tok(out)
    for attr in ("cls_token_id", "sep_token_id", "pad_token_id", "mask_token_id", "unk_token_id"):
        assert getattr(new, attr) == getattr(base, attr)
    assert new.all_special_tokens == base.all_special_tokens
    old_vocab = base.get_vocab()
    assert {k: v for k, v in new.get_vocab().items() if k in old_vocab} == old_vocab
    assert len(new) == len(base) + summary["new_tokens"]
    assert new("[CLS] x [SEP]")["input_ids"][:2] == base("[CLS] x [SEP]")["input_ids"][:2]


def test_mean_init_is_the_mean_of_the_old_pieces_and_old_rows_are_kept(tiny_checkpoint, extended):
    out, summary = extended
    old = load_file(str(tiny_checkpoint / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    new = load_file(str(out / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    base = _tok(tiny_checkpoint)
    assert (
        new.shape[0]
        == summary["embedding_rows"][1]
        == json.loads((out / "config.json").read_text())["vocab_size"]
    )
    assert torch.equal(new[: old.shape[0]], old)
    for token in summary["tokens"]:
        pieces = base(token["text"], add_special_tokens=False)["input_ids"]
        assert pieces == token["pieces"] and len(pieces) > 1
        torch.testing.assert_close(new[token["id"]], old[pieces].mean(0))


def test_random_init_draws_new_rows(tiny_checkpoint, tmp_path):
    out = extend_vocab(
        str(tiny_checkpoint),
        _texts("train"),
        tmp_path / "r",
        max_new=40,
        min_freq=3,
        init="random",
        seed=3,
    )
    new = load_file(str(tmp_path / "r" / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    old = load_file(str(tiny_checkpoint / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    rows = new[old.shape[0] :]
    assert rows.shape[0] == out["new_tokens"] == 40
    means = torch.stack([old[t["pieces"]].mean(0) for t in out["tokens"]])
    assert not torch.allclose(rows, means)
    assert (
        0.01 < rows.std().item() < 0.03 and rows.abs().max().item() <= 0.04 + 1e-6
    )  # trunc normal, std 0.02


@pytest.mark.parametrize("tied", [True, False])
def test_mlm_decoder_grows_tied_or_untied(tiny_checkpoint, tmp_path, tied):
    from spacy_modernbert.pretrain.model import load_masked_lm

    base = _mlm_base(tiny_checkpoint, tmp_path / "base", tied)
    summary = extend_vocab(str(base), _texts("train"), tmp_path / "out", max_new=50, min_freq=3)
    old = load_file(str(base / "model.safetensors"))
    new = load_file(str(tmp_path / "out" / "model.safetensors"))
    size = summary["embedding_rows"][1]
    emb = new["model.embeddings.tok_embeddings.weight"]
    assert new["decoder.bias"].shape == (size,)
    assert torch.equal(new["decoder.bias"][: old["decoder.bias"].shape[0]], old["decoder.bias"])
    for token in summary["tokens"]:
        torch.testing.assert_close(
            new["decoder.bias"][token["id"]], old["decoder.bias"][token["pieces"]].mean()
        )
        if not tied:
            torch.testing.assert_close(
                new["decoder.weight"][token["id"]], old["decoder.weight"][token["pieces"]].mean(0)
            )
    if not tied:
        assert new["decoder.weight"].shape == emb.shape and not torch.equal(
            new["decoder.weight"], emb
        )
    # The project's pretraining loader takes it as is, head included, tie as configured.
    model, tok, hf, initialized = load_masked_lm(str(tmp_path / "out"))
    assert initialized == [] and len(tok) == size
    assert model.decoder.weight.shape[0] == size
    emb_param = dict(model.encoder.named_parameters())
    same = any(p is model.decoder.weight for p in emb_param.values())
    assert same == tied


def test_output_is_a_pipeline_checkpoint_and_pretrains(extended, transformer_config, tmp_path):
    import spacy

    from spacy_modernbert.pretrain.loop import pretrain

    out, summary = extended
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(out))
    nlp.initialize()
    word = next(t["text"] for t in summary["tokens"] if t["word"] and t["text"].startswith(" "))
    doc = nlp("Today" + word + " was slow.")
    assert doc._.trf_data.model_output.last_hidden_state.shape[1] > 0
    result = pretrain(
        str(out),
        [DEMO / "train.jsonl"],
        tmp_path / "run",
        steps=2,
        batch_tokens=1024,
        window=64,
        save_every=100,
        eval_fraction=0.05,
        log_every=1,
    )
    assert all(h["loss"] == h["loss"] for h in result["held_out"])


def test_terms_become_single_tokens(tiny_checkpoint, tmp_path):
    summary = extend_vocab(
        str(tiny_checkpoint),
        [],
        tmp_path / "t",
        terms=["payments", "eu", "kubernetes", "zyxwvut"],
        max_new=50,
    )
    new = _tok(tmp_path / "t")
    for term in ["kubernetes", "zyxwvut"]:
        assert len(new(" " + term, add_special_tokens=False)["input_ids"]) == 1
    assert {t["text"] for t in summary["tokens"] if t["word"]} >= {" kubernetes", " zyxwvut"}


@pytest.mark.parametrize(
    "terms, match",
    [
        (["payments-api"], "splits it into ' payments', '-', 'api'"),
        (["two words"], "whitespace"),
        (["x[MASK]"], "special or added token"),
    ],
)
def test_terms_the_tokenizer_cannot_represent_are_refused(tiny_checkpoint, tmp_path, terms, match):
    with pytest.raises(VocabError, match=match):
        extend_vocab(str(tiny_checkpoint), [], tmp_path / "t", terms=terms)
    assert not (tmp_path / "t").exists()


def test_vocabulary_beyond_the_limit_is_refused(tiny_checkpoint, tmp_path):
    rows = json.loads((tiny_checkpoint / "config.json").read_text())["vocab_size"]
    with pytest.raises(
        VocabError, match=f"beyond --max-vocab {rows}; lower --max-new to at most 0"
    ):
        extend_vocab(
            str(tiny_checkpoint),
            _texts("train"),
            tmp_path / "o",
            max_new=20,
            min_freq=3,
            max_vocab=rows,
        )
    assert not (tmp_path / "o").exists()


def test_base_without_tokenizer_is_refused(tiny_checkpoint, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_checkpoint / name, bare / name)
    with pytest.raises(VocabError, match="has no tokenizer"):
        extend_vocab(str(bare), _texts("train"), tmp_path / "o")


def test_non_empty_output_needs_overwrite(tiny_checkpoint, tmp_path, capsys):
    from spacy_modernbert.cli.extend_vocab import extend_vocab_cli

    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        extend_vocab_cli(str(tiny_checkpoint), [DEMO / "train.jsonl"], out, max_new=10, min_freq=3)
    assert exit_info.value.code == 1
    assert "is not empty; choose a new directory or pass --overwrite" in " ".join(
        capsys.readouterr().out.split()
    )
    assert (out / "keep.txt").read_text() == "mine"
    extend_vocab_cli(
        str(tiny_checkpoint), [DEMO / "train.jsonl"], out, max_new=10, min_freq=3, overwrite=True
    )
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").is_file()


def test_new_tokenization_only_joins_base_pieces(tiny_checkpoint, extended):
    """New merges rank after the base ones: each word's new pieces are runs of its base pieces
    joined, never a different split, and words that no new token covers keep their base pieces."""
    out, summary = extended
    base, new = _tok(tiny_checkpoint), _tok(out)
    pre = base.backend_tokenizer.pre_tokenizer
    words = {w for text in _texts("dev") + _texts("train") for w, _ in pre.pre_tokenize_str(text)}
    unchanged = 0
    for word in sorted(words):
        old = [t.value for t in base.backend_tokenizer.model.tokenize(word)]
        got = [t.value for t in new.backend_tokenizer.model.tokenize(word)]
        bounds_old, bounds_new, pos = set(), set(), 0
        for piece in old:
            pos += len(piece)
            bounds_old.add(pos)
        pos = 0
        for piece in got:
            pos += len(piece)
            bounds_new.add(pos)
        assert bounds_new <= bounds_old, (word, old, got)
        unchanged += old == got
    assert 0 < unchanged < len(words)


def test_unused_embedding_rows_are_taken_first(tiny_checkpoint, tmp_path):
    """A base whose matrix is padded beyond its tokenizer (as ModernBERT-base) keeps its shape
    while the new tokens fit in the unused rows, and --max-vocab at that size accepts it."""
    from transformers import ModernBertConfig, ModernBertModel

    config = ModernBertConfig.from_pretrained(str(tiny_checkpoint))
    n_tokens = len(_tok(tiny_checkpoint))
    config.vocab_size = n_tokens + 16
    torch.manual_seed(0)
    ModernBertModel(config).save_pretrained(str(tmp_path / "padded"), safe_serialization=True)
    _tok(tiny_checkpoint).save_pretrained(str(tmp_path / "padded"))
    old = load_file(str(tmp_path / "padded" / "model.safetensors"))[
        "embeddings.tok_embeddings.weight"
    ]
    summary = extend_vocab(
        str(tmp_path / "padded"),
        _texts("train"),
        tmp_path / "o",
        max_new=10,
        min_freq=3,
        max_vocab=n_tokens + 16,
    )
    new = load_file(str(tmp_path / "o" / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    assert summary["embedding_rows"] == [n_tokens + 16, n_tokens + 16] and new.shape == old.shape
    assert [t["id"] for t in summary["tokens"]] == list(range(n_tokens, n_tokens + 10))
    assert torch.equal(new[:n_tokens], old[:n_tokens]) and torch.equal(
        new[n_tokens + 10 :], old[n_tokens + 10 :]
    )
    for token in summary["tokens"]:
        torch.testing.assert_close(new[token["id"]], old[token["pieces"]].mean(0))
    with pytest.raises(VocabError, match="lower --max-new to at most 16"):
        extend_vocab(
            str(tmp_path / "padded"),
            _texts("train"),
            tmp_path / "o2",
            max_new=17,
            min_freq=3,
            max_vocab=n_tokens + 16,
        )


def test_cli_terms_file_refusal_is_one_line(tiny_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    terms = tmp_path / "terms.txt"
    terms.write_text("kubernetes\npayments-api\n", encoding="utf8")
    result = CliRunner().invoke(
        app,
        [
            "extend-vocab",
            str(tiny_checkpoint),
            "--terms",
            str(terms),
            "--output",
            str(tmp_path / "o"),
        ],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())  # one message (wasabi wraps it at the terminal width)
    assert (
        text.count("✘") == 1
        and "'payments-api' cannot be one token" in text
        and "Traceback" not in text
    )
    assert not (tmp_path / "o").exists()


def test_a_word_only_seen_at_document_starts_is_mined_as_the_pipeline_reads_it(
    tiny_checkpoint, tmp_path
):
    """The transformer reads a document's first word as "Ġword" (add_prefix_space): that is
    the form mined and added, never a bare "word" the pipeline would not produce."""
    import spacy

    from spacy_modernbert.encoder.alignment import tokenize_docs

    texts = [f"Zorblaxian pumps {i} failed." for i in range(12)]
    out = tmp_path / "out"
    summary = extend_vocab(str(tiny_checkpoint), texts, out, max_new=20, min_freq=3)
    added = {t["text"]: t["id"] for t in summary["tokens"] if t["word"]}
    assert " Zorblaxian" in added and "Zorblaxian" not in added
    doc = spacy.blank("en").make_doc("Zorblaxian pumps failed.")
    pieces = tokenize_docs(_tok(out), [doc])[0]
    assert pieces.ids[0] == added[" Zorblaxian"]
    assert summary["pieces_per_word_after"] < summary["pieces_per_word_before"]
