"""`pretrain --objective mlm+contrastive`: the crops are valid views, InfoNCE prefers the true
pairs, training with it lowers the contrastive loss of held-out docs where MLM alone does not
as much, and bad settings are refused clearly."""

import pytest
import torch

from spacy_modernbert.pretrain import PretrainSettingsError
from spacy_modernbert.pretrain import checkpoint as ckpt
from spacy_modernbert.pretrain.contrastive import crop_views, info_nce, mean_pooled
from spacy_modernbert.pretrain.data import read_texts, tokenize_windows
from spacy_modernbert.pretrain.loop import pretrain
from spacy_modernbert.pretrain.model import load_masked_lm

from .conftest import run_settings


def test_crops_keep_the_specials_and_a_contiguous_piece_of_the_doc():
    windows = [[1, 10, 11, 12, 13, 14, 15, 2], [1, 20, 2], [1, 30, 31, 2]]
    views = crop_views(windows, seed=3)
    assert len(views) == 6
    for i, view in enumerate(views):
        body = windows[i // 2][1:-1]
        assert view[0] == 1 and view[-1] == 2 and len(view) >= 3
        inner = view[1:-1]
        assert any(body[s : s + len(inner)] == inner for s in range(len(body)))
        assert len(inner) >= round(0.5 * len(body))
    assert crop_views(windows, seed=3) == views
    assert any(crop_views(windows, seed=s) != views for s in range(4, 10))


def test_info_nce_is_low_for_true_pairs_and_high_for_swapped_ones():
    gen = torch.Generator().manual_seed(0)
    docs = torch.randn(8, 16, generator=gen)
    paired = torch.stack([docs, docs + 0.01 * torch.randn(8, 16, generator=gen)], 1).reshape(16, 16)
    swapped = paired.clone()
    swapped[1::2] = paired[1::2].roll(1, dims=0)
    assert float(info_nce(paired)) < 0.1 < 5.0 < float(info_nce(swapped))


def _held_out_info_nce(checkpoint, texts, seed=7):
    model, tokenizer, _, _ = load_masked_lm(str(checkpoint))
    model.eval()
    windows = tokenize_windows(texts, tokenizer, 64)[:48]
    with torch.no_grad():
        return float(info_nce(mean_pooled(model.encoder, crop_views(windows, seed), "cpu")))


def test_contrastive_pretraining_lowers_the_contrastive_loss(
    tiny_checkpoint, pretrain_text, tmp_path
):
    settings = run_settings(steps=12, batch_tokens=2048, window=64, save_every=100)
    mlm, both = tmp_path / "mlm", tmp_path / "both"
    pretrain(tiny_checkpoint, [pretrain_text], mlm, **settings)
    result = pretrain(
        tiny_checkpoint, [pretrain_text], both, objective="mlm+contrastive", **settings
    )
    assert ckpt.read_state(both)["settings"]["objective"] == "mlm+contrastive"
    assert "objective" not in ckpt.read_state(mlm)["settings"]
    assert result["step"] == 12
    texts = read_texts([pretrain_text])[-60:]
    before = _held_out_info_nce(tiny_checkpoint, texts)
    after_mlm = _held_out_info_nce(mlm, texts)
    after_both = _held_out_info_nce(both, texts)
    assert after_both < 0.7 * before, (before, after_mlm, after_both)
    assert after_both < after_mlm, (before, after_mlm, after_both)
    with pytest.raises(ckpt.RunDirError, match="other settings.*objective"):
        pretrain(tiny_checkpoint, [pretrain_text], both, resume=both, **settings)


@pytest.mark.parametrize(
    "bad,match",
    [
        (dict(objective="electra"), "--objective must be one of mlm, mlm\\+contrastive"),
        (dict(objective="mlm+contrastive", contrastive_weight=0.0), "--contrastive-weight"),
        (dict(objective="mlm+contrastive", contrastive_temperature=-1.0), "--contrastive-temp"),
    ],
)
def test_bad_objective_settings_are_refused(tiny_checkpoint, pretrain_text, tmp_path, bad, match):
    with pytest.raises(PretrainSettingsError, match=match):
        pretrain(tiny_checkpoint, [pretrain_text], tmp_path / "x", **run_settings(**bad))
