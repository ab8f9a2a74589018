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


def run_or_exit(func: Callable[..., Any], *args: Any, what: str = "Conversion", **kwargs: Any) -> Any:
    """Call `func`; a ValueError (bad line, bad option...) becomes `msg.fail(..., exits=1)`."""
    try:
        return func(*args, **kwargs)
    except ValueError as err:
        msg.fail(f"{what} failed", str(err), exits=1)
    except UnicodeDecodeError as err:
        msg.fail(f"{what} failed: the input is not UTF-8 text", str(err), exits=1)
