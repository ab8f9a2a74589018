"""extend-vocab --init contextual: new rows are the base encoder's final hidden states for the
term (where it occurs in TEXT, else alone), mapped onto the distribution of the existing rows;
old rows are kept, tied and untied decoders grow, the decoder bias is the pieces' mean."""

import json

import pytest
import torch
from safetensors.torch import load_file

from spacy_modernbert.vocab.bpe import NewToken
from spacy_modernbert.vocab.contextual import contextual_states, find_occurrences
from spacy_modernbert.vocab.extend import extend_vocab

from .util import DEMO, mlm_base
from .util import demo_texts as _texts
from .util import tokenizer as _tok

TERMS = ["kubernetes", "zyxwvut", "grafana"]


def _encoder(path):
    from spacy_modernbert.encoder.checkpoint import load_checkpoint

    encoder, _ = load_checkpoint(str(path))
    return encoder.eval()


def test_terms_alone_get_the_encoder_states_mapped_onto_the_rows(tiny_checkpoint, tmp_path):
    """With no TEXT each term is encoded alone ([CLS] pieces [SEP]); recompute the definition."""
    summary = extend_vocab(
        str(tiny_checkpoint), [], tmp_path / "c", terms=TERMS, max_new=60, init="contextual"
    )
    old = load_file(str(tiny_checkpoint / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    new = load_file(str(tmp_path / "c" / "model.safetensors"))["embeddings.tok_embeddings.weight"]
    assert torch.equal(new[: old.shape[0]], old)
    tok, encoder = _tok(tiny_checkpoint), _encoder(tiny_checkpoint)
    states, positions = [], []
    with torch.no_grad():
        for token in summary["tokens"]:
            ids = [tok.cls_token_id] + token["pieces"] + [tok.sep_token_id]
            hidden = encoder(torch.tensor([ids]))[0, 1:-1]
            states.append(hidden.mean(0))
            positions.append(hidden)
    every = torch.cat(positions).double()
    mu_h, sd_h = every.mean(0), every.std(0, unbiased=False)
    mu_e, sd_e = old.mean(0), old.std(0)
    expected = mu_e + sd_e * (torch.stack(states) - mu_h.float()) / sd_h.float()
    got = new[[t["id"] for t in summary["tokens"]]]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    means = torch.stack([old[t["pieces"]].mean(0) for t in summary["tokens"]])
    assert not torch.allclose(got, means, atol=1e-3)
    # the extended checkpoint still tokenizes each term as one token
    for term in ("kubernetes", "zyxwvut"):
        assert len(_tok(tmp_path / "c")(" " + term, add_special_tokens=False)["input_ids"]) == 1


def test_a_term_is_read_where_it_occurs_in_text(tiny_checkpoint):
    tok, encoder = _tok(tiny_checkpoint), _encoder(tiny_checkpoint)
    pieces = tok(" grafana", add_special_tokens=False)["input_ids"]
    token = NewToken(token="Ġgrafana", id=len(tok), pieces=pieces, word=True)
    found = find_occurrences(
        tok,
        ["the grafanas are up", "we restarted grafana on web-03", "so grafana was slow"] * 3,
        [token.token],
        contexts=4,
    )
    # whole pre-tokens only (not " grafanas"), capped at `contexts`
    assert [(text, text[start:end]) for text, start, end in found["Ġgrafana"]] == [
        ("we restarted grafana on web-03", " grafana"),
        ("so grafana was slow", " grafana"),
    ] * 2
    alone = contextual_states(encoder, tok, [token], [])
    first = contextual_states(encoder, tok, [token], ["we restarted grafana on web-03"])
    second = contextual_states(encoder, tok, [token], ["after lunch the grafana dashboards"])
    assert alone.from_text == 0 and first.from_text == second.from_text == 1
    assert not torch.allclose(first.vectors, second.vectors)
    assert not torch.allclose(first.vectors, alone.vectors)
    with torch.no_grad():
        ids = (
            [tok.cls_token_id]
            + tok("we restarted", add_special_tokens=False)["input_ids"]
            + pieces
            + tok(" on web-03", add_special_tokens=False)["input_ids"]
            + [tok.sep_token_id]
        )
        start = ids.index(pieces[0], 1)
        hidden = encoder(torch.tensor([ids]))[0, start : start + len(pieces)].mean(0)
    torch.testing.assert_close(first.vectors[0], hidden, rtol=1e-4, atol=1e-5)
    unrelated = contextual_states(encoder, tok, [token], ["nothing to see here"])
    torch.testing.assert_close(unrelated.vectors, alone.vectors)


@pytest.mark.parametrize("tied", [True, False])
def test_decoders_grow_with_contextual_init(tiny_checkpoint, tmp_path, tied):
    mlm_base(tiny_checkpoint, tmp_path / "base", tied, shift_decoder=True)
    summary = extend_vocab(
        str(tmp_path / "base"),
        _texts("train"),
        tmp_path / "out",
        max_new=30,
        min_freq=3,
        init="contextual",
    )
    old = load_file(str(tmp_path / "base" / "model.safetensors"))
    new = load_file(str(tmp_path / "out" / "model.safetensors"))
    ids = [t["id"] for t in summary["tokens"]]
    emb_key = "model.embeddings.tok_embeddings.weight"
    n_old = old[emb_key].shape[0]
    for key in (emb_key, "decoder.bias") + (() if tied else ("decoder.weight",)):
        assert torch.equal(new[key][:n_old], old[key])
    for token in summary["tokens"]:
        torch.testing.assert_close(
            new["decoder.bias"][token["id"]], old["decoder.bias"][token["pieces"]].mean()
        )
    if tied:
        assert "decoder.weight" not in new or torch.equal(new["decoder.weight"], new[emb_key])
    else:
        # the same standardised hidden state, on each matrix's own row statistics
        e, d = old[emb_key], old["decoder.weight"]
        z_emb = (new[emb_key][ids] - e.mean(0)) / e.std(0)
        z_dec = (new["decoder.weight"][ids] - d.mean(0)) / d.std(0)
        torch.testing.assert_close(z_emb, z_dec, rtol=1e-3, atol=1e-3)
        assert new["decoder.weight"][ids].mean().item() > 0.3


def test_cli_takes_init_contextual(tiny_checkpoint, tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    result = CliRunner().invoke(
        app,
        [
            "extend-vocab",
            str(tiny_checkpoint),
            str(DEMO / "train.jsonl"),
            "--output",
            str(tmp_path / "o"),
            "--max-new",
            "12",
            "--min-freq",
            "3",
            "--init",
            "contextual",
        ],
        env={"COLUMNS": "400"},
    )
    assert result.exit_code == 0, result.output
    assert "read where they occur in TEXT" in result.output
    record = json.loads((tmp_path / "o" / "vocab_extension.json").read_text())
    assert record["init"] == "contextual" and record["new_tokens"] == 12
