"""Command line: `python -m spacy_modernbert COMMAND` (typer, like spaCy's own CLI).

This module only mounts the commands: each lives in `spacy_modernbert/cli/<command>.py`,
its typer signature beside its plain function, and registers itself on the shared `app`
when imported. To add a command, write its module and add one import line below.
"""

# One line per command module (importing it registers its commands on `app`).
from .cli import (
    annotate,  # noqa: E402,F401  annotate
    calibrate,  # noqa: E402,F401  calibrate
    convert,  # noqa: E402,F401  convert-jsonl, convert-conll, convert-sms, merge-corpora
    convert_clinc,  # noqa: E402,F401  convert-clinc
    distill,  # noqa: E402,F401  distill
    evaluate,  # noqa: E402,F401  evaluate
    export,  # noqa: E402,F401  export-hf, export-onnx
    extend_vocab,  # noqa: E402,F401  extend-vocab
    generate_demo,  # noqa: E402,F401  generate-demo
    init_model,  # noqa: E402,F401  init-model
    model_card,  # noqa: E402,F401  model-card
    plot_training,  # noqa: E402,F401  plot-training
    pretrain,  # noqa: E402,F401  pretrain
    quantize,  # noqa: E402,F401  quantize
    serve,  # noqa: E402,F401  serve
    sweep,  # noqa: E402,F401  sweep
)
from .cli._util import app


def main() -> None:
    app()


if __name__ == "__main__":
    main()
