"""Long documents: overlapping windows over a doc's pieces, and how to merge them back.

A doc whose `[CLS] content [SEP]` fits in `max_length` is one window. A longer doc is cut
into windows of `max_length - 2` content pieces (each re-wrapped in [CLS]/[SEP]) that
overlap by at least `overlap` pieces; the last window is aligned to the doc's end so that
every window is full. In an overlap, each piece takes its vector from the window in which
it sits furthest from an edge (the overlap is split at its middle), so every piece, and
hence every spaCy token, gets exactly one vector, computed with context on both sides.
With `sentence_windows`, each sentence is its own window (`plan_sentence_windows`), so a
paragraph's pieces get the vectors its sentences would get one by one. With `sentence_context`
(C > 0), a sentence's window also holds up to C pieces of the doc on each side of it, but the
window owns only the sentence's pieces: every piece still gets exactly one vector, computed in
its own sentence's window, with its neighbours as context (FLERT, Schweter & Akbik 2020).
In training, `sentence_context_dropout` reads a random share of sentences without context.
Context may reach past the doc's own edges into text given with it (`encoder/context.py`):
such a window's `start` is then negative, or its `end` past the doc's content, in the doc's
own piece coordinates, and its ids come from the doc's pieces with that text's around them.

Windows then run in micro-batches (`group_by_budget`): sorted by length and grouped under a
token budget, so that linear layers see only real tokens (no padding at all) and attention
pads each group to its longest window, which sorting keeps close to every member's length.
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy


@dataclass
class Window:
    """Content pieces [start, end) of one doc, and which of them this window owns."""

    doc: int
    start: int
    end: int
    own_start: int
    own_end: int

    @property
    def length(self) -> int:
        """Length in pieces, specials included."""
        return self.end - self.start + 2


def plan_windows(doc: int, n_content: int, max_length: int, overlap: int) -> List[Window]:
    """Cut one doc's content pieces into windows; `n_content` may be 0."""
    width = max_length - 2
    if n_content <= width:
        return [Window(doc, 0, n_content, 0, n_content)]
    stride = width - overlap
    n_windows = -(-(n_content - width) // stride) + 1
    starts = [min(k * stride, n_content - width) for k in range(n_windows)]
    ends = [s + width for s in starts]
    windows = []
    for k, (start, end) in enumerate(zip(starts, ends)):
        own_start = 0 if k == 0 else (start + ends[k - 1]) // 2
        own_end = n_content if k == n_windows - 1 else (starts[k + 1] + end) // 2
        windows.append(Window(doc, start, end, own_start, own_end))
    return windows


def plan_sentence_windows(
    doc: int,
    sent_starts: Sequence[int],
    n_content: int,
    max_length: int,
    overlap: int,
    context: int = 0,
    before: int = 0,
    after: int = 0,
    keep_context: Optional[Callable[[], bool]] = None,
) -> List[Window]:
    """One window per sentence (`sentence_windows`), which owns exactly that sentence's pieces.

    sent_starts: the content-piece index at which each sentence starts (any order; 0 and
    indices outside (0, n_content) are ignored). context: pieces of the doc on each side of
    the sentence that its window also holds (`sentence_context`, clipped at the doc's edges);
    0: no piece attends across a sentence boundary. A sentence whose context span is longer
    than a window is cut as `plan_windows` cuts a doc, and each cut owns its share of the
    sentence only. Every piece is owned by exactly one window, as there. before / after: pieces
    of context text given with the doc before its first / after its last piece, which context
    may reach into (window starts down to -before, ends up to n_content + after).
    keep_context: called once per sentence, in order, when context > 0; a sentence for which it
    returns False gets no context (its window is the sentence alone), as with context 0
    (`sentence_context_dropout` in training).
    """
    if not n_content:
        return plan_windows(doc, 0, max_length, overlap)
    edges = [0] + sorted({int(s) for s in sent_starts if 0 < s < n_content}) + [n_content]
    windows = []
    for a, b in zip(edges, edges[1:]):
        reach = context if context and (keep_context is None or keep_context()) else 0
        lo, hi = max(-before, a - reach), min(n_content + after, b + reach)
        for w in plan_windows(doc, hi - lo, max_length, overlap):
            own_start, own_end = max(w.own_start + lo, a), min(w.own_end + lo, b)
            if own_start < own_end:
                windows.append(Window(doc, w.start + lo, w.end + lo, own_start, own_end))
    return windows


def window_input_ids(
    content_ids: numpy.ndarray, window: Window, cls_id: int, sep_id: int, shift: int = 0
) -> numpy.ndarray:
    """[CLS] + the window's content ids + [SEP]; `shift`: where the doc's first piece lies in
    `content_ids` (the pieces of context text before it)."""
    out = numpy.empty((window.length,), dtype="int64")
    out[0] = cls_id
    out[1:-1] = content_ids[window.start + shift : window.end + shift]
    out[-1] = sep_id
    return out


def merge_sources(
    windows: List[Window], window_offsets: List[int], n_content: int
) -> numpy.ndarray:
    """For each position of the doc's `[CLS] content [SEP]`, its row in the packed output.

    `window_offsets[k]` is where window k's first position ([CLS]) lies in the packed
    output. [CLS] comes from the first window and [SEP] from the last.
    """
    source = numpy.empty((n_content + 2,), dtype="int64")
    source[0] = window_offsets[0]
    for window, offset in zip(windows, window_offsets):
        owned = numpy.arange(window.own_start, window.own_end)
        source[owned + 1] = offset + 1 + (owned - window.start)
    source[-1] = window_offsets[-1] + windows[-1].length - 1
    return source


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
