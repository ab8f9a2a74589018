"""`learn_rate_scale`: the optimizer's rate times the scale for the encoder's parameters, the
optimizer's own rate for the heads on top; 1.0 (default) changes nothing; bad values refused."""

import math

import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import SGD

from spacy_modernbert.encoder.architecture import modernbert_transformer_v1


def _pipeline(tiny_checkpoint, transformer_config, listener_ner_config, **settings):
    spacy.util.fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, **settings))
    nlp.add_pipe("ner", config=listener_ner_config)
    return nlp


def _examples(nlp):
    doc = nlp.make_doc("Alice met Bob in Paris last week.")
    return [Example.from_dict(doc, {"entities": [(0, 5, "PER"), (10, 13, "PER"), (17, 22, "LOC")]})]


def _one_step(nlp, learn_rate):
    """Deltas of every encoder parameter and of every ner parameter after one plain-SGD update."""
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    shim = nlp.get_pipe("transformer").model.shims[0]
    ner = nlp.get_pipe("ner").model
    enc_before = {n: p.detach().clone() for n, p in shim._model.named_parameters()}
    params = [
        (node, name) for node in ner.walk() for name in node.param_names if node.has_param(name)
    ]
    ner_before = [node.get_param(name).copy() for node, name in params]
    # as `spacy train` steps: every gradient first, then each pipe's finish_update
    nlp.update(examples, sgd=False, drop=0.0)
    sgd = SGD(learn_rate)
    for _, pipe in nlp.pipeline:
        pipe.finish_update(sgd)
    enc = {n: p.detach() - enc_before[n] for n, p in shim._model.named_parameters()}
    ner_delta = [node.get_param(name) - old for (node, name), old in zip(params, ner_before)]
    return enc, ner_delta


def test_the_encoder_moves_at_the_scaled_rate_and_the_head_at_the_optimizers(
    tiny_checkpoint, transformer_config, listener_ner_config
):
    full_enc, full_ner = _one_step(
        _pipeline(tiny_checkpoint, transformer_config, listener_ner_config), 0.1
    )
    half_enc, half_ner = _one_step(
        _pipeline(tiny_checkpoint, transformer_config, listener_ner_config, learn_rate_scale=0.5),
        0.1,
    )
    moved = [n for n, d in full_enc.items() if float(d.abs().max()) > 0]
    assert len(moved) > len(full_enc) // 2  # the step reached the encoder
    for name in moved:
        torch.testing.assert_close(half_enc[name], 0.5 * full_enc[name], rtol=1e-3, atol=1e-7)
    assert any(abs(d).max() > 0 for d in full_ner)
    for half, full in zip(half_ner, full_ner):  # the head: the optimizer's rate, whatever the scale
        assert abs(half - full).max() <= 1e-6


class _Recorder:
    def __init__(self):
        self.scales = {}

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.scales[key[1]] = lr_scale
        return weights, gradient


@pytest.mark.parametrize("scale", [None, 0.25])
def test_every_encoder_parameter_is_handed_the_scale(tiny_checkpoint, transformer_config, scale):
    settings = {} if scale is None else {"learn_rate_scale": scale}
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(tiny_checkpoint, **settings))
    nlp.initialize()
    model = nlp.get_pipe("transformer").model
    batch, backprop = model.begin_update([nlp.make_doc("A sentence for every layer.")])
    hidden = batch.model_output.last_hidden_state
    batch.model_output.last_hidden_state = torch.ones(*hidden.shape)
    backprop(batch)
    recorder = _Recorder()
    model.finish_update(recorder)
    assert recorder.scales
    assert set(recorder.scales.values()) == {1.0 if scale is None else scale}


def test_the_scale_survives_save_load_and_replace_listeners(
    tiny_checkpoint, transformer_config, listener_ner_config, tmp_path
):
    nlp = _pipeline(tiny_checkpoint, transformer_config, listener_ner_config, learn_rate_scale=0.5)
    nlp.initialize(lambda: _examples(nlp))
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("transformer").model.shims[0].learn_rate_scale == 0.5
    loaded.replace_listeners("transformer", "ner", ["model.tok2vec"])
    own = [
        shim
        for node in loaded.get_pipe("ner").model.walk()
        for shim in node.shims
        if hasattr(shim, "learn_rate_scale")
    ]
    assert own and all(shim.learn_rate_scale == 0.5 for shim in own)


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, math.nan, math.inf, True, "0.5", None])
def test_learn_rate_scale_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match="learn_rate_scale.*got"):
        modernbert_transformer_v1("unused", learn_rate_scale=bad)
