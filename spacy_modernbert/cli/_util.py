"""The typer app every command registers on, and the small helpers commands share.

As in spaCy (`spacy/cli/_util.py`): each `cli/<command>.py` decorates its typer
signature with `@app.command(...)` and keeps the plain function beside it;
`spacy_modernbert/__main__.py` imports the command modules, which mounts them.
Keep this module light: `--help` must not import torch or transformers.
"""

from pathlib import Path
from typing import Any, Callable

import typer
from wasabi import msg

app = typer.Typer(
    name="spacy_modernbert",
    add_completion=False,
    no_args_is_help=True,
    help="spacy-modernbert: ModernBERT encoder and anomaly scorer for spaCy.",
)


def require_file(path: Path, what: str) -> None:
    """Exit with a clear message unless `path` is an existing file."""
    path = Path(path)
    if not path.exists():
        msg.fail(f"{what} not found: {path}", exits=1)
    if not path.is_file():
        msg.fail(f"{what} is not a file: {path}", exits=1)


def run_or_exit(
    func: Callable[..., Any], *args: Any, what: str = "Conversion", **kwargs: Any
) -> Any:
    """Call `func`; a ValueError (bad line, bad option...) becomes `msg.fail(..., exits=1)`."""
    try:
        return func(*args, **kwargs)
    except ValueError as err:
        msg.fail(f"{what} failed", str(err), exits=1)
    except UnicodeDecodeError as err:
        msg.fail(f"{what} failed: the input is not UTF-8 text", str(err), exits=1)


# ---------------------------------------------------------------------------------------------
# One loader and one overwrite rule for every command (issue 26).
#
# Loading: a PIPELINE argument is a pipeline directory or the name of an installed package,
# in every command; anything else, or a pipeline spaCy cannot load, is one line naming it.
# Writing: a command refuses a non-empty output (or an existing output file) unless
# --overwrite; with --overwrite it replaces only an output of its own kind (a pipeline or
# checkpoint directory, or the files it writes), never a directory holding files it did not
# create.
# ---------------------------------------------------------------------------------------------

PIPELINE_PARTS = ("config.cfg", "meta.json")
# The files that mark an output directory of a kind replaced as a whole.
OUTPUT_PARTS = {"pipeline": PIPELINE_PARTS, "checkpoint": ("config.json",)}
from ..pipeline_location import PipelineNotFound, find_pipeline  # noqa: E402  (re-exported)


def pipeline_location(pipeline: Any) -> Path:
    """`find_pipeline`, exiting with its one line when the pipeline is not found."""
    try:
        return find_pipeline(pipeline)
    except PipelineNotFound as err:
        msg.fail(str(err), exits=1)
        raise  # unreachable: msg.fail exits


def load_pipeline(pipeline: Any, gpu_id: int = -1, **kwargs: Any) -> Any:
    """`spacy.load` of a pipeline directory or installed package, with one-line errors."""
    import spacy

    location = pipeline_location(pipeline)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    try:
        return spacy.load(location, **kwargs)
    except Exception as err:  # config, msgpack, weights: a damaged pipeline, named with the cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        msg.fail(f"Cannot load the pipeline {pipeline}: {type(err).__name__}: {first}", exits=1)


def is_installed_package(pipeline: Any) -> bool:
    """True when `pipeline` names an installed package rather than a directory."""
    return not Path(str(pipeline)).exists()


def check_output(
    path: Path,
    overwrite: bool,
    *,
    kind: str = "files",
    own_files: tuple = (),
    keep: tuple = (),
) -> list:
    """The overwrite rule, checked before any work (`prepare_output` applies it); the entries to replace.

    An absent or empty directory is fine. A non-empty one needs `overwrite`, and even then is
    replaced only when it holds this command's kind of output: `kind="pipeline"`: a pipeline
    directory (config.cfg and meta.json), `kind="checkpoint"`: a Hugging Face checkpoint
    directory (config.json), each replaced as a whole; `kind="files"`: only names in
    `own_files`. Names in `keep` (a corpus's README) may sit beside them and are left alone.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        msg.fail(f"Output {path} is a file, not a directory", exits=1)
    entries = sorted(p.name for p in path.iterdir() if p.name not in keep) if path.is_dir() else []
    if entries:
        if not overwrite:
            msg.fail(
                f"Output {path} exists and is not empty: pass --overwrite to replace it, or choose a new directory",
                exits=1,
            )
        parts = OUTPUT_PARTS.get(kind)
        if parts and not all((path / part).is_file() for part in parts):
            msg.fail(
                f"Not replacing {path}: it is not a {kind} directory (no {' and '.join(parts)}), so it "
                "holds files this command did not write. Choose a new directory.",
                exits=1,
            )
        foreign = [name for name in entries if name not in own_files]
        if not parts and foreign:
            msg.fail(
                f"Not replacing {path}: it holds files this command does not write ({', '.join(foreign[:5])}). "
                "Choose a new directory.",
                exits=1,
            )
    return entries


def check_output_file(path: Path, overwrite: bool) -> Path:
    """The overwrite rule for a command that writes one file: an existing file needs `overwrite`."""
    path = Path(path)
    if path.is_dir():
        msg.fail(f"Output {path} is a directory, not a file: name the file to write", exits=1)
    if path.exists() and not overwrite:
        msg.fail(
            f"Output {path} exists: pass --overwrite to replace it, or choose a new file", exits=1
        )
    return path


def prepare_output(
    path: Path,
    overwrite: bool,
    *,
    kind: str = "files",
    own_files: tuple = (),
    keep: tuple = (),
) -> Path:
    """Apply the overwrite rule (`check_output`) to the output directory `path`; return it, created."""
    import shutil

    path = Path(path)
    entries = check_output(path, overwrite, kind=kind, own_files=own_files, keep=keep)
    if entries:
        if kind in OUTPUT_PARTS:
            shutil.rmtree(path)
        else:
            for name in entries:
                target = path / name
                shutil.rmtree(target) if target.is_dir() else target.unlink()
    path.mkdir(parents=True, exist_ok=True)
    return path
