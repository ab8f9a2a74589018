import numpy
import pytest

from spacy_modernbert.encoder.windows import group_by_budget, merge_sources, plan_windows


@pytest.mark.parametrize(
    "n,max_length,overlap",
    [(0, 16, 4), (14, 16, 4), (15, 16, 4), (100, 16, 4), (1000, 64, 16), (57, 10, 0)],
)
def test_windows_cover_and_own_every_piece_once(n, max_length, overlap):
    windows = plan_windows(0, n, max_length, overlap)
    for w in windows:
        assert w.length <= max_length
        assert w.start <= w.own_start <= w.own_end <= w.end
    owned = numpy.concatenate([numpy.arange(w.own_start, w.own_end) for w in windows])
    numpy.testing.assert_array_equal(owned, numpy.arange(n))
    for a, b in zip(windows, windows[1:]):
        assert a.end - b.start >= overlap  # consecutive windows overlap enough


def test_merge_sources_picks_one_row_per_piece():
    windows = plan_windows(0, 40, 16, 4)
    offsets, cursor = [], 0
    for w in windows:
        offsets.append(cursor)
        cursor += w.length
    source = merge_sources(windows, offsets, 40)
    assert source.shape == (42,)
    assert len(set(source.tolist())) == 42
    assert source[0] == offsets[0] and source[-1] == offsets[-1] + windows[-1].length - 1


def test_group_by_budget():
    lengths = [5, 100, 7, 7, 50, 3, 200]
    groups = group_by_budget(lengths, 120)
    flat = [i for g in groups for i in g]
    assert sorted(flat) == list(range(len(lengths)))
    for g in groups:
        longest = max(lengths[i] for i in g)
        assert len(g) == 1 or len(g) * longest <= 120
    # longest first, and each group sorted by length
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
