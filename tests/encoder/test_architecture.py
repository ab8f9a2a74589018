"""Parity of token vectors with transformers.ModernBertModel, and settings validation."""

import numpy
import pytest
import spacy
import torch
from transformers import AutoTokenizer, ModernBertModel

from spacy_modernbert.encoder.architecture import modernbert_transformer_v1
from spacy_modernbert.encoder.windows import plan_windows

ATOL = 2e-5


def _hf_reference(checkpoint, input_ids_list, attn="sdpa"):
    model = ModernBertModel.from_pretrained(str(checkpoint), attn_implementation=attn).eval()
    width = max(len(x) for x in input_ids_list)
    ids = torch.zeros(len(input_ids_list), width, dtype=torch.long)
    mask = torch.zeros(len(input_ids_list), width, dtype=torch.long)
    for i, x in enumerate(input_ids_list):
        ids[i, : len(x)] = torch.tensor(x)
        mask[i, : len(x)] = 1
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    return [out[i, : len(x)].numpy() for i, x in enumerate(input_ids_list)]


@pytest.fixture(scope="module")
def make_pipeline(tiny_checkpoint, transformer_config):
    def make(**overrides):
        nlp = spacy.blank("en")
        nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, **overrides))
        nlp.initialize()
        return nlp

    return make


def _doc_ids(nlp, doc):
    return [int(i) for i in doc._.trf_data.wordpieces.input_ids[0]]


TEXTS = [
    "Short one.",
    "A somewhat longer sentence, long enough to go past the tiny model's sliding window of sixteen pieces.",
    "x",
    "Mixed lengths make padding in a naive batch: emoji 😀, tabs\tand newlines\nhere.",
]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("max_batch_tokens", [16384, 128])  # one micro-batch, or several
def test_parity_with_hf_short_and_mixed(tiny_checkpoint, make_pipeline, attn, max_batch_tokens):
    nlp = make_pipeline(attn_implementation=attn, max_batch_tokens=max_batch_tokens, max_length=128)
    docs = list(nlp.pipe(TEXTS))
    refs = _hf_reference(tiny_checkpoint, [_doc_ids(nlp, d) for d in docs], attn)
    for doc, ref in zip(docs, refs):
        ours = doc._.trf_data.model_output.last_hidden_state[0]
        assert ours.shape == ref.shape
        numpy.testing.assert_allclose(ours, ref, atol=ATOL, rtol=1e-4)


LONG_TEXTS = [
    " ".join(
        f"Sentence {i} of document {d} talks about server{i * d} in rack {i % 7}." for i in range(n)
    )
    for d, n in enumerate([15, 3, 10, 6, 1])
]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_parity_with_hf_long_mixed_stream_blocked(tiny_checkpoint, make_pipeline, attn):
    """Long docs of mixed lengths in one micro-batch: local layers run stream-blocked."""
    from spacy_modernbert.encoder.attention import AttentionPlan

    nlp = make_pipeline(attn_implementation=attn, max_length=512)
    docs = list(nlp.pipe(LONG_TEXTS))
    ids = [_doc_ids(nlp, d) for d in docs]
    assert 200 < max(map(len, ids)) <= 512  # one window per doc
    half = nlp.get_pipe("transformer").model.shims[0]._model.config.half_window
    assert AttentionPlan([len(x) for x in ids], torch.device("cpu")).stream(half) is not None
    for doc, ref in zip(docs, _hf_reference(tiny_checkpoint, ids, attn)):
        numpy.testing.assert_allclose(
            doc._.trf_data.model_output.last_hidden_state[0], ref, atol=ATOL, rtol=1e-4
        )


def test_ids_match_hf_tokenizer_with_prefix_space(tiny_checkpoint, make_pipeline):
    nlp = make_pipeline()
    tok = AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    doc = nlp("Hello world, again")
    assert _doc_ids(nlp, doc) == tok(" Hello world, again")["input_ids"]


def test_parity_multi_window(tiny_checkpoint, make_pipeline):
    max_length, overlap = 32, 8
    nlp = make_pipeline(max_length=max_length, window_overlap=overlap)
    doc = nlp(" ".join(f"token{i} is here." for i in range(60)))
    ids = _doc_ids(nlp, doc)
    cls_id, sep_id, content = ids[0], ids[-1], ids[1:-1]
    windows = plan_windows(0, len(content), max_length, overlap)
    assert len(windows) > 2
    refs = _hf_reference(
        tiny_checkpoint, [[cls_id, *content[w.start : w.end], sep_id] for w in windows]
    )
    ours = doc._.trf_data.model_output.last_hidden_state[0]
    assert ours.shape[0] == len(ids)
    for w, ref in zip(windows, refs):
        rows = numpy.arange(w.own_start, w.own_end)
        numpy.testing.assert_allclose(ours[rows + 1], ref[rows - w.start + 1], atol=ATOL, rtol=1e-4)
    numpy.testing.assert_allclose(ours[0], refs[0][0], atol=ATOL)
    numpy.testing.assert_allclose(ours[-1], refs[-1][-1], atol=ATOL)
    # one vector per token through the alignment
    assert (doc._.trf_data.align.lengths >= 1).all() and len(doc._.trf_data.align.lengths) == len(
        doc
    )


def test_doc_alone_or_in_batch_gives_same_vectors(tiny_checkpoint, make_pipeline):
    nlp = make_pipeline(max_batch_tokens=128, max_length=128)
    alone = nlp(TEXTS[1])._.trf_data.model_output.last_hidden_state
    batched = list(nlp.pipe(TEXTS))[1]._.trf_data.model_output.last_hidden_state
    numpy.testing.assert_allclose(alone, batched, atol=ATOL)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"attn_implementation": "flash"}, "attn_implementation"),
        ({"max_length": 9000}, "max_length"),
        ({"max_length": 64, "window_overlap": 40}, "window_overlap"),
        ({"max_length": 512, "max_batch_tokens": 100}, "max_batch_tokens"),
    ],
)
def test_incompatible_settings_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        modernbert_transformer_v1(name="unused", **kwargs)


def test_varlen_on_cpu_falls_back_with_warning(tiny_checkpoint, make_pipeline):
    nlp = make_pipeline(attn_implementation="varlen")
    with pytest.warns(UserWarning, match="falling back to 'sdpa'"):
        doc = nlp("falls back")
    ref = _hf_reference(tiny_checkpoint, [_doc_ids(nlp, doc)])[0]
    numpy.testing.assert_allclose(doc._.trf_data.model_output.last_hidden_state[0], ref, atol=ATOL)


def test_using_uninitialized_encoder_says_so(tiny_checkpoint, transformer_config):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint))
    with pytest.raises(ValueError, match="initialize"):
        nlp("not initialized")
