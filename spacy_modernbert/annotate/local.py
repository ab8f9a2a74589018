"""Engine `local`: the unfinished shards through `nlp.pipe`, in this process or in N forked workers.

Why workers per shard rather than `nlp.pipe(n_process=N)`: spaCy's multiprocessing sends every
Doc back to the parent (`to_bytes`/`from_bytes`), and the parent alone then turns docs into rows
and writes them, a serial cost per document of the same order as annotating it with the tiny
encoder. Here each worker (forked after the pipeline is loaded, so it is not loaded again) reads
its shard from the input, annotates it and writes the shard file itself, as a Ray actor does;
the parent only counts finished shards. The rows a process holds are one shard's, whatever the
size of the corpus (BENCHMARKS.md has the measured peak memory for 20k and 100k documents).

A worker that dies (killed, out of memory) stops the run with `BrokenProcessPool` turned into a
message; the shards written so far stay, and `--resume` redoes only the rest.
"""

import os
from typing import Callable, List, Optional

from spacy.language import Language

from .io import InputSpec
from .rows import annotate_shard
from .shards import RunDir, Shard

# The forked workers' pipeline and settings (set in the parent just before the fork).
_WORKER: dict = {}


def _work(shard: Shard) -> int:
    w = _WORKER
    return annotate_shard(w["nlp"], w["spec"], w["run_dir"], shard, w["batch_size"], w["cats"])


def run_local(
    nlp: Language,
    spec: InputSpec,
    run_dir: RunDir,
    shards: List[Shard],
    batch_size: int = 64,
    n_process: int = 1,
    cats: bool = False,
    progress: bool = True,
    on_shard: Optional[Callable[[int], None]] = None,
) -> int:
    """Annotate `shards` (the unfinished ones); returns the number of rows written."""
    from tqdm import tqdm

    work = [s for s in shards if s.n_valid]
    written = 0
    with tqdm(
        total=sum(s.n_valid for s in work),
        unit="doc",
        desc="annotate",
        disable=not progress,
        smoothing=0.1,
    ) as bar:

        def done(n_rows: int) -> None:
            nonlocal written
            written += n_rows
            bar.update(n_rows)
            if on_shard is not None:
                on_shard(n_rows)

        if n_process == 1 or len(work) <= 1:
            for shard in work:
                done(annotate_shard(nlp, spec, run_dir, shard, batch_size, cats))
        else:
            _run_pool(nlp, spec, run_dir, work, batch_size, n_process, cats, done)
    return written


def _run_pool(nlp, spec, run_dir, work, batch_size, n_process, cats, done) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    # the parent has used the fast tokenizer: its threads would not survive the fork either
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _WORKER.update(nlp=nlp, spec=spec, run_dir=run_dir, batch_size=batch_size, cats=cats)
    try:
        with ProcessPoolExecutor(n_process, mp_context=multiprocessing.get_context("fork")) as pool:
            queue, running = list(reversed(work)), set()
            while queue or running:
                # at most two shards per worker in flight: progress stays honest, the queue small
                while queue and len(running) < 2 * n_process:
                    running.add(pool.submit(_work, queue.pop()))
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    done(future.result())
    except BrokenProcessPool as err:
        raise RuntimeError(
            f"a worker process died (killed, or out of memory?): the finished shards are kept in "
            f"{run_dir.path}; rerun with --resume to annotate the rest"
        ) from err
    finally:
        _WORKER.clear()
