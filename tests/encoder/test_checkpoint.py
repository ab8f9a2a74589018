"""Checkpoints that load correctly or are refused with a message naming the problem.

Every bad checkpoint is built from the tiny fixture: renamed keys, a removed layer, wrong
shapes, a vocabulary larger than the embedding matrix, task-model (MLM) and base-model
layouts, fp16/bf16 files, sharded safetensors, and .bin next to .safetensors.
"""

import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, ModernBertForMaskedLM, ModernBertModel

from spacy_modernbert.encoder.checkpoint import CheckpointError, load_checkpoint

WEIGHTS = "model.safetensors"
pytestmark = pytest.mark.hf_compat  # no spacy-transformers: also runs against transformers 5.x


@pytest.fixture
def copy_of(tiny_checkpoint, tmp_path):
    """A writable copy of the tiny checkpoint, and its original weights."""
    ckpt = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, ckpt)
    return ckpt, load_file(str(tiny_checkpoint / WEIGHTS))


def _copy_tokenizer(source, target):
    for path in source.iterdir():
        if path.name not in ("config.json", WEIGHTS):
            shutil.copy(path, target)


def _encoder_weights(name):
    """Our encoder's weights, back in HF naming, after a strict load (no warning allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder, _ = load_checkpoint(name)
    return encoder.to_hf_state_dict()


def _assert_same(ours, reference):
    assert set(ours) == set(reference)
    for key, value in reference.items():
        assert ours[key].dtype == torch.float32, key
        torch.testing.assert_close(ours[key], value.float(), atol=0, rtol=0)


def test_base_model_checkpoint_loads_exactly(tiny_checkpoint):
    _assert_same(_encoder_weights(tiny_checkpoint), load_file(str(tiny_checkpoint / WEIGHTS)))


def test_renamed_keys_are_refused(copy_of):
    ckpt, state = copy_of
    save_file(
        {f"encoder.{k.replace('layers', 'blocks')}": v for k, v in state.items()},
        str(ckpt / WEIGHTS),
    )
    with pytest.raises(
        CheckpointError,
        match=r"lacks .*embeddings\.tok_embeddings\.weight.*none of the encoder's weight names",
    ):
        load_checkpoint(ckpt)


def test_missing_layer_is_refused(copy_of):
    ckpt, state = copy_of
    del state["layers.1.attn.Wqkv.weight"], state["layers.1.attn.Wo.weight"]
    save_file(state, str(ckpt / WEIGHTS))
    with pytest.raises(
        CheckpointError, match=r"lacks 2 of .*layers\.1\.attn\.Wqkv\.weight.*incomplete"
    ):
        load_checkpoint(ckpt)


def test_config_with_more_layers_than_weights_is_refused(copy_of):
    ckpt, _ = copy_of
    config = json.loads((ckpt / "config.json").read_text())
    config["num_hidden_layers"] += 1
    config.pop("layer_types", None)  # transformers 5.x writes one kind per layer
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"layers\.4\..*num_hidden_layers = 5"):
        load_checkpoint(ckpt)


def test_wrong_shape_is_refused(copy_of):
    ckpt, state = copy_of
    state["layers.2.mlp.Wo.weight"] = state["layers.2.mlp.Wo.weight"][:, :-1].contiguous()
    save_file(state, str(ckpt / WEIGHTS))
    with pytest.raises(
        CheckpointError,
        match=r"wrong shape .*layers\.2\.mlp\.Wo\.weight is \(64, 95\), config needs \(64, 96\)",
    ):
        load_checkpoint(ckpt)


def test_vocabulary_larger_than_embedding_matrix_is_refused(copy_of):
    ckpt, state = copy_of
    config = json.loads((ckpt / "config.json").read_text())
    config["vocab_size"] += 100
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError,
        match=r"vocab_size \(\d+\) differs from the \d+ rows of the embedding matrix",
    ):
        load_checkpoint(ckpt)


def test_tokenizer_larger_than_embedding_matrix_is_refused(copy_of):
    ckpt, state = copy_of
    rows = state["embeddings.tok_embeddings.weight"].shape[0]
    config = json.loads((ckpt / "config.json").read_text())
    config["vocab_size"] = rows - 50
    config["pad_token_id"] = min(config["pad_token_id"], rows - 51)
    (ckpt / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        CheckpointError, match=r"tokenizer .* has \d+ tokens but the model's vocabulary"
    ):
        load_checkpoint(ckpt)


def test_masked_lm_checkpoint_loads_its_encoder(tiny_checkpoint, tmp_path):
    config = AutoConfig.from_pretrained(str(tiny_checkpoint))
    torch.manual_seed(1)
    mlm = ModernBertForMaskedLM(config)
    mlm.save_pretrained(str(tmp_path))
    _copy_tokenizer(tiny_checkpoint, tmp_path)
    file_keys = set(load_file(str(tmp_path / WEIGHTS)))
    assert any(k.startswith("model.") for k in file_keys) and any(
        k.startswith("head.") for k in file_keys
    )
    _assert_same(_encoder_weights(tmp_path), mlm.model.state_dict())  # the head is dropped silently


def test_extra_weights_are_listed_in_one_warning(copy_of):
    ckpt, state = copy_of
    state["pooler.dense.weight"] = torch.zeros(2, 2)
    state["layers.0.attn.extra"] = torch.zeros(2)
    save_file(state, str(ckpt / WEIGHTS))
    with pytest.warns(UserWarning) as record:
        encoder, _ = load_checkpoint(ckpt)
    messages = [str(w.message) for w in record if "does not use" in str(w.message)]
    assert (
        len(messages) == 1
        and "pooler.dense.weight" in messages[0]
        and "layers.0.attn.extra" in messages[0]
    )
    assert "pooler.dense.weight" not in encoder.to_hf_state_dict()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_weights_are_cast_to_float32(copy_of, dtype):
    ckpt, state = copy_of
    half = {k: v.to(dtype) for k, v in state.items()}
    save_file(half, str(ckpt / WEIGHTS))
    _assert_same(_encoder_weights(ckpt), half)


def test_sharded_safetensors_with_index(tiny_checkpoint, tmp_path):
    model = ModernBertModel.from_pretrained(str(tiny_checkpoint))
    model.save_pretrained(str(tmp_path), max_shard_size="100KB")
    _copy_tokenizer(tiny_checkpoint, tmp_path)
    shards = sorted(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").is_file()
    assert not (tmp_path / WEIGHTS).exists()
    _assert_same(_encoder_weights(tmp_path), load_file(str(tiny_checkpoint / WEIGHTS)))


def test_shard_index_naming_a_file_outside_the_checkpoint_is_refused(copy_of):
    ckpt, state = copy_of
    (ckpt / WEIGHTS).unlink()
    (ckpt / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: "../elsewhere.safetensors" for k in state}})
    )
    with pytest.raises(CheckpointError, match=r"names '\.\./elsewhere\.safetensors'.*refusing"):
        load_checkpoint(ckpt)


def test_shard_missing_from_disk_is_refused(copy_of):
    ckpt, state = copy_of
    (ckpt / WEIGHTS).unlink()
    (ckpt / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: "model-00001-of-00002.safetensors" for k in state}})
    )
    with pytest.raises(
        CheckpointError, match=r"shard 'model-00001-of-00002\.safetensors'.*incomplete"
    ):
        load_checkpoint(ckpt)


def test_safetensors_preferred_over_bin(copy_of):
    ckpt, state = copy_of
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, str(ckpt / "pytorch_model.bin"))
    _assert_same(_encoder_weights(ckpt), state)


def test_bin_only_loads_without_unpickling_code(copy_of):
    ckpt, state = copy_of
    (ckpt / WEIGHTS).unlink()
    torch.save(state, str(ckpt / "pytorch_model.bin"))
    _assert_same(_encoder_weights(ckpt), state)


class _Payload:
    """An object a pickle would have to construct: weights_only loading must refuse it."""

    def __reduce__(self):
        return (print, ("code ran",))


def test_bin_with_pickled_code_is_refused(copy_of):
    ckpt, state = copy_of
    (ckpt / WEIGHTS).unlink()
    torch.save({**state, "payload": _Payload()}, str(ckpt / "pytorch_model.bin"))
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin.*could not be read"):
        load_checkpoint(ckpt)


def test_no_weights_is_refused_unless_training_from_scratch(copy_of):
    ckpt, _ = copy_of
    (ckpt / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=r"has no weights: expected model\.safetensors"):
        load_checkpoint(ckpt)
    encoder, _ = load_checkpoint(ckpt, from_scratch=True)
    assert encoder.config.num_hidden_layers == 4
