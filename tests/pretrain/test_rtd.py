"""`pretrain --objective rtd` / `mlm+rtd`: the corruption is seeded and never touches a special
piece, the unigram generator never draws one, training lowers the held-out replaced-token loss
and raises the head's accuracy, the saved checkpoint loads as before (head dropped), resuming
keeps the head, and bad settings are refused clearly."""

import pytest
import torch

from spacy_modernbert.pretrain import PretrainSettingsError
from spacy_modernbert.pretrain import checkpoint as ckpt
from spacy_modernbert.pretrain.loop import pretrain
from spacy_modernbert.pretrain.model import load_masked_lm
from spacy_modernbert.pretrain.rtd import corrupt, unigram

from .conftest import run_settings

SPECIAL = torch.tensor([0, 1, 2])


def test_corruption_is_seeded_and_never_touches_special_pieces():
    ids = torch.tensor([1] + list(range(3, 40)) * 5 + [2, 0, 0, 1, 5, 6, 2])
    probs = unigram([ids.tolist()], 50, SPECIAL)
    assert float(probs[SPECIAL].sum()) == 0.0 and abs(float(probs.sum()) - 1.0) < 1e-9
    out, labels, content = corrupt(ids, SPECIAL, probs, 0.3, seed=5)
    special = torch.isin(ids, SPECIAL)
    assert torch.equal(out[special], ids[special])  # specials kept
    assert not torch.isin(out[~special], SPECIAL).any()  # and never drawn
    assert torch.equal(content, ~special)
    assert torch.equal(labels.bool(), out != ids)
    share = float(labels[content].mean())
    assert 0.15 < share < 0.35, share
    again = corrupt(ids, SPECIAL, probs, 0.3, seed=5)
    assert torch.equal(again[0], out)
    assert not torch.equal(corrupt(ids, SPECIAL, probs, 0.3, seed=6)[0], out)


def test_unigram_of_only_specials_is_refused():
    with pytest.raises(PretrainSettingsError, match="no piece that is not a special"):
        unigram([[1, 2], [1, 2]], 10, SPECIAL)


def test_rtd_pretraining_lowers_its_loss_and_the_head_learns(
    tiny_checkpoint, pretrain_text, tmp_path
):
    settings = run_settings(steps=16, batch_tokens=2048, window=64, save_every=8, lr=2e-3)
    out = tmp_path / "rtd"
    result = pretrain(tiny_checkpoint, [pretrain_text], out, objective="rtd", **settings)
    history = result["held_out"]
    assert [h["step"] for h in history] == [0, 8, 16]
    first, last = history[0], history[-1]
    assert last["rtd_loss"] < 0.8 * first["rtd_loss"], history
    assert last["rtd_accuracy"] > first["rtd_accuracy"] + 0.05, history
    state = ckpt.read_state(out)
    assert state["settings"]["objective"] == "rtd" and state["settings"]["rtd_rate"] == 0.15
    # the Hugging Face checkpoint loads as any other (the RTD head is not in it)
    model, _, _, initialized = load_masked_lm(str(out))
    assert not initialized
    assert not any("rtd" in k for k in model.hf_state_dict())
    assert "rtd_head" in ckpt.load_optimizer_state(out)
    # resuming continues with the saved head: the resumed run ends where an uninterrupted one does
    part = tmp_path / "part"
    pretrain(tiny_checkpoint, [pretrain_text], part, objective="rtd", **{**settings, "steps": 8})
    resumed = pretrain(
        tiny_checkpoint, [pretrain_text], part, objective="rtd", resume=part, **settings
    )
    assert resumed["held_out"][-1]["rtd_loss"] == pytest.approx(last["rtd_loss"], abs=2e-3)


def test_mlm_plus_rtd_trains_both(tiny_checkpoint, pretrain_text, tmp_path):
    settings = run_settings(steps=12, batch_tokens=2048, window=64, save_every=100)
    result = pretrain(
        tiny_checkpoint, [pretrain_text], tmp_path / "both", objective="mlm+rtd", **settings
    )
    first, last = result["held_out"][0], result["held_out"][-1]
    assert last["loss"] < first["loss"] and last["rtd_loss"] < first["rtd_loss"], result


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(objective="electra"), "--objective must be one of .*rtd, mlm\\+rtd"),
        (dict(objective="rtd", rtd_rate=0.0), "--rtd-rate must be between 0 and 1"),
        (dict(objective="mlm+rtd", rtd_rate=1.0), "--rtd-rate"),
        (dict(objective="mlm+rtd", rtd_weight=0.0), "--rtd-weight must be > 0"),
    ],
)
def test_bad_rtd_settings_are_refused(tiny_checkpoint, pretrain_text, tmp_path, bad, match):
    with pytest.raises(PretrainSettingsError, match=match):
        pretrain(tiny_checkpoint, [pretrain_text], tmp_path / "x", **run_settings(**bad))


def test_cli_passes_the_rtd_settings_and_refuses_bad_ones(tiny_checkpoint, pretrain_text, tmp_path):
    from typer.testing import CliRunner

    from spacy_modernbert.__main__ import app

    args = ["pretrain", str(tiny_checkpoint), str(pretrain_text), "--output", str(tmp_path / "o")]
    bad = CliRunner().invoke(app, args + ["--objective", "rtd", "--rtd-rate", "1.5"])
    assert bad.exit_code == 1 and "--rtd-rate must be between 0 and 1" in bad.output
    assert "Traceback" not in bad.output
    ok = CliRunner().invoke(
        app,
        args
        + ["--objective", "mlm+rtd", "--rtd-rate", "0.2", "--rtd-weight", "2", "--steps", "2"]
        + ["--batch-tokens", "512", "--window", "64", "--eval-fraction", "0.05"],
    )
    assert ok.exit_code == 0, ok.output
    settings = ckpt.read_state(tmp_path / "o")["settings"]
    assert (settings["rtd_rate"], settings["rtd_weight"]) == (0.2, 2.0)
    assert "RTD loss" in ok.output
