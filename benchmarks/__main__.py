"""`python -m benchmarks speed|accuracy|one-class|quantized-accuracy|soak|soak-pretrain|vocab|ort|report`, from the root of a checkout.

This module only mounts the commands; each lives beside its plain function.
"""
from ._app import app
from . import accuracy  # noqa: E402,F401  accuracy
from . import speed  # noqa: E402,F401  speed
from . import one_class  # noqa: E402,F401  one-class
from . import quantized  # noqa: E402,F401  quantized-accuracy
from . import soak  # noqa: E402,F401  soak, soak-pretrain
from . import vocab  # noqa: E402,F401  vocab
from . import ort  # noqa: E402,F401  ort
from . import page  # noqa: E402,F401  report

if __name__ == "__main__":
    app()
