"""Unlabelled text for pretraining: read files, tokenize, cut into windows, plan batches.

Input formats (a directory is searched recursively for them):
* `.txt` (and any other file given by name): ONE DOCUMENT PER LINE; blank lines are skipped.
* `.jsonl`: one JSON object per line with a string `text` field.
* `.spacy`: the docs' texts of a DocBin corpus.

Bad input never crashes deep in torch: a file with NUL bytes is refused as binary, bytes
that are not UTF-8 raise an error naming the file and line, an empty file is skipped with a
warning, and a document longer than the window is split into several windows (never
dropped or truncated). Every window is `[CLS] pieces [SEP]`.
"""

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple, Union

from wasabi import msg

from ..encoder.leading_space import as_the_pipeline_reads

TEXT_SUFFIXES = (".txt", ".jsonl", ".spacy")


class PretrainDataError(ValueError):
    """The pretraining text could not be read: the message names the file and the fix."""


def find_files(paths: Sequence[Union[str, Path]]) -> List[Path]:
    """The files to read: files as given, directories searched for .txt/.jsonl/.spacy."""
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
            if not found:
                raise PretrainDataError(
                    f"Directory '{path}' contains no .txt, .jsonl or .spacy files."
                )
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise PretrainDataError(f"Text path '{path}' does not exist.")
    return files


def _lines(file: Path) -> Iterator[Tuple[int, str]]:
    """(line number, text) of a UTF-8 text file; a clear error on binary or non-UTF-8 data."""
    with open(file, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if b"\x00" in raw:
                raise PretrainDataError(
                    f"'{file}' line {number} contains NUL bytes: it looks like a binary file, not text. "
                    'Pass .txt (one document per line), .jsonl (a "text" field) or .spacy files.'
                )
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise PretrainDataError(
                    f"'{file}' line {number} is not valid UTF-8 (byte {err.start}: {raw[err.start : err.start + 1]!r}). "
                    "Re-encode the file as UTF-8, e.g. `iconv -f latin1 -t utf-8 FILE > FILE.txt`."
                ) from None


def read_file(file: Path) -> List[str]:
    """The documents of one file (see the module docstring for the formats)."""
    if file.suffix == ".spacy":
        from spacy.tokens import DocBin
        from spacy.vocab import Vocab

        try:
            docs = DocBin().from_disk(file).get_docs(Vocab())
            return [doc.text for doc in docs if doc.text.strip()]
        except Exception as err:  # msgpack / zlib errors on a corrupt file
            raise PretrainDataError(
                f"'{file}' is not a readable .spacy (DocBin) corpus: {err}"
            ) from err
    texts: List[str] = []
    for number, line in _lines(file):
        if not line.strip():
            continue
        if file.suffix == ".jsonl":
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise PretrainDataError(
                    f"'{file}' line {number} is not valid JSON: {err}"
                ) from None
            text = record.get("text") if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise PretrainDataError(f"'{file}' line {number} has no string \"text\" field.")
            if text.strip():
                texts.append(text)
        else:
            texts.append(line.rstrip("\r\n"))
    return texts


def read_texts(paths: Sequence[Union[str, Path]]) -> List[str]:
    """All documents of all `paths`, in order; an error when there is no text at all."""
    texts: List[str] = []
    for file in find_files(paths):
        found = read_file(file)
        if not found:
            msg.warn(f"'{file}' contains no text; skipped")
        texts.extend(found)
    if not texts:
        raise PretrainDataError(
            f"No text found in {', '.join(map(str, paths))}: nothing to pretrain on."
        )
    return texts


def make_windows(
    token_ids: Sequence[Sequence[int]], window: int, cls_id: int, sep_id: int
) -> List[List[int]]:
    """`[CLS] chunk [SEP]` windows of at most `window` ids; long documents are split, not dropped."""
    if window < 3:
        raise PretrainDataError(
            f"The window length must be at least 3 (CLS, one piece, SEP); got {window}."
        )
    step = window - 2
    windows = []
    for ids in token_ids:
        for start in range(0, len(ids), step):
            windows.append([cls_id, *ids[start : start + step], sep_id])
    return windows


def tokenize_windows(
    texts: Sequence[str], tokenizer, window: int, batch: int = 1000
) -> List[List[int]]:
    """Tokenize documents (no special tokens) as the pipeline's transformer reads them (a
    leading space before a document that does not start with whitespace, `add_prefix_space`
    in encoder/alignment.py: its first word is "Ġword" as every other word, in pretraining as
    at inference), and cut them into windows."""
    windows: List[List[int]] = []
    for start in range(0, len(texts), batch):
        chunk = as_the_pipeline_reads(texts[start : start + batch])
        encoded = tokenizer(chunk, add_special_tokens=False)["input_ids"]
        windows.extend(
            make_windows(
                [ids for ids in encoded if ids],
                window,
                tokenizer.cls_token_id,
                tokenizer.sep_token_id,
            )
        )
    return windows


def split_held_out(
    windows: List[List[int]], fraction: float, seed: int
) -> Tuple[List[List[int]], List[List[int]]]:
    """(train, held-out) windows: a seeded random `fraction` is held out (at least one window
    when fraction > 0 and there are two or more)."""
    if fraction <= 0 or len(windows) < 2:
        return windows, []
    order = list(range(len(windows)))
    random.Random(seed).shuffle(order)
    n = min(len(windows) - 1, max(1, round(fraction * len(windows))))
    held = set(order[:n])
    return [w for i, w in enumerate(windows) if i not in held], [windows[i] for i in sorted(held)]


@dataclass
class BatchPlan:
    """The deterministic stream of batches: step k's windows depend only on (seed, k).

    Each epoch visits the windows in a seeded random order; a batch takes windows until
    the next would exceed `batch_tokens` (a window longer than that is a batch of its own).
    """

    lengths: List[int]
    batch_tokens: int
    seed: int

    def __post_init__(self) -> None:
        self._epochs: List[List[List[int]]] = []

    def _epoch(self, epoch: int) -> List[List[int]]:
        while len(self._epochs) <= epoch:
            order = list(range(len(self.lengths)))
            random.Random(self.seed * 100003 + len(self._epochs)).shuffle(order)
            batches, current, tokens = [], [], 0
            for i in order:
                if current and tokens + self.lengths[i] > self.batch_tokens:
                    batches.append(current)
                    current, tokens = [], 0
                current.append(i)
                tokens += self.lengths[i]
            if current:
                batches.append(current)
            self._epochs.append(batches)
        return self._epochs[epoch]

    def batch(self, step: int) -> List[int]:
        """Indices of the windows of step `step` (0-based), across epochs."""
        epoch = 0
        while step >= len(self._epoch(epoch)):
            step -= len(self._epoch(epoch))
            epoch += 1
        return self._epoch(epoch)[step]
