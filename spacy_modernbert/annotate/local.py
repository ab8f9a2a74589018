"""Engine `local`: one streaming `nlp.pipe` over every unfinished shard, on one machine.

Why one pipe call for all shards: `n_process` workers start (and copy the pipeline) once, and
spaCy keeps the order of its input, so docs come back in row order and are cut into shards by
count. Memory is bounded by one shard of rows plus what `nlp.pipe` buffers (batch_size x
n_process documents), whatever the size of the corpus: the texts are read lazily and the
carried records wait in a queue only while their documents are in flight.
"""
from collections import deque
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional

from spacy.language import Language

from .io import InputSpec, read_span
from .rows import output_row
from .shards import Plan, RunDir, Shard


def run_local(
    nlp: Language,
    spec: InputSpec,
    plan: Plan,
    run_dir: RunDir,
    shards: List[Shard],
    batch_size: int = 64,
    n_process: int = 1,
    cats: bool = False,
    progress: bool = True,
    on_shard: Optional[Callable[[int], None]] = None,
) -> int:
    """Annotate `shards` (the unfinished ones, in order); returns the number of rows written."""
    from tqdm import tqdm

    work = [s for s in shards if s.n_valid]
    records: Deque[Dict[str, Any]] = deque()

    def texts() -> Iterator[str]:
        for shard in work:
            for row in read_span(spec, shard.span):
                records.append(row.record)
                yield row.text

    written = 0
    docs = nlp.pipe(texts(), batch_size=batch_size, n_process=n_process)
    with tqdm(total=sum(s.n_valid for s in work), unit="doc", desc="annotate", disable=not progress, smoothing=0.1) as bar:
        for shard in work:
            rows = []
            for _ in range(shard.n_valid):
                doc = next(docs)
                rows.append(output_row(records.popleft(), doc, cats))
                bar.update(1)
            run_dir.write_shard(shard.index, rows)
            written += len(rows)
            if on_shard is not None:
                on_shard(len(rows))
    for _ in docs:  # the pipe must be exhausted: a leftover document means the counts disagree
        raise RuntimeError("nlp.pipe returned more documents than the input has rows")
    return written
