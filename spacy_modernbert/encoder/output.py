"""The encoder's output: a spacy-transformers `FullTransformerBatch` with one window per doc.

Each doc's data is a `TransformerData` whose `last_hidden_state` is `(1, n_pieces, width)`
for the doc's merged `[CLS] content [SEP]` pieces, whatever windows were used, and whose
`align` maps every spaCy token to those pieces. Listeners (`TransformerListener`) and
`doc._.trf_data` see exactly what spacy-transformers would give them, with no padding.
"""

from dataclasses import dataclass
from typing import Any, List, Optional

import numpy
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData, WordpieceBatch
from thinc.api import get_array_module, xp2torch
from thinc.types import Ragged
from transformers.utils import ModelOutput

from .alignment import DocPieces


def doc_wordpieces(
    pieces: DocPieces, cls: str, sep: str, cls_id: int, sep_id: int
) -> WordpieceBatch:
    """The doc's `[CLS] content [SEP]` as a one-row WordpieceBatch."""
    n = pieces.n_content + 2
    ids = numpy.empty((1, n), dtype="int32")
    ids[0, 0], ids[0, -1] = cls_id, sep_id
    ids[0, 1:-1] = pieces.ids
    return WordpieceBatch(
        strings=[[cls, *pieces.strings, sep]],
        input_ids=ids,
        attention_mask=numpy.ones((1, n), dtype="bool"),
        lengths=[n],
        token_type_ids=None,
    )


@dataclass
class ModernBertBatch(FullTransformerBatch):
    """A FullTransformerBatch whose per-doc split is computed up front.

    `model_output.last_hidden_state` holds the merged pieces of all docs, concatenated
    (`(sum(n_pieces), width)`); `doc_offsets[i]:doc_offsets[i + 1]` are doc i's rows.
    """

    doc_offsets: Optional[List[int]] = None

    @classmethod
    def from_docs(
        cls,
        docs: List[Any],
        doc_pieces: List[Optional[DocPieces]],
        wordpieces: List[Optional[WordpieceBatch]],
        hidden: Any,
        all_states: Optional[List[Any]] = None,
    ) -> "ModernBertBatch":
        """Split the merged (sum(n_pieces), width) output into per-doc TransformerData.

        `all_states` (optional): every layer's (sum(n_pieces), width) states, split the same
        way into each doc's `model_output.hidden_states`.
        """

        def output(start: int, end: int) -> ModelOutput:
            if all_states is None:
                return ModelOutput(last_hidden_state=hidden[start:end][None])
            states = tuple(h[start:end][None] for h in all_states)
            return ModelOutput(last_hidden_state=hidden[start:end][None], hidden_states=states)

        offsets = [0]
        doc_data = []
        for pieces, wps in zip(doc_pieces, wordpieces):
            if pieces is None:  # a doc with no tokens: zero rows, but the right width
                empty = TransformerData.empty()
                empty.model_output = output(0, 0)
                doc_data.append(empty)
                offsets.append(offsets[-1])
                continue
            start, end = offsets[-1], offsets[-1] + pieces.n_content + 2
            doc_data.append(
                TransformerData(
                    wordpieces=wps,
                    model_output=output(start, end),
                    align=Ragged(pieces.align_data, pieces.align_lengths),
                )
            )
            offsets.append(end)
        return cls(
            spans=[[doc[:]] if len(doc) else [] for doc in docs],
            wordpieces=WordpieceBatch.empty(),
            model_output=ModelOutput(last_hidden_state=hidden),
            align=Ragged(numpy.zeros((0,), dtype="i"), numpy.zeros((0,), dtype="i")),
            cached_doc_data=doc_data,
            doc_offsets=offsets,
        )

    def split_by_doc(self) -> List[TransformerData]:
        return self.cached_doc_data

    def unsplit_by_doc(self, arrays: List[List[Any]]) -> "FullTransformerBatch":
        """Gather the listeners' per-doc gradients back into one (sum(n_pieces), width) array."""
        width = self.model_output.last_hidden_state.shape[-1]
        rows = []
        for i, doc_arrays in enumerate(arrays):
            n = self.doc_offsets[i + 1] - self.doc_offsets[i]
            if n == 0:
                continue
            grad = doc_arrays[0].reshape(-1, width)
            if grad.shape[0] != n:
                raise ValueError(f"Gradient for doc {i} has {grad.shape[0]} rows, expected {n}.")
            rows.append(grad)
        xp = get_array_module(self.model_output.last_hidden_state)
        d_hidden = xp.concatenate(rows, axis=0) if rows else xp.zeros((0, width), dtype="f")
        return FullTransformerBatch(
            spans=self.spans,
            wordpieces=self.wordpieces,
            model_output=ModelOutput(last_hidden_state=xp2torch(xp.ascontiguousarray(d_hidden))),
            align=self.align,
        )
