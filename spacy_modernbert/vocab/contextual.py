"""Contextual initialisation of new token rows: the base encoder's own output for each term.

For every new token the base encoder reads the term where it occurs in TEXT (up to
`contexts` occurrences, each with up to `side` base pieces of running text on either side),
or, when the term never occurs as a whole pre-token (a `--terms` entry absent from TEXT, an
intermediate merge), alone between [CLS] and [SEP]. The term's own base pieces are placed
in the sequence exactly as recorded (its ids, not a re-tokenization), so the positions of
the term are known. The term's vector is the mean of the final hidden states over its
pieces and its occurrences.

Final hidden states do not live where embedding rows do (they come out of the final
LayerNorm: other scale, other mean), so each vector is mapped onto the rows' distribution
dimension by dimension: row = mu_rows + sd_rows * (h - mu_hidden) / sd_hidden, where
mu/sd_hidden are over every non-special position the encoder produced here and mu/sd_rows
over the matrix's existing rows. `to_rows` does that for the embedding and for an untied
decoder alike (each with its own rows' statistics).
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

from .bpe import NewToken


@dataclass
class ContextualStates:
    """One final-hidden-state vector per new token, and the statistics of all hidden states seen."""

    vectors: Any  # (n_new, hidden) float32
    mean: Any  # (hidden,) over every non-special position encoded
    std: Any  # (hidden,)
    from_text: int  # new tokens read in at least one occurrence of TEXT (the rest: alone)


def find_occurrences(
    tokenizer: Any,
    texts: Sequence[str],
    tokens: Sequence[str],
    contexts: int,
    pre_tokenizer: Any = None,
) -> Dict[str, List[Tuple[str, int, int]]]:
    """byte-level token -> up to `contexts` (normalized text, start, end) where it is a whole
    pre-token (of `pre_tokenizer`, the extended tokenizer's, which keeps multi-word terms whole;
    default the base tokenizer's)."""
    backend = tokenizer.backend_tokenizer
    pre_tokenizer = pre_tokenizer or backend.pre_tokenizer
    wanted = set(tokens)
    found: Dict[str, List[Tuple[str, int, int]]] = {}
    full = 0
    for text in texts:
        if backend.normalizer is not None:
            text = backend.normalizer.normalize_str(text)
        for piece, (start, end) in pre_tokenizer.pre_tokenize_str(text):
            if piece in wanted:
                spots = found.setdefault(piece, [])
                if len(spots) < contexts:
                    spots.append((text, start, end))
                    full += len(spots) == contexts
        if full == len(wanted):
            break
    return found


def _sequences(
    tokenizer: Any,
    new_tokens: Sequence[NewToken],
    found: Dict[str, List[Tuple[str, int, int]]],
    side: int,
) -> List[Tuple[int, List[int], int, int]]:
    """(token index, input ids, first position of the term, its piece count) for every context."""
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    out = []
    for i, token in enumerate(new_tokens):
        spots = found.get(token.token) or [None]
        for spot in spots:
            left: List[int] = []
            right: List[int] = []
            if spot is not None:
                text, start, end = spot
                left = tokenizer(text[:start], add_special_tokens=False)["input_ids"][-side:]
                right = tokenizer(text[end:], add_special_tokens=False)["input_ids"][:side]
            ids = [cls] + left + list(token.pieces) + right + [sep]
            out.append((i, ids, 1 + len(left), len(token.pieces)))
    return out


def contextual_states(
    encoder: Any,
    tokenizer: Any,
    new_tokens: Sequence[NewToken],
    texts: Sequence[str],
    contexts: int = 4,
    side: int = 32,
    batch_size: int = 32,
    pre_tokenizer: Any = None,
) -> ContextualStates:
    """Encode each new token's contexts with the base `encoder` (ids -> final hidden states)."""
    import torch

    found = find_occurrences(
        tokenizer, texts, [t.token for t in new_tokens], contexts, pre_tokenizer
    )
    seqs = _sequences(tokenizer, new_tokens, found, side)
    seqs.sort(key=lambda s: len(s[1]))  # similar lengths per batch: less padding
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    hidden_size = None
    sums: Any = None
    counts = torch.zeros(len(new_tokens))
    total = total_sq = None
    n_positions = 0
    encoder.eval()
    with torch.inference_mode():
        for b in range(0, len(seqs), batch_size):
            batch = seqs[b : b + batch_size]
            length = max(len(s[1]) for s in batch)
            ids = torch.full((len(batch), length), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), length), dtype=torch.long)
            for row, (_, seq, _, _) in enumerate(batch):
                ids[row, : len(seq)] = torch.tensor(seq)
                mask[row, : len(seq)] = 1
            hidden = encoder(ids, mask).double()
            if hidden_size is None:
                hidden_size = hidden.shape[-1]
                sums = torch.zeros((len(new_tokens), hidden_size), dtype=torch.float64)
                total = torch.zeros(hidden_size, dtype=torch.float64)
                total_sq = torch.zeros(hidden_size, dtype=torch.float64)
            real = mask.bool() & ~torch.isin(ids, special)
            states = hidden[real]
            total += states.sum(0)
            total_sq += (states**2).sum(0)
            n_positions += states.shape[0]
            for row, (i, _, first, k) in enumerate(batch):
                sums[i] += hidden[row, first : first + k].mean(0)
                counts[i] += 1
    mean = total / n_positions
    std = (total_sq / n_positions - mean**2).clamp_min(1e-12).sqrt()
    return ContextualStates(
        vectors=(sums / counts[:, None].double()).float(),
        mean=mean.float(),
        std=std.float(),
        from_text=sum(1 for t in new_tokens if t.token in found),
    )


def to_rows(states: ContextualStates, rows: Any) -> Any:
    """The new tokens' rows for a matrix whose existing rows are `rows`: hidden states mapped onto their distribution."""
    old = rows.float()
    mu, sd = old.mean(0), old.std(0)
    return (mu + sd * (states.vectors - states.mean) / states.std).to(rows.dtype)
