"""Length-aware batching: sort sequences by length and group them under a token budget.

The packed forward runs each group as one micro-batch: linear layers see only real
tokens (no padding at all), and attention pads to the group's longest sequence, which
sorting keeps close to every member's length.
"""
from typing import List, Sequence


def group_by_budget(lengths: Sequence[int], max_batch_tokens: int) -> List[List[int]]:
    """Indices of `lengths`, longest first, grouped so that `len(group) * longest <= budget`.

    A sequence longer than the budget gets a group of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: List[List[int]] = []
    current: List[int] = []
    longest = 0
    for i in order:
        if current and (len(current) + 1) * longest > max_batch_tokens:
            groups.append(current)
            current = []
        if not current:
            longest = lengths[i]
        current.append(i)
    if current:
        groups.append(current)
    return groups
