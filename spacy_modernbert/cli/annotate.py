"""`python -m spacy_modernbert annotate PIPELINE INPUT OUTPUT`: a trained pipeline over a corpus.

The typer signature (`annotate_cli`) and the plain function (`annotate`) side by side,
as in `spacy/cli/evaluate.py`. The engines live in `spacy_modernbert/annotate/`; this module
only checks the arguments, plans the run (rejects, shards, resume) and merges the output.
"""

import shutil
import time
from pathlib import Path
from typing import Any, Dict, Optional

import typer

from ._util import app

ENGINES = ("local", "ray")
ON_ERROR = ("skip", "stop")


@app.command("annotate")
def annotate_cli(
    pipeline: str = typer.Argument(
        ..., metavar="PIPELINE", help="Trained pipeline: a directory or an installed package name"
    ),
    input_path: Path = typer.Argument(
        ...,
        metavar="INPUT",
        help="Input: .jsonl (a text field; other fields are carried through), .txt (one doc per line) or .parquet",
        exists=True,
        dir_okay=False,
    ),
    output_path: Path = typer.Argument(
        ..., metavar="OUTPUT", help="Output: .jsonl or .parquet (by extension)"
    ),
    engine: str = typer.Option(
        "local",
        "--engine",
        "-e",
        help="local (nlp.pipe on this machine) or ray (Ray Data actor pool, local or a cluster)",
    ),
    text_field: str = typer.Option(
        "text", "--text-field", help="Name of the text field (JSONL) or column (Parquet)"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Documents per nlp.pipe batch"),
    shard_size: int = typer.Option(
        1000, "--shard-size", help="Rows per shard: the unit of --resume and of one Ray task"
    ),
    n_process: int = typer.Option(
        1,
        "--n-process",
        "-n",
        help="engine local: worker processes (forked after loading; each annotates and writes whole shards)",
    ),
    num_actors: int = typer.Option(
        2, "--num-actors", help="engine ray: actors, each with one loaded pipeline"
    ),
    cpus_per_actor: float = typer.Option(
        1.0, "--cpus-per-actor", help="engine ray: CPUs reserved per actor (also its torch threads)"
    ),
    gpus_per_actor: float = typer.Option(
        0.0, "--gpus-per-actor", help="engine ray: GPUs per actor (e.g. 1, or 0.5 to share one)"
    ),
    address: Optional[str] = typer.Option(
        None,
        "--address",
        help="engine ray: cluster address (default: $RAY_ADDRESS, else start a local Ray)",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="engine local: GPU id, or -1 for CPU"),
    cats: bool = typer.Option(False, "--cats", help="Also write doc.cats"),
    explain: bool = typer.Option(
        False,
        "--explain",
        help='Also write anomaly_spans: the passages that made each row anomalous (doc.spans["anomaly"])',
    ),
    vectors: bool = typer.Option(
        False,
        "--vectors",
        help="Also write vector: each row's float32 doc vector from the encoder (Parquet: a fixed-size list)",
    ),
    output_prefix: str = typer.Option(
        "",
        "--output-prefix",
        help="Write the annotation as PREFIX+entities, PREFIX+anomaly_score, ... (e.g. pred_), so input fields of those names (gold `entities`) are kept",
    ),
    on_error: str = typer.Option(
        "stop",
        "--on-error",
        help="A bad input row: stop (with its line number) or skip (to the rejects file)",
    ),
    rejects: Optional[Path] = typer.Option(
        None, "--rejects", help="Rejects file (default: OUTPUT with .rejects.jsonl)"
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a crashed run: keep the finished shards in OUTPUT.shards/"
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing OUTPUT"),
    code: Optional[Path] = typer.Option(
        None, "--code", "-c", help="Python file with custom components to import first"
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show a progress bar (docs/s, ETA)"
    ),
) -> None:
    """Annotate a corpus with a trained pipeline: entities, anomaly scores (and doc.cats) per row."""
    from wasabi import msg

    from ..annotate.io import AnnotateInputError

    try:
        annotate(
            pipeline,
            input_path,
            output_path,
            engine=engine,
            text_field=text_field,
            batch_size=batch_size,
            shard_size=shard_size,
            n_process=n_process,
            num_actors=num_actors,
            cpus_per_actor=cpus_per_actor,
            gpus_per_actor=gpus_per_actor,
            address=address,
            gpu_id=gpu_id,
            cats=cats,
            explain=explain,
            vectors=vectors,
            output_prefix=output_prefix,
            on_error=on_error,
            rejects=rejects,
            resume=resume,
            overwrite=overwrite,
            code=code,
            progress=progress,
        )
    except (AnnotateInputError, ImportError, FileExistsError, ValueError, RuntimeError) as err:
        msg.fail(str(err), exits=1)


def default_rejects_path(output_path: Path) -> Path:
    return output_path.with_name(output_path.stem + ".rejects.jsonl")


def annotate(
    pipeline: str,
    input_path: Path,
    output_path: Path,
    engine: str = "local",
    text_field: str = "text",
    batch_size: int = 64,
    shard_size: int = 1000,
    n_process: int = 1,
    num_actors: int = 2,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    address: Optional[str] = None,
    gpu_id: int = -1,
    cats: bool = False,
    explain: bool = False,
    vectors: bool = False,
    output_prefix: str = "",
    on_error: str = "stop",
    rejects: Optional[Path] = None,
    resume: bool = False,
    overwrite: bool = False,
    code: Optional[Path] = None,
    progress: bool = True,
) -> Dict[str, Any]:
    """Annotate INPUT into OUTPUT; returns the counts (rows = annotated + rejected).

    The rejects file is written only when a row was rejected. `docs_per_second` excludes
    loading the pipeline (engine local; engine ray: the first shard, which includes the
    actors' start, is left out when there are more).
    """
    from wasabi import msg

    from ..annotate.io import (
        INPUT_FORMATS,
        OUTPUT_FORMATS,
        AnnotateInputError,
        InputSpec,
        file_format,
        output_fields,
        require_pyarrow,
    )
    from ..annotate.rows import resolve_pipeline
    from ..annotate.shards import (
        RunDir,
        changed_settings,
        input_identity,
        pending,
        plan_run,
        write_empty_shards,
    )

    input_path, output_path = Path(input_path), Path(output_path)
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"--on-error must be skip or stop, got {on_error!r}")
    for name, value in (
        ("--batch-size", batch_size),
        ("--shard-size", shard_size),
        ("--n-process", n_process),
        ("--num-actors", num_actors),
    ):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if engine == "ray":
        from ..annotate.ray_engine import import_ray

        import_ray()  # says how to install it before any work
    in_format = file_format(input_path, INPUT_FORMATS, "INPUT")
    out_format = file_format(output_path, OUTPUT_FORMATS, "OUTPUT")
    if "parquet" in (in_format, out_format):
        require_pyarrow()
    if output_path.exists() and not overwrite:
        raise FileExistsError(f"OUTPUT {output_path} exists: pass --overwrite to replace it")
    if not input_path.is_file():
        raise AnnotateInputError(f"INPUT {input_path} is not a file")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    rejects_path = Path(rejects) if rejects is not None else default_rejects_path(output_path)
    pipeline = resolve_pipeline(pipeline)
    if (
        output_prefix
        and not output_prefix.replace("_", "").replace("-", "").replace(".", "").isalnum()
    ):
        raise ValueError(
            f"--output-prefix must be letters, digits, '_', '-' or '.', got {output_prefix!r}"
        )
    reserved = output_fields(output_prefix, cats, explain, vectors)
    if text_field in reserved:
        raise ValueError(
            f"--text-field {text_field!r} is one of the annotation's output fields: pass --output-prefix"
        )
    spec = InputSpec(
        input_path,
        in_format,
        text_field,
        reserved,
        prefix=output_prefix,
        explain=explain,
        vectors=vectors,
    )
    run_dir = RunDir(output_path, out_format)
    settings = {
        **input_identity(input_path),
        "pipeline": pipeline,
        "text_field": text_field,
        "shard_size": shard_size,
        "cats": cats,
        "explain": explain,
        "vectors": vectors,
        "output_prefix": output_prefix,
        "output_format": out_format,
        "on_error": on_error,
        "rejects": str(rejects_path.resolve()),
    }

    plan = run_dir.load_plan()
    if run_dir.path.exists() and not resume:
        raise FileExistsError(
            f"{run_dir.path} holds an unfinished run: pass --resume to continue it, or delete the directory"
        )
    if resume and plan is not None:
        changed = changed_settings(plan.settings, settings)
        if changed:
            raise ValueError(
                f"--resume: {', '.join(changed)} differ from the run in {run_dir.path}; resume with the same "
                f"input and settings, or delete the directory to start again"
            )
        msg.info(
            f"Resuming: {plan.n_rows - sum(s.n_rows for s in pending(plan, run_dir))} of {plan.n_rows} rows done"
        )
    else:
        if overwrite and rejects_path.is_file():
            rejects_path.unlink()  # the previous run's rejects: this run writes its own, if any
        run_dir.path.mkdir(parents=True, exist_ok=True)
        try:
            plan = plan_run(spec, shard_size, rejects_path, on_error, settings)
        except BaseException:
            shutil.rmtree(run_dir.path, ignore_errors=True)
            raise
        run_dir.save_plan(plan)
    n_rejected = plan.n_rows - plan.n_valid
    if n_rejected:
        msg.warn(
            f"{n_rejected} of {plan.n_rows} rows rejected (line numbers and reasons in {rejects_path})"
        )

    todo = pending(plan, run_dir)
    write_empty_shards(plan, run_dir, todo)
    start = time.perf_counter()
    first: Dict[str, float] = {}
    loaded: Dict[str, float] = {}

    def on_shard(n_rows: int) -> None:
        # engine ray: the first shard's time includes starting the actors and loading there
        if not first:
            first.update(seconds=time.perf_counter() - start, rows=n_rows)

    if engine == "local":
        from ..annotate.local import run_local
        from ..annotate.rows import load_pipeline

        nlp = load_pipeline(pipeline, str(code) if code else None, gpu_id)
        loaded["seconds"] = time.perf_counter() - start
        written = run_local(
            nlp,
            spec,
            run_dir,
            todo,
            batch_size=batch_size,
            n_process=n_process,
            cats=cats,
            progress=progress,
            on_shard=on_shard,
        )
    else:
        from ..annotate.ray_engine import run_ray

        written = run_ray(
            pipeline,
            str(code.resolve()) if code else None,
            spec,
            run_dir,
            todo,
            batch_size=batch_size,
            num_actors=num_actors,
            cpus_per_actor=cpus_per_actor,
            gpus_per_actor=gpus_per_actor,
            address=address,
            cats=cats,
            progress=progress,
            on_shard=on_shard,
        )
    seconds = time.perf_counter() - start
    n_out = run_dir.merge(plan)
    assert n_out + n_rejected == plan.n_rows
    steady = (
        round((written - first["rows"]) / (seconds - first["seconds"]), 1)
        if first and written > first["rows"] and seconds > first["seconds"]
        else None
    )
    if "seconds" in loaded:  # local: the time after loading
        working = seconds - loaded["seconds"]
        rate = round(written / working, 1) if working > 0 else None
    else:  # ray: without the first shard (actor start and loading) when there are more
        rate = (
            steady if steady is not None else (round(written / seconds, 1) if seconds > 0 else None)
        )
    summary = {
        "rows": plan.n_rows,
        "annotated": n_out,
        "rejected": n_rejected,
        "annotated_this_run": written,
        "seconds": round(seconds, 3),
        "load_seconds": round(loaded["seconds"], 3) if loaded else None,
        "docs_per_second": rate,
        "first_shard_seconds": round(first["seconds"], 3) if first else None,
        "steady_docs_per_second": steady,
        "output": str(output_path),
        "rejects": str(rejects_path) if n_rejected else None,
    }
    msg.good(
        f"{n_out} rows annotated into {output_path}"
        + (f", {n_rejected} rejected ({rejects_path})" if n_rejected else "")
        + (f" ({rate} docs/s after loading the pipeline)" if written and rate else "")
    )
    return summary
