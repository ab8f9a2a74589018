"""Engine `ray`: Ray Data `map_batches` over the shards, one loaded pipeline per actor.

Ray Data schedules, streams and retries; we do not write a scheduler. The dataset is the list of
unfinished shards (where each lies in the input); `map_batches` hands one shard at a time to an
actor of an `ActorPoolStrategy` pool; the actor reads its rows from the input, runs
`nlp.pipe`, and writes the shard's file itself by an atomic rename. Why the actor writes rather
than `Dataset.write_json`: carried fields differ from row to row (JSONL), which Arrow blocks
cannot hold without a common schema, and a file per shard under a fixed name is what makes a
retried task exactly-once and lets `--resume` skip finished shards, as in the local engine.

Ray Data restarts a dead actor and retries its task (its actor pools default to `max_restarts=-1`
and `max_task_retries=-1`; tests/annotate/test_ray.py kills an actor to hold it to that); the
retry rewrites the same shard name, so each row is in the output once.
On a cluster, INPUT, the pipeline (a directory or an installed package) and OUTPUT's directory
must be visible at the same path on every node (a shared file system).
"""

import os
from typing import Any, Callable, Dict, List, Optional

from .io import InputSpec
from .rows import annotate_shard, load_pipeline
from .shards import RunDir, Shard

RAY_INSTALL_HINT = (
    "--engine ray needs Ray Data: pip install 'spacy-modernbert[ray]' (or pip install 'ray[data]')"
)
# A local Ray instance only passes shard descriptions and counts through its object store.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024 * 1024


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{RAY_INSTALL_HINT} ({err})") from err
    return ray


class ShardAnnotator:
    """A Ray Data actor: loads the pipeline once, then annotates and writes one shard per call."""

    def __init__(
        self,
        pipeline: str,
        code: Optional[str],
        spec: Dict[str, Any],
        output: str,
        output_format: str,
        batch_size: int,
        cats: bool,
        threads: int,
        use_gpu: bool,
    ):
        from pathlib import Path

        if not use_gpu:
            import torch

            torch.set_num_threads(max(1, threads))
        self.nlp = load_pipeline(pipeline, code, gpu_id=0 if use_gpu else -1)
        self.spec = InputSpec(
            Path(spec["path"]),
            spec["format"],
            spec["text_field"],
            tuple(spec["reserved"]),
            prefix=spec["prefix"],
        )
        self.run_dir = RunDir(Path(output), output_format)
        self.batch_size = batch_size
        self.cats = cats

    def __call__(self, batch: Dict[str, Any]) -> Dict[str, List[int]]:
        indices, counts = [], []
        for i in range(len(batch["index"])):
            shard = Shard(
                *(
                    int(batch[key][i])
                    for key in ("index", "start", "end", "first_line", "n_rows", "n_valid")
                )
            )
            counts.append(
                annotate_shard(self.nlp, self.spec, self.run_dir, shard, self.batch_size, self.cats)
            )
            indices.append(shard.index)
        return {"index": indices, "n_rows": counts, "pid": [os.getpid()] * len(indices)}


def run_ray(
    pipeline: str,
    code: Optional[str],
    spec: InputSpec,
    run_dir: RunDir,
    shards: List[Shard],
    batch_size: int = 64,
    num_actors: int = 2,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    address: Optional[str] = None,
    cats: bool = False,
    progress: bool = True,
    on_shard: Optional[Callable[[int], None]] = None,
) -> int:
    """Annotate `shards` on a Ray cluster (RAY_ADDRESS / `address`) or a local one; rows written."""
    from dataclasses import asdict

    from tqdm import tqdm

    ray = import_ray()
    started = False
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            cpus = max(int(num_actors * cpus_per_actor + 0.999), 1)
            gpus = int(num_actors * gpus_per_actor + 0.999)
            ray.init(
                num_cpus=cpus,
                num_gpus=gpus or None,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                log_to_driver=False,
            )
        started = True
    try:
        work = [s for s in shards if s.n_valid]
        if not work:
            return 0
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        items = [asdict(s) for s in work]
        spec_json = {
            "path": str(spec.path.resolve()),
            "format": spec.format,
            "text_field": spec.text_field,
            "reserved": list(spec.reserved),
            "prefix": spec.prefix,
        }
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.map_batches(
            ShardAnnotator,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=num_actors),
            fn_constructor_kwargs=dict(
                pipeline=pipeline,
                code=code,
                spec=spec_json,
                output=str(run_dir.output.resolve()),
                output_format=run_dir.format,
                batch_size=batch_size,
                cats=cats,
                threads=max(1, int(cpus_per_actor)),
                use_gpu=gpus_per_actor > 0,
            ),
            num_cpus=cpus_per_actor,
            **({"num_gpus": gpus_per_actor} if gpus_per_actor > 0 else {}),
        )
        written = 0
        with tqdm(
            total=sum(s.n_valid for s in work),
            unit="doc",
            desc="annotate (ray)",
            disable=not progress,
            smoothing=0.1,
        ) as bar:
            for result in ds.iter_rows():
                written += int(result["n_rows"])
                bar.update(int(result["n_rows"]))
                if on_shard is not None:
                    on_shard(int(result["n_rows"]))
        return written
    finally:
        if started:
            ray.shutdown()
