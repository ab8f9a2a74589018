"""Command line: `python -m spacy_modernbert COMMAND` (typer, like spaCy's own CLI).

This module only mounts the commands: each lives in `spacy_modernbert/cli/<command>.py`,
its typer signature beside its plain function, and registers itself on the shared `app`
when imported. To add a command, write its module and add one import line below.
"""
from .cli._util import app

# One line per command module (importing it registers its commands on `app`).
from .cli import init_model  # noqa: E402,F401  init-model
from .cli import convert  # noqa: E402,F401  convert-jsonl, convert-conll, convert-sms, merge-corpora
from .cli import generate_demo  # noqa: E402,F401  generate-demo
from .cli import evaluate  # noqa: E402,F401  evaluate
from .cli import calibrate  # noqa: E402,F401  calibrate
from .cli import serve  # noqa: E402,F401  serve
from .cli import pretrain  # noqa: E402,F401  pretrain
from .cli import model_card  # noqa: E402,F401  model-card
from .cli import annotate  # noqa: E402,F401  annotate
from .cli import quantize  # noqa: E402,F401  quantize
from .cli import extend_vocab  # noqa: E402,F401  extend-vocab
from .cli import export  # noqa: E402,F401  export-hf, export-onnx


def main() -> None:
    app()


if __name__ == "__main__":
    main()
