"""`grad_clip_norm`: the encoder's gradients are clipped by their global norm before the
optimizer step, and left untouched when the setting is None."""

import pytest
import spacy
import torch

from spacy_modernbert.encoder.architecture import modernbert_transformer_v1


class _Recorder:
    """An optimizer (thinc's call signature) that changes nothing and records the gradient
    of every parameter it is handed."""

    def __init__(self):
        self.grads = {}

    def __call__(self, key, weights, gradient, *, lr_scale=1.0):
        self.grads[key[1]] = torch.tensor(gradient.copy())
        return weights, gradient


def _global_norm(tensors):
    return float(
        torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(t) for t in tensors]))
    )


def _grads_seen_by_optimizer(tiny_checkpoint, transformer_config, grad_clip_norm):
    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer", config=transformer_config(tiny_checkpoint, grad_clip_norm=grad_clip_norm)
    )
    nlp.initialize()
    model = nlp.get_pipe("transformer").model
    docs = [
        nlp.make_doc("A sentence long enough to give every layer a gradient."),
        nlp.make_doc("Two."),
    ]
    batch, backprop = model.begin_update(docs)
    hidden = batch.model_output.last_hidden_state
    torch.manual_seed(0)
    # a large output gradient, so the global norm is far above the clip
    batch.model_output.last_hidden_state = 1000.0 * torch.randn(*hidden.shape)
    backprop(batch)
    shim = model.shims[0]
    before = {
        n: p.grad.detach().clone() for n, p in shim._model.named_parameters() if p.grad is not None
    }
    recorder = _Recorder()
    model.finish_update(recorder)
    return before, recorder.grads, shim.last_grad_norm


def test_grad_clip_norm_bounds_the_global_norm(tiny_checkpoint, transformer_config):
    before, seen, reported = _grads_seen_by_optimizer(tiny_checkpoint, transformer_config, 1.0)
    assert seen and set(seen) == set(before)
    assert _global_norm(before.values()) > 10.0
    assert reported == pytest.approx(
        _global_norm(before.values()), rel=1e-4
    )  # the norm before clipping
    assert _global_norm(seen.values()) == pytest.approx(1.0, rel=1e-3)
    # global clipping scales every gradient by the same factor: the direction is kept
    scale = _global_norm(seen.values()) / _global_norm(before.values())
    for name, grad in seen.items():
        torch.testing.assert_close(grad, before[name] * scale, rtol=1e-4, atol=1e-8)


def test_grad_clip_norm_none_is_a_no_op(tiny_checkpoint, transformer_config):
    before, seen, reported = _grads_seen_by_optimizer(tiny_checkpoint, transformer_config, None)
    assert seen and set(seen) == set(before)
    assert reported is None
    for name, grad in seen.items():
        torch.testing.assert_close(grad, before[name], rtol=0, atol=0)


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_grad_clip_norm_must_be_positive(bad):
    with pytest.raises(ValueError, match="grad_clip_norm"):
        modernbert_transformer_v1("unused", grad_clip_norm=bad)
