"""The encoder inside spaCy pipelines: listeners, training, serialization, bad checkpoints."""

import json
import shutil

import numpy
import pytest
import spacy
from spacy.training import Example

from spacy_modernbert.encoder.checkpoint import CheckpointError, load_checkpoint

TRAIN = [
    ("Maria Lopez works for Acme in London.", [(0, 11, "PER"), (22, 26, "ORG"), (30, 36, "LOC")]),
    ("Bob Stone flew to Paris with Initech.", [(0, 9, "PER"), (18, 23, "LOC"), (29, 36, "ORG")]),
    ("Acme opened an office in Berlin.", [(0, 4, "ORG"), (25, 31, "LOC")]),
]


def _ner_pipeline(checkpoint, transformer_config, listener_ner_config, **overrides):
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(checkpoint, **overrides))
    nlp.add_pipe("ner", config=listener_ner_config)
    examples = [Example.from_dict(nlp.make_doc(t), {"entities": e}) for t, e in TRAIN]
    return nlp, examples


def _encoder_weights(nlp):
    return {
        k: v.detach().clone()
        for k, v in nlp.get_pipe("transformer").model.shims[0]._model.state_dict().items()
    }


def test_ner_trains_through_listener(tiny_checkpoint, transformer_config, listener_ner_config):
    spacy.util.fix_random_seed(0)
    nlp, examples = _ner_pipeline(tiny_checkpoint, transformer_config, listener_ner_config)
    optimizer = nlp.initialize(lambda: examples)
    before = _encoder_weights(nlp)
    losses = []
    for _ in range(20):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["ner"])
    assert losses[-1] < losses[0] * 0.5
    # and the entities are learned: the training docs come out right
    predicted = [
        [(e.start_char, e.end_char, e.label_) for e in doc.ents]
        for doc in nlp.pipe(t for t, _ in TRAIN)
    ]
    assert predicted == [sorted(e) for _, e in TRAIN]
    after = _encoder_weights(nlp)
    changed = [k for k in before if not numpy.allclose(before[k].numpy(), after[k].numpy())]
    assert len(changed) > len(before) // 2, "the listener's backprop must update the encoder"
    assert all(doc._.trf_data is not None for doc in nlp.pipe([t for t, _ in TRAIN]))


def test_trf_data_shape_and_alignment(tiny_checkpoint, transformer_config, listener_ner_config):
    nlp, examples = _ner_pipeline(tiny_checkpoint, transformer_config, listener_ner_config)
    nlp.initialize(lambda: examples)
    doc = nlp("Hello  there, 😀 world")
    data = doc._.trf_data
    hidden = data.model_output.last_hidden_state
    assert hidden.shape[0] == 1 and hidden.shape[2] == nlp.get_pipe("transformer").model.get_dim(
        "nO"
    )
    assert hidden.shape[1] == len(data.wordpieces.strings[0])
    assert len(data.align.lengths) == len(doc) and (data.align.lengths >= 1).all()


def test_to_disk_load_without_checkpoint_or_network(
    tiny_checkpoint, tmp_path, transformer_config, listener_ner_config, monkeypatch
):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    nlp, examples = _ner_pipeline(ckpt, transformer_config, listener_ner_config)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    texts = [t for t, _ in TRAIN] + ["", "a much longer text " * 30]
    expected = [
        (d._.trf_data.model_output.last_hidden_state, [(e.start, e.end, e.label_) for e in d.ents])
        for d in nlp.pipe(texts)
    ]
    nlp.to_disk(tmp_path / "pipeline")
    shutil.rmtree(ckpt)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = spacy.load(tmp_path / "pipeline")
    for doc, (hidden, ents) in zip(loaded.pipe(texts), expected):
        if len(doc):
            numpy.testing.assert_array_equal(doc._.trf_data.model_output.last_hidden_state, hidden)
        assert [(e.start, e.end, e.label_) for e in doc.ents] == ents
    # bytes round trip too
    again = spacy.blank("en")
    again.add_pipe("transformer", config=transformer_config(ckpt))
    again.add_pipe("ner", config=listener_ner_config)
    again.from_bytes(loaded.to_bytes())
    # the same batch as `expected` (a doc alone may take another attention layout: equal
    # to ~1e-7, not bit for bit)
    for doc, (hidden, _ents) in zip(again.pipe(texts), expected):
        if len(doc):
            numpy.testing.assert_array_equal(doc._.trf_data.model_output.last_hidden_state, hidden)


def test_missing_checkpoint_directory():
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint("/nonexistent/modernbert-checkpoint")


def test_non_modernbert_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"model_type": "bert", "architectures": ["BertModel"]})
    )
    with pytest.raises(CheckpointError, match="'bert' model, not ModernBERT"):
        load_checkpoint(tmp_path)


def test_hub_id_offline_gives_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(CheckpointError, match="local checkpoint path"):
        load_checkpoint("answerdotai/ModernBERT-base-not-cached")


def test_tokenizer_vocab_mismatch(tiny_checkpoint, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["vocab_size"] = 10
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(ckpt)


def test_truncated_weights(tiny_checkpoint, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(ckpt)


def test_pipeline_directory_with_missing_file(
    tiny_checkpoint, tmp_path, transformer_config, listener_ner_config
):
    nlp, examples = _ner_pipeline(tiny_checkpoint, transformer_config, listener_ner_config)
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "pipeline")
    (tmp_path / "pipeline" / "transformer" / "model").unlink()
    with pytest.raises(FileNotFoundError, match="transformer/model"):
        spacy.load(tmp_path / "pipeline")


def test_config_override_at_load_wins_over_the_saved_settings(
    tiny_checkpoint, tmp_path, transformer_config, listener_ner_config
):
    """thinc restores attrs from the saved bytes: a load-time override must not be silently undone."""
    nlp, examples = _ner_pipeline(tiny_checkpoint, transformer_config, listener_ner_config)
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "pipeline")
    plain = spacy.load(tmp_path / "pipeline")
    assert "hidden_states" not in plain("A short text here.")._.trf_data.model_output
    key = "components.transformer.model."
    loaded = spacy.load(
        tmp_path / "pipeline",
        config={key + "output_hidden_states": True, key + "max_batch_tokens": 12345},
    )
    model = loaded.get_pipe("transformer").model
    assert model.attrs["output_hidden_states"] is True and model.attrs["max_batch_tokens"] == 12345
    doc = loaded("A short text here.")
    assert (
        len(doc._.trf_data.model_output.hidden_states)
        == model.transformer.config.num_hidden_layers + 1
    )
    numpy.testing.assert_allclose(
        doc._.trf_data.model_output.last_hidden_state,
        plain("A short text here.")._.trf_data.model_output.last_hidden_state,
        atol=1e-6,
    )


def test_pipeline_with_truncated_model_file(
    tiny_checkpoint, tmp_path, transformer_config, listener_ner_config
):
    nlp, examples = _ner_pipeline(tiny_checkpoint, transformer_config, listener_ner_config)
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "pipeline")
    model_file = tmp_path / "pipeline" / "transformer" / "model"
    model_file.write_bytes(model_file.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="unreadable or truncated|corrupt"):
        spacy.load(tmp_path / "pipeline")


def test_pipeline_initialize_refuses_renamed_checkpoint(
    tiny_checkpoint, tmp_path, transformer_config
):
    """The silent path of the past: nlp.initialize() used to run on random weights."""
    import shutil

    from safetensors.torch import load_file, save_file

    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    state = load_file(str(ckpt / "model.safetensors"))
    save_file({f"bert.{k}": v for k, v in state.items()}, str(ckpt / "model.safetensors"))
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(ckpt))
    with pytest.raises(CheckpointError, match="none of the encoder's weight names"):
        nlp.initialize()
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(ckpt, from_scratch=True))
    nlp.initialize()  # asked for explicitly
    assert nlp("Hello there.")._.trf_data.model_output.last_hidden_state.shape[-1] == 64


def test_spacy_transformers_habits(tiny_checkpoint, transformer_config):
    """`model.transformer` (torch module), `model.tokenizer`, and per-layer hidden states."""
    import torch
    from transformers import ModernBertModel

    nlp = spacy.blank("en")
    nlp.add_pipe(
        "transformer", config=transformer_config(tiny_checkpoint, output_hidden_states=True)
    )
    model = nlp.get_pipe("transformer").model
    assert model.transformer is None and model.tokenizer is None
    nlp.initialize()
    assert isinstance(model.transformer, torch.nn.Module)
    assert model.tokenizer("Hello")["input_ids"][0] == model.tokenizer.cls_token_id
    assert set(model.transformer.to_hf_state_dict()) == set(
        ModernBertModel.from_pretrained(str(tiny_checkpoint)).state_dict()
    )
    docs = list(
        nlp.pipe(["A short text here.", "", "Another, somewhat longer text with more words in it."])
    )
    layers = model.transformer.config.num_hidden_layers
    hf = ModernBertModel.from_pretrained(str(tiny_checkpoint)).eval()
    for doc in docs:
        out = doc._.trf_data.model_output
        assert len(out.hidden_states) == layers + 1
        assert all(h.shape == out.last_hidden_state.shape for h in out.hidden_states)
        numpy.testing.assert_array_equal(out.hidden_states[-1], out.last_hidden_state)
        if len(doc):
            ids = torch.tensor(doc._.trf_data.wordpieces.input_ids, dtype=torch.long)
            with torch.no_grad():
                ref = hf(input_ids=ids, output_hidden_states=True).hidden_states
            for ours, theirs in zip(out.hidden_states[:-1], ref[:-1]):  # 4.x's last one is pre-norm
                numpy.testing.assert_allclose(ours, theirs.numpy(), atol=2e-5, rtol=1e-4)
    # off (the default): no hidden states kept
    plain = spacy.blank("en")
    plain.add_pipe("transformer", config=transformer_config(tiny_checkpoint))
    plain.initialize()
    assert "hidden_states" not in plain("A short text here.")._.trf_data.model_output
