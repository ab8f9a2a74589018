"""The pretraining run: loss goes down, the output is a standard checkpoint, saves are atomic,
resumed runs equal uninterrupted ones, and output directories are not overwritten by accident."""

import errno
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from spacy_modernbert.pretrain import checkpoint as ckpt
from spacy_modernbert.pretrain.loop import pretrain

from .conftest import ROOT, run_settings


def _weights(path):
    return load_file(str(path / "model.safetensors"))


def test_pretraining_lowers_held_out_loss_and_writes_a_hf_checkpoint(
    tiny_checkpoint, pretrain_text, tmp_path, transformer_config
):
    import spacy
    from transformers import ModernBertForMaskedLM

    out = tmp_path / "run"
    result = pretrain(
        tiny_checkpoint,
        [pretrain_text],
        out,
        **run_settings(steps=25, batch_tokens=2048, window=128, save_every=10, eval_fraction=0.1),
    )
    losses = [h["loss"] for h in result["held_out"]]
    assert [h["step"] for h in result["held_out"]] == [0, 10, 20, 25]
    assert losses[-1] < losses[0] - 0.3
    model, info = ModernBertForMaskedLM.from_pretrained(str(out), output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == []
    # it works as `name` in our configs
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=transformer_config(out))
    nlp.initialize()
    doc = nlp("The gateway returned errors.")
    assert doc._.trf_data.model_output.last_hidden_state.shape[-1] == model.config.hidden_size


def test_resume_equals_an_uninterrupted_run(tiny_checkpoint, pretrain_text, tmp_path, monkeypatch):
    whole = tmp_path / "whole"
    pretrain(tiny_checkpoint, [pretrain_text], whole, **run_settings(steps=6, save_every=3))
    cut = tmp_path / "cut"
    real_save = ckpt.save_run

    def save_then_crash(*args, **kwargs):
        real_save(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "save_run", save_then_crash)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny_checkpoint, [pretrain_text], cut, **run_settings(steps=6, save_every=3))
    monkeypatch.setattr(ckpt, "save_run", real_save)
    assert ckpt.read_state(cut)["step"] == 3
    pretrain(
        tiny_checkpoint, [pretrain_text], cut, resume=cut, **run_settings(steps=6, save_every=3)
    )
    a, b = _weights(whole), _weights(cut)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-6), key
    with pytest.raises(ckpt.RunDirError, match="other settings"):
        pretrain(tiny_checkpoint, [pretrain_text], cut, resume=cut, **run_settings(steps=6, seed=1))


def test_existing_output_directories_are_refused_unless_forced(
    tiny_checkpoint, pretrain_text, tmp_path
):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine", encoding="utf8")
    with pytest.raises(ckpt.RunDirError, match="not a pretraining run.*--overwrite"):
        pretrain(tiny_checkpoint, [pretrain_text], precious, **run_settings(steps=1))
    assert (precious / "notes.txt").read_text(encoding="utf8") == "mine"
    pretrain(tiny_checkpoint, [pretrain_text], precious, force=True, **run_settings(steps=1))
    assert ckpt.read_state(precious)["step"] == 1
    with pytest.raises(ckpt.RunDirError, match=r"previous pretraining run \(step 1\).*--resume"):
        pretrain(tiny_checkpoint, [pretrain_text], precious, **run_settings(steps=1))


def test_a_failed_save_keeps_the_previous_one(
    tiny_checkpoint, pretrain_text, tmp_path, monkeypatch
):
    from transformers import ModernBertForMaskedLM

    out = tmp_path / "run"
    calls = {"n": 0}
    real_torch_save = torch.save

    def disk_full_on_second_save(obj, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_torch_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(ckpt.torch, "save", disk_full_on_second_save)
    with pytest.raises(ckpt.RunDirError, match=r"No space left.*previous save \(step 2\).*intact"):
        pretrain(tiny_checkpoint, [pretrain_text], out, **run_settings(steps=4, save_every=2))
    assert ckpt.read_state(out)["step"] == 2
    ModernBertForMaskedLM.from_pretrained(str(out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_swap_interrupted_by_a_crash_is_recovered(tmp_path):
    out = tmp_path / "run"
    old = tmp_path / ".run.old"
    old.mkdir()
    (old / ckpt.STATE_FILE).write_text(json.dumps({"step": 5}), encoding="utf8")
    (tmp_path / ".run.new").mkdir()
    ckpt.recover(out)
    assert ckpt.read_state(out) == {"step": 5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_cli_reports_bad_input_clearly(tiny_checkpoint, tmp_path):
    binary = tmp_path / "weights.txt"
    binary.write_bytes(b"\x00\x01\x02")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spacy_modernbert",
            "pretrain",
            str(tiny_checkpoint),
            str(binary),
            "--output",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 1
    assert "weights.txt' line 1 contains NUL bytes" in " ".join((proc.stdout + proc.stderr).split())
    assert "Traceback" not in proc.stdout + proc.stderr


def test_zero_steps_saves_the_base_unchanged_with_a_head(tiny_checkpoint, pretrain_text, tmp_path):
    out = tmp_path / "run"
    pretrain(tiny_checkpoint, [pretrain_text], out, **run_settings(steps=0))
    base, saved = load_file(str(tiny_checkpoint / "model.safetensors")), _weights(out)
    assert all(torch.equal(base[k], saved[f"model.{k}"]) for k in base)
    assert "head.dense.weight" in saved and ckpt.read_state(out)["step"] == 0
