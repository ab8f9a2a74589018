"""pack_windows: the flat input (ids, positions, groups, gather index) of a batch of windows."""

import numpy
import pytest

from spacy_modernbert.encoder.packing import pack_windows
from spacy_modernbert.encoder.windows import plan_windows

CLS, SEP = 1, 2
MAX_LENGTH, OVERLAP = 16, 4


def _docs(n_contents):
    """Content ids (distinct per doc and position) and every doc's windows, in doc order."""
    content = {d: numpy.arange(n, dtype="int64") + 100 * (d + 1) for d, n in enumerate(n_contents)}
    windows = [w for d, n in enumerate(n_contents) for w in plan_windows(d, n, MAX_LENGTH, OVERLAP)]
    return content, windows


@pytest.mark.parametrize("budget", [32, 40, 10_000])
def test_multi_window_docs_split_across_micro_batches(budget):
    n_contents = [40, 5, 20, 1]  # 4 windows, 1, 2, 1
    content, windows = _docs(n_contents)
    packed = pack_windows(windows, content, dict(enumerate(n_contents)), budget, CLS, SEP)

    # the groups tile the stream, each one a slice of whole windows within the budget
    assert packed.groups[0][0] == 0 and packed.groups[-1][1] == len(packed.input_ids) == len(
        packed.position_ids
    )
    for (start, end, lengths), nxt in zip(packed.groups, packed.groups[1:] + [None]):
        assert end - start == sum(lengths)
        assert len(lengths) == 1 or len(lengths) * max(lengths) <= budget
        assert lengths == sorted(lengths, reverse=True)
        if nxt is not None:
            assert nxt[0] == end
        # positions restart at 0 in every window; every window is [CLS] ... [SEP]
        cursor = start
        for n in lengths:
            numpy.testing.assert_array_equal(
                packed.position_ids[cursor : cursor + n], numpy.arange(n)
            )
            assert packed.input_ids[cursor] == CLS and packed.input_ids[cursor + n - 1] == SEP
            cursor += n
    assert sorted(n for _, _, lengths in packed.groups for n in lengths) == sorted(
        w.length for w in windows
    )
    if budget == 32:  # the 4-window doc really is split over several micro-batches
        assert len(packed.groups) > 2

    # gathering the stream gives every doc's [CLS] content [SEP], in doc order...
    expected = numpy.concatenate(
        [numpy.concatenate([[CLS], content[d], [SEP]]) for d in range(len(n_contents))]
    )
    numpy.testing.assert_array_equal(packed.input_ids[packed.gather_index], expected)
    # ...each content piece read from the window that owns it (the furthest from an edge)
    offset = 0
    for d, n in enumerate(n_contents):
        positions = packed.position_ids[packed.gather_index[offset : offset + n + 2]]
        assert (
            positions[0] == 0 and positions[-1] == [w for w in windows if w.doc == d][-1].length - 1
        )
        for w in (w for w in windows if w.doc == d):
            owned = numpy.arange(w.own_start, w.own_end)
            numpy.testing.assert_array_equal(positions[owned + 1], owned - w.start + 1)
        offset += n + 2
    assert offset == len(packed.gather_index)


def test_one_window_per_short_doc_and_one_group_under_a_large_budget():
    content, windows = _docs([3, 7])
    packed = pack_windows(windows, content, {0: 3, 1: 7}, 1000, CLS, SEP)
    assert packed.groups == [(0, 14, [9, 5])]  # longest first
    assert (
        packed.input_ids.dtype
        == packed.position_ids.dtype
        == packed.gather_index.dtype
        == numpy.int64
    )
    numpy.testing.assert_array_equal(
        packed.gather_index, numpy.concatenate([numpy.arange(9, 14), numpy.arange(0, 9)])
    )


def test_no_windows_packs_to_empty_arrays():
    packed = pack_windows([], {}, {}, 32, CLS, SEP)
    assert packed.groups == [] and packed.input_ids.shape == packed.gather_index.shape == (0,)
