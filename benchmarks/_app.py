"""The typer app of `python -m benchmarks`; each command module registers on it."""
import inspect
from typing import Any, Callable, Dict

import typer

app = typer.Typer(
    name="benchmarks",
    add_completion=False,
    no_args_is_help=True,
    help="Speed and accuracy benchmarks against spacy-transformers and raw Hugging Face (run from a checkout).",
)


def defaults(func: Callable[..., Any]) -> Dict[str, Any]:
    """The keyword defaults of `func`, so that a command's options declare no second copy."""
    return {name: p.default for name, p in inspect.signature(func).parameters.items() if p.default is not p.empty}
