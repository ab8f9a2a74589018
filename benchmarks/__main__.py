"""`python -m benchmarks speed|accuracy|distill|one-class|quantized-accuracy|soak|soak-pretrain|vocab|ort|report`, from the root of a checkout.

This module only mounts the commands; each lives beside its plain function.
"""

from . import (
    accuracy,  # noqa: E402,F401  accuracy
    distill,  # noqa: E402,F401  distill, distill-signals
    one_class,  # noqa: E402,F401  one-class
    ort,  # noqa: E402,F401  ort
    page,  # noqa: E402,F401  report
    quantized,  # noqa: E402,F401  quantized-accuracy
    soak,  # noqa: E402,F401  soak, soak-pretrain
    speed,  # noqa: E402,F401  speed
    vocab,  # noqa: E402,F401  vocab
)
from ._app import app

if __name__ == "__main__":
    app()
