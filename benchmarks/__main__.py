"""`python -m benchmarks COMMAND`, from the root of a checkout (`python -m benchmarks --help` lists the commands).

This module only mounts the commands; each lives beside its plain function.
"""

from . import (
    accuracy,  # noqa: E402,F401  accuracy
    distill,  # noqa: E402,F401  distill, distill-signals
    distill_dev,  # noqa: E402,F401  distill-dev
    distill_throughput,  # noqa: E402,F401  distill-throughput
    explain,  # noqa: E402,F401  explain
    intents,  # noqa: E402,F401  intents
    one_class,  # noqa: E402,F401  one-class
    ort,  # noqa: E402,F401  ort
    page,  # noqa: E402,F401  report
    quantized,  # noqa: E402,F401  quantized-accuracy
    soak,  # noqa: E402,F401  soak, soak-pretrain
    speed,  # noqa: E402,F401  speed
    sweep,  # noqa: E402,F401  sweep
    vocab,  # noqa: E402,F401  vocab
    vocab_downstream,  # noqa: E402,F401  vocab-downstream
)
from ._app import app

if __name__ == "__main__":
    app()
