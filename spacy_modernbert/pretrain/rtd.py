"""Replaced-token detection for `pretrain --objective rtd` / `mlm+rtd` (issue 32; ELECTRA, DATE).

Why: the one-class detectors of `anomaly_scorer` look for pieces of a doc that do not fit
normal text; masked-LM training alone did not shape the encoder for that (more MLM steps
lowered the loss without raising the one-class AUROC). ELECTRA (Clark et al., ICLR 2020)
trains the encoder to tell, for every piece, whether it is the original or a replacement,
and DATE (Manolache et al., NAACL 2021) scores a doc's anomaly by how many of its pieces look
replaced. That is the task here.

The generator (the simplest faithful one, stated): each non-special piece of a window is
replaced with probability `rate` (default RATE) by a piece drawn from the *unigram
distribution of the training windows' pieces* (special pieces have probability 0), not by
a jointly trained MLM generator. A draw equal to the original piece counts as original
(ELECTRA's labelling: label = the input differs from the original).

Invariants: the corruption depends only on the seed it gets (the step's own seed, as the
MLM masks); special pieces ([CLS], [SEP], [PAD], ...) are never replaced and never enter the
loss; the loss is the mean binary cross-entropy over the non-special pieces of the step. The
head (`RtdHead`: dense, GELU, dense to one logit, as ELECTRA's discriminator head) is a
submodule of the trained model while training; the saved Hugging Face checkpoint drops it
(the encoder is what the anomaly detectors read); a run directory keeps it beside the
optimizer state so that `--resume` continues with it.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from . import PretrainSettingsError

# The objectives of this module (`pretrain/loop.py` accepts them beside contrastive.OBJECTIVES).
OBJECTIVES = ("rtd", "mlm+rtd")
# The share of non-special pieces replaced (ELECTRA masks 15% for its generator).
RATE = 0.15
# The key of the head's weights in a run directory's optimizer state.
STATE_KEY = "rtd_head"


def check_settings(rate: float, weight: float) -> None:
    if not 0.0 < rate < 1.0:
        raise PretrainSettingsError(
            f"--rtd-rate must be between 0 and 1 (exclusive): the share of pieces replaced; got {rate}."
        )
    if not weight > 0.0:
        raise PretrainSettingsError(f"--rtd-weight must be > 0; got {weight}.")


class RtdHead(nn.Module):
    """Hidden states (n, width) -> one logit per piece: is it a replacement?"""

    def __init__(self, width: int):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.out = nn.Linear(width, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(nn.functional.gelu(self.dense(hidden.float()))).squeeze(-1)


def unigram(
    windows: Sequence[Sequence[int]], vocab_size: int, special: torch.Tensor
) -> torch.Tensor:
    """The generator: the relative frequency of each piece id in `windows`, 0 for specials."""
    ids = torch.tensor([t for w in windows for t in w], dtype=torch.long)
    counts = torch.bincount(ids, minlength=vocab_size)[:vocab_size].double()
    counts[special[special < vocab_size]] = 0.0
    if counts.sum() <= 0:
        raise PretrainSettingsError(
            "The training text has no piece that is not a special token: nothing to replace."
        )
    return counts / counts.sum()


def corrupt(
    ids: torch.Tensor, special: torch.Tensor, probs: torch.Tensor, rate: float, seed: int
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(corrupted ids, labels 1.0 where the piece differs from the original, the non-special
    positions) of packed `ids` (T,); seeded: the same seed gives the same corruption."""
    gen = torch.Generator().manual_seed(int(seed))
    content = ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=gen) < rate) & content
    out = ids.clone()
    n = int(chosen.sum())
    if n:
        out[chosen] = torch.multinomial(probs.float(), n, replacement=True, generator=gen)
    return out, (out != ids).float(), content


def rtd_loss(
    encoder: nn.Module,
    head: RtdHead,
    windows: Sequence[Sequence[int]],
    probs: torch.Tensor,
    special: torch.Tensor,
    rate: float,
    seed: int,
    device,
) -> Tuple[torch.Tensor, Dict[str, float]]:
    """(mean binary cross-entropy over the non-special pieces of `windows` corrupted with
    `seed`, {"accuracy", "replaced", "pieces"}) — the head's accuracy at logit 0."""
    from .model import pack

    ids, positions, lengths = pack(sorted(windows, key=len, reverse=True))
    inputs, labels, content = corrupt(ids, special, probs, rate, seed)
    rows = content.nonzero().flatten()
    if not len(rows):
        zero = torch.zeros((), device=device)
        return zero, {"accuracy": 1.0, "replaced": 0.0, "pieces": 0.0}
    hidden = encoder(
        inputs.to(device), positions.to(device), [(0, int(ids.shape[0]), lengths)], rows.to(device)
    )
    logits = head(hidden)
    target = labels[rows].to(device)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, target)
    with torch.no_grad():
        correct = float(((logits > 0).float() == target).float().sum())
    return loss, {
        "accuracy": correct / len(rows),
        "replaced": float(target.sum()),
        "pieces": float(len(rows)),
    }


@torch.no_grad()
def held_out(
    encoder: nn.Module,
    head: RtdHead,
    windows: List[List[int]],
    probs: torch.Tensor,
    special: torch.Tensor,
    rate: float,
    seed: int,
    device,
    batch: int = 64,
) -> Optional[Dict[str, float]]:
    """Mean RTD loss and accuracy per piece on the held-out windows (fixed corruption, eval mode)."""
    if not windows:
        return None
    modules = (encoder, head)
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    total, correct, count = 0.0, 0.0, 0.0
    for i, start in enumerate(range(0, len(windows), batch)):
        loss, info = rtd_loss(
            encoder, head, windows[start : start + batch], probs, special, rate, seed + i, device
        )
        total += float(loss) * info["pieces"]
        correct += info["accuracy"] * info["pieces"]
        count += info["pieces"]
    for m, w in zip(modules, was):
        m.train(w)
    return {"rtd_loss": total / max(count, 1.0), "rtd_accuracy": correct / max(count, 1.0)}
