"""`annotate`: run a trained pipeline over a corpus, on one machine or a Ray cluster.

The flow, one module per step:

    io.py          input rows (JSONL / text / Parquet) with their line numbers; bad rows -> rejects
    shards.py      the run directory: plan, one file per shard (atomic), resume, final merge
    rows.py        pipeline loading, Doc -> output row, one shard through the pipeline
    local.py       engine `local`: the shards through `nlp.pipe`, in this process or N forked workers
    ray_engine.py  engine `ray`: Ray Data `map_batches` with one loaded pipeline per actor

Invariant: rows in = rows out + rows rejected, each output row exactly once and in input order,
whatever the engine and however often a worker dies. Nothing here imports torch or ray at import time.
"""
