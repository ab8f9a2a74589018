"""Packing: the windows of a batch of docs -> the flat input of the packed encoder.

Windows are sorted by length and grouped under the token budget (`windows.group_by_budget`),
then concatenated group after group into one stream of `T` tokens, with no padding:

* `input_ids`, `position_ids`: (T,) ids of `[CLS] content [SEP]` of every window, and each
  token's position inside its own window (rotary restarts at 0 in every window);
* `groups`: `(start, end, window lengths)` of each micro-batch, a slice of the stream;
* `gather_index`: (N,) for each live doc in turn, the stream row of each position of its
  merged `[CLS] content [SEP]` (`windows.merge_sources`: in an overlap, the window in which
  the piece sits furthest from an edge), so `packed_output[gather_index]` is the docs'
  pieces, concatenated in doc order.

Invariant: every window lies whole inside one group, and `gather_index` points only at rows
of the stream, whatever group a doc's windows landed in.
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy

from .windows import Window, group_by_budget, merge_sources, window_input_ids


@dataclass
class PackedInput:
    """The packed encoder's input (numpy; the architecture moves it to the device)."""

    input_ids: numpy.ndarray
    position_ids: numpy.ndarray
    groups: List[Tuple[int, int, List[int]]]
    gather_index: numpy.ndarray


def pack_windows(
    windows: Sequence[Window],
    content_ids: Dict[int, numpy.ndarray],
    n_content: Dict[int, int],
    max_batch_tokens: int,
    cls_id: int,
    sep_id: int,
    shifts: Optional[Dict[int, int]] = None,
) -> PackedInput:
    """Pack `windows` (of docs `window.doc`, in doc order) into one flat input.

    windows (Sequence[Window]): every window of every live doc, each doc's windows in order.
    content_ids (Dict[int, numpy.ndarray]): doc index -> its content piece ids (no specials).
    n_content (Dict[int, int]): doc index -> its number of content pieces.
    max_batch_tokens (int): the token budget of one micro-batch.
    cls_id, sep_id (int): the tokenizer's [CLS] and [SEP] ids.
    shifts (Optional[Dict[int, int]]): doc index -> where its first content piece lies in
        `content_ids[doc]`, when context pieces precede it there (`sentence_context` with
        context text given with the doc); default 0.
    RETURNS (PackedInput): ids, positions, groups and the gather index (docs in the order
        of their first window).
    """
    groups = group_by_budget([w.length for w in windows], max_batch_tokens)
    packed_at = numpy.zeros((len(windows),), dtype="int64")
    ids: List[numpy.ndarray] = []
    positions: List[numpy.ndarray] = []
    group_specs: List[Tuple[int, int, List[int]]] = []
    cursor = 0
    for group in groups:
        start = cursor
        for k in group:
            w = windows[k]
            packed_at[k] = cursor
            shift = shifts.get(w.doc, 0) if shifts else 0
            ids.append(window_input_ids(content_ids[w.doc], w, cls_id, sep_id, shift))
            positions.append(numpy.arange(w.length, dtype="int64"))
            cursor += w.length
        group_specs.append((start, cursor, [windows[k].length for k in group]))

    by_doc: Dict[int, List[int]] = {}
    for k, w in enumerate(windows):
        by_doc.setdefault(w.doc, []).append(k)
    gather = [
        merge_sources([windows[k] for k in ks], [int(packed_at[k]) for k in ks], n_content[doc])
        for doc, ks in by_doc.items()
    ]

    def flat(arrays: List[numpy.ndarray]) -> numpy.ndarray:
        return numpy.concatenate(arrays) if arrays else numpy.zeros((0,), dtype="int64")

    return PackedInput(flat(ids), flat(positions), group_specs, flat(gather))
