"""The contrastive objective of `pretrain --objective mlm+contrastive` (issue 32).

Why: the one-class detectors of `anomaly_scorer` score a doc by the cosine distance of its
mean-pooled embedding (and token vectors) to those of normal docs, but masked-LM training
alone does not shape that geometry (more MLM steps lowered the loss without raising the
one-class AUROC). A SimCSE-style objective does: two random crops of the same doc are
positives, the other docs of the step are negatives (InfoNCE on the L2-normalized
mean-pooled last hidden states, symmetric, temperature `TEMPERATURE` unless set).

Invariants: the views depend only on the seed they get (`crop_views`); each view keeps
its `[CLS]`/`[SEP]` and at least one content piece; the loss is added to the MLM loss per
masked piece (`pretrain/loop.py`), weighted by `--contrastive-weight`. Under DDP each
process contrasts its own share of the step's docs (its negatives are those docs).
"""

import random
from typing import List, Sequence, Tuple

import torch

OBJECTIVES = ("mlm", "mlm+contrastive")
# InfoNCE temperature (SimCSE's 0.05).
TEMPERATURE = 0.05
# A view keeps a random contiguous crop of this fraction range of the doc's pieces.
CROP_RANGE = (0.5, 1.0)
# At most this many docs per step and process enter the contrastive loss (bounds its cost).
MAX_DOCS = 64


def crop_views(windows: Sequence[Sequence[int]], seed: int) -> List[List[int]]:
    """Two random crops of each `[CLS] ... [SEP]` window: [a0, b0, a1, b1, ...]."""
    rng = random.Random(seed)
    views: List[List[int]] = []
    for w in windows:
        body = list(w[1:-1]) or list(w)
        for _ in range(2):
            n = max(1, round(len(body) * rng.uniform(*CROP_RANGE)))
            start = rng.randint(0, len(body) - n)
            views.append([w[0], *body[start : start + n], w[-1]])
    return views


def mean_pooled(encoder: torch.nn.Module, views: List[List[int]], device) -> torch.Tensor:
    """The mean of each view's last hidden states (all its pieces), one row per view."""
    from .model import pack

    ids, positions, lengths = pack(views)
    rows = torch.arange(int(ids.shape[0]), device=device)
    hidden = encoder(ids.to(device), positions.to(device), [(0, int(ids.shape[0]), lengths)], rows)
    owner = torch.repeat_interleave(
        torch.arange(len(lengths), device=device), torch.tensor(lengths, device=device)
    )
    sums = torch.zeros(len(lengths), hidden.shape[1], device=device, dtype=hidden.dtype)
    sums.index_add_(0, owner, hidden)
    return sums / torch.tensor(lengths, device=device, dtype=hidden.dtype)[:, None]


def info_nce(pooled: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Symmetric InfoNCE of paired rows [a0, b0, a1, b1, ...]: a_i's positive is b_i."""
    z = torch.nn.functional.normalize(pooled.float(), dim=1)
    a, b = z[0::2], z[1::2]
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=z.device)
    return 0.5 * (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.T, target)
    )


def contrastive_loss(
    encoder: torch.nn.Module,
    windows: Sequence[Sequence[int]],
    seed: int,
    rank: int,
    world: int,
    device,
    temperature: float = TEMPERATURE,
) -> Tuple[torch.Tensor, int]:
    """(InfoNCE loss, docs contrasted) of this process's share of the step's windows.

    Fewer than 2 docs: a zero loss (nothing to contrast against)."""
    mine = [w for i, w in enumerate(windows) if i % world == rank]
    if len(mine) > MAX_DOCS:
        mine = random.Random(seed).sample(mine, MAX_DOCS)
    if len(mine) < 2:
        return torch.zeros((), device=device), len(mine)
    return info_nce(mean_pooled(encoder, crop_views(mine, seed), device), temperature), len(mine)
