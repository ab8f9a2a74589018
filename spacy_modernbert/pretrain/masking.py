"""The 80/10/10 masking rule, from transformers' own `DataCollatorForLanguageModeling`.

We do not re-derive it: the collator's `torch_mask_tokens` masks each non-special piece
with probability `mlm_probability`, then replaces 80% of those with [MASK], 10% with a
random id and keeps 10%. We call it on the packed `(1, total)` ids with an explicit
special-tokens mask, so [CLS]/[SEP]/[PAD] (and every other special id) are never masked.
Each call gets its own seeded generator: a step's masks depend only on (seed, step), which
makes resumed and data-parallel runs see exactly the masks of a single uninterrupted run.
"""

from typing import Any, Tuple

import torch

from . import PretrainSettingsError


def make_collator(tokenizer: Any, mlm_probability: float):
    from transformers import DataCollatorForLanguageModeling

    if tokenizer.mask_token is None:
        raise PretrainSettingsError(
            "The checkpoint's tokenizer has no [MASK] token, so it cannot be pretrained as a masked LM."
        )
    if not 0.0 < mlm_probability < 1.0:
        raise PretrainSettingsError(
            f"--mask-prob must be between 0 and 1 (exclusive); got {mlm_probability}."
        )
    return DataCollatorForLanguageModeling(
        tokenizer, mlm=True, mlm_probability=mlm_probability, return_tensors="pt"
    )


def mask_packed(
    collator: Any, ids: torch.Tensor, special_ids: torch.Tensor, seed: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(masked input ids, labels with -100 where not masked) for packed `ids` of shape (T,)."""
    special = torch.isin(ids, special_ids)
    collator.generator = torch.Generator().manual_seed(seed)
    try:
        inputs, labels = collator.torch_mask_tokens(
            ids.clone()[None, :], special_tokens_mask=special[None, :]
        )
    finally:
        collator.generator = None
    return inputs[0], labels[0]
