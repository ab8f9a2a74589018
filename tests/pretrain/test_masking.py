"""Masking: transformers' 80/10/10 rule on packed ids; special pieces are never masked."""

import torch

from spacy_modernbert.pretrain.masking import make_collator, mask_packed


def test_specials_never_masked_and_80_10_10(tiny_checkpoint):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    collator = make_collator(tok, 0.5)
    special = torch.tensor(sorted(set(tok.all_special_ids)))
    n_windows, width = 400, 50
    body = torch.randint(len(special) + 10, len(tok), (n_windows, width))
    windows = torch.cat(
        [
            torch.full((n_windows, 1), tok.cls_token_id),
            body,
            torch.full((n_windows, 1), tok.sep_token_id),
        ],
        1,
    )
    ids = windows.flatten()
    inputs, labels = mask_packed(collator, ids, special, seed=0)
    masked = labels != -100
    assert not masked[torch.isin(ids, special)].any()
    assert torch.equal(labels[masked], ids[masked])
    assert torch.equal(inputs[~masked], ids[~masked])
    frac = masked.float().sum() / (n_windows * width)
    assert abs(float(frac) - 0.5) < 0.02
    as_mask = (inputs[masked] == tok.mask_token_id).float().mean()
    kept = (inputs[masked] == ids[masked]).float().mean()
    assert abs(float(as_mask) - 0.8) < 0.02
    assert abs(float(kept) - 0.1) < 0.02
    again, _ = mask_packed(collator, ids, special, seed=0)
    other, _ = mask_packed(collator, ids, special, seed=1)
    assert torch.equal(again, inputs) and not torch.equal(other, inputs)
