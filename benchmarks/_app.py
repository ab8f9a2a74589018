"""The typer app of `python -m benchmarks` and the options every benchmark command shares.

Each command module registers on `app` and declares its common options with the aliases
below (`data_dir: DataDir = bdata.DEFAULT_DATA_DIR`), so an option's flag and help exist
once; the plain function beside the command keeps the Python defaults.
"""

import inspect
from pathlib import Path
from typing import Annotated, Any, Callable, Dict, Optional

import typer

app = typer.Typer(
    name="benchmarks",
    add_completion=False,
    no_args_is_help=True,
    help="Speed and accuracy benchmarks against spacy-transformers, raw Hugging Face and classic anchors (run from a checkout).",
)


@app.callback()
def _commit_at_start() -> None:
    # Every command's result records the commit that runs: read it now, before the run, not when
    # the result is written (a commit made meanwhile is not the code that ran).
    from .results import git_commit

    git_commit()


Checkpoint = Annotated[
    Optional[Path],
    typer.Option(
        "--checkpoint",
        help="ModernBERT checkpoint (default: a random one of the benchmark's shape, created in --cache-dir)",
    ),
]
CacheDir = Annotated[
    Path, typer.Option("--cache-dir", help="Where generated checkpoints are cached")
]
DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        help="The shared data directory (conll2003/, sms_spam/, clinc150/; default: ../shared/data beside the checkout)",
    ),
]
Output = Annotated[
    Optional[Path],
    typer.Option(
        "--output",
        "-o",
        help="JSON result (benchmarks/results/NAME.json: what `python -m benchmarks report` reads)",
    ),
]
Threads = Annotated[int, typer.Option("--threads", help="torch.set_num_threads for every system")]
Seed = Annotated[
    int, typer.Option("--seed", help="Random seed of the data split, sampling and initialization")
]
Repeats = Annotated[
    int,
    typer.Option(
        "--repeats",
        help="Interleaved repeats per system (alternating order; median and range reported)",
    ),
]


def defaults(func: Callable[..., Any]) -> Dict[str, Any]:
    """The keyword defaults of `func`, so that a command's options declare no second copy."""
    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.default is not p.empty
    }
