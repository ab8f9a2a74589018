"""`quantize = "int8" | "bf16"`: CPU inference on low-precision linears, fp32 weights kept.

Tolerances (tiny random checkpoint): the tiny model's layers add little to its embeddings
(|layers' contribution| ~ 0.5% of |embeddings|), so closeness of last_hidden_state alone
would hide a broken quantization. We compare the layers' contribution (last layer's output
minus the embeddings, `output_hidden_states`): relative error <= 5% for int8 (measured
~1.1-1.6%), <= 2% for bf16 (~0.4%); and per-piece cosine of the final output >= 0.999.
"""

import warnings

import numpy
import pytest
import spacy
import srsly
import torch
from safetensors.torch import load as load_safetensors
from spacy.training import Example

from spacy_modernbert.encoder import quantize as q

TEXTS = [
    "Maria Lopez works for Acme in London.",
    "Bob Stone flew to Paris with Initech, then on to Berlin for a week of meetings. " * 6,
    "ok",
    "",
]
TRAIN = [
    ("Maria Lopez works for Acme in London.", [(0, 11, "PER"), (22, 26, "ORG"), (30, 36, "LOC")]),
    ("Bob Stone flew to Paris with Initech.", [(0, 9, "PER"), (18, 23, "LOC"), (29, 36, "ORG")]),
]
KEY = "components.transformer.model.quantize"


def _pipeline(checkpoint, transformer_config, listener_ner_config, **settings):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(checkpoint, **settings))
    nlp.add_pipe("ner", config=listener_ner_config)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    return nlp, examples


@pytest.fixture(scope="module")
def saved_fp32(tiny_checkpoint, transformer_config, listener_ner_config, tmp_path_factory):
    """A trained (a few updates) fp32 transformer + ner pipeline on disk."""
    spacy.util.fix_random_seed(0)
    nlp, examples = _pipeline(tiny_checkpoint, transformer_config, listener_ner_config)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    path = tmp_path_factory.mktemp("fp32-pipeline")
    nlp.to_disk(path)
    return path


def _hidden(nlp, texts=TEXTS):
    return [d._.trf_data.model_output.last_hidden_state for d in nlp.pipe(texts) if len(d)]


def _layers_contribution(nlp, text):
    states = nlp(text)._.trf_data.model_output.hidden_states
    return states[-2][0] - states[0][0]  # last layer's output (before the final norm) - embeddings


def _min_cosine(a, b):
    a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
    return float(
        ((a * b).sum(-1) / (numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1))).min()
    )


def _relative_error(a, b):
    return float(numpy.linalg.norm(a - b) / numpy.linalg.norm(a))


@pytest.mark.parametrize(
    "mode,tolerance", [("int8", 0.05), ("bf16", 0.02)][: 2 if q.native_bf16() else 1]
)
def test_outputs_close_to_fp32(saved_fp32, mode, tolerance):
    states = {"components.transformer.model.output_hidden_states": True}
    fp32, low = (
        spacy.load(saved_fp32, config=states),
        spacy.load(saved_fp32, config={KEY: mode, **states}),
    )
    assert low.get_pipe("transformer").model.transformer.quantized == mode
    for text in TEXTS[:3]:
        a, b = _layers_contribution(fp32, text), _layers_contribution(low, text)
        assert not numpy.array_equal(a, b), "the low-precision path did not run"
        assert _relative_error(a, b) <= tolerance
    # the fast path (no hidden states kept, residual adds in place) gives the same as above
    fast = spacy.load(saved_fp32, config={KEY: mode})
    for x, y, z in zip(_hidden(fp32), _hidden(low), _hidden(fast)):
        assert _min_cosine(x, y) >= 0.999
        numpy.testing.assert_allclose(y, z, atol=1e-5)


def test_int8_linear_matches_a_float_matmul():
    torch.manual_seed(0)
    weight, bias, x = torch.randn(96, 64) * 0.05, torch.randn(96), torch.randn(40, 64)
    linear = q.Int8Linear(weight, bias, q.int8_engine())
    expected = x @ weight.t() + bias
    assert linear(x).dtype == torch.float32
    assert _relative_error(expected.numpy(), linear(x).numpy()) < 0.02


def test_update_refuses(tiny_checkpoint, transformer_config, listener_ner_config):
    nlp, examples = _pipeline(
        tiny_checkpoint, transformer_config, listener_ner_config, quantize="int8"
    )
    optimizer = nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match=r'quantize = "int8".*inference-only.*quantize = null'):
        nlp.update(examples, sgd=optimizer)


def test_unknown_mode_is_refused(tiny_checkpoint, transformer_config):
    nlp = spacy.blank("en")
    with pytest.raises(Exception, match="quantize must be one of"):
        nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, quantize="int4"))


def _stored_state(path):
    msg = srsly.msgpack_loads(
        srsly.msgpack_loads((path / "transformer" / "model").read_bytes())["shims"][0][0]
    )
    return load_safetensors(msg["state"])


def test_save_reload_stores_fp32_and_requantizes(saved_fp32, tmp_path):
    low = spacy.load(saved_fp32, config={KEY: "int8"})
    low.to_disk(tmp_path / "int8")
    stored, original = _stored_state(tmp_path / "int8"), _stored_state(saved_fp32)
    assert set(stored) == set(original)
    for key, value in original.items():
        assert stored[key].dtype == torch.float32 and torch.equal(stored[key], value), key
    again = spacy.load(tmp_path / "int8")
    assert again.get_pipe("transformer").model.transformer.quantized == "int8"
    for a, b in zip(_hidden(low), _hidden(again)):
        numpy.testing.assert_array_equal(a, b)
    # and back to fp32 by config alone: bit-identical to the fp32 pipeline
    back = spacy.load(tmp_path / "int8", config={KEY: None})
    assert back.get_pipe("transformer").model.transformer.quantized is None
    for a, b in zip(_hidden(spacy.load(saved_fp32)), _hidden(back)):
        numpy.testing.assert_array_equal(a, b)


def test_n_process_2(saved_fp32):
    nlp = spacy.load(saved_fp32, config={KEY: "int8"})
    texts = TEXTS * 2
    one = [
        (d._.trf_data.model_output.last_hidden_state.tolist(), [e.text for e in d.ents])
        for d in nlp.pipe(texts, n_process=1, batch_size=2)
    ]
    two = [
        (d._.trf_data.model_output.last_hidden_state.tolist(), [e.text for e in d.ents])
        for d in nlp.pipe(texts, n_process=2, batch_size=2)
    ]
    assert one == two


def test_bf16_without_native_bf16_warns_and_stays_fp32(saved_fp32, monkeypatch):
    monkeypatch.setattr(q, "native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="native bf16"):
        nlp = spacy.load(saved_fp32, config={KEY: "bf16"})
    assert nlp.get_pipe("transformer").model.transformer.quantized is None
    for a, b in zip(_hidden(spacy.load(saved_fp32)), _hidden(nlp)):
        numpy.testing.assert_array_equal(a, b)


def test_no_deprecation_noise_at_load(saved_fp32):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spacy.load(saved_fp32, config={KEY: "int8"})


def test_quantize_command_writes_a_quantized_copy(saved_fp32, tmp_path):
    from spacy_modernbert.cli.quantize import quantize

    report = quantize(saved_fp32, tmp_path / "copy", mode="int8")
    assert report.components == ["transformer"] and report.min_cosine >= 0.999
    assert report.entity_agreement is not None
    config = spacy.util.load_config(tmp_path / "copy" / "config.cfg")
    assert config["components"]["transformer"]["model"]["quantize"] == "int8"
    assert (
        spacy.load(tmp_path / "copy").get_pipe("transformer").model.transformer.quantized == "int8"
    )
    with pytest.raises(SystemExit):
        quantize(saved_fp32, saved_fp32, mode="int8")
    with pytest.raises(SystemExit):
        quantize(saved_fp32, tmp_path / "other", mode="int4")
