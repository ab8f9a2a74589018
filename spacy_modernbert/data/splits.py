"""Seeded, stratified train/dev/test splits of item indices (standard library only).

Used by the SMS converter, the demo generator and the benchmarks: every split of this
project keeps each label's share in every part, and the same seed gives the same split.
"""

import random
from typing import Dict, Hashable, List, Sequence, Tuple


def stratified_split(
    labels: Sequence[Hashable], dev_frac: float = 0.15, test_frac: float = 0.15, seed: int = 0
) -> Tuple[List[int], List[int], List[int]]:
    """Split item indices into train/dev/test, stratified by label, seeded.

    Per label, the indices are shuffled with `random.Random(seed)`; round(n * test_frac)
    go to test, round(n * dev_frac) to dev, the rest to train. Each split is returned in
    ascending index order (the input order).

    labels (Sequence[Hashable]): one label per item.
    dev_frac (float): fraction for dev.
    test_frac (float): fraction for test.
    seed (int): the random seed.
    RETURNS (Tuple[List[int], List[int], List[int]]): train, dev and test indices.
    RAISES ValueError: fractions outside [0, 1) or summing to 1 or more.
    """
    if not (0.0 <= dev_frac < 1.0 and 0.0 <= test_frac < 1.0 and dev_frac + test_frac < 1.0):
        raise ValueError(
            f"dev_frac and test_frac must be in [0, 1) with a sum below 1, got {dev_frac} and {test_frac}"
        )
    rng = random.Random(seed)
    by_label: Dict[Hashable, List[int]] = {}
    for i, lab in enumerate(labels):
        by_label.setdefault(lab, []).append(i)
    train: List[int] = []
    dev: List[int] = []
    test: List[int] = []
    for lab in sorted(by_label, key=repr):
        idx = by_label[lab]
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_frac))
        n_dev = int(round(len(idx) * dev_frac))
        test.extend(idx[:n_test])
        dev.extend(idx[n_test : n_test + n_dev])
        train.extend(idx[n_test + n_dev :])
    return sorted(train), sorted(dev), sorted(test)
