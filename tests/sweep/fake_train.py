"""A stand-in for `spacy train` in the sweep tests: stdlib only, starts in milliseconds.

Called as `fake_train.py CONFIG --output DIR [--gpu-id N] --training.logger.metrics_file PATH
--path value ...`. It writes EVALS evaluations (steps 10, 20, ...) to the metrics file, one
every FAKE_SLEEP seconds, with score(step) = quality(rate) * step / (10 * EVALS), where the
quality peaks at initial_rate 1e-3. training.dropout >= 0.9 makes it fail (exit 3).
"""

import json
import math
import os
import sys
import time

EVALS = 5

args = sys.argv[2:]
options = {args[i].lstrip("-"): args[i + 1] for i in range(0, len(args) - 1, 2)}
rate = json.loads(options.get("training.optimizer.learn_rate.initial_rate", "0.001"))
dropout = json.loads(options.get("training.dropout", "0.1"))
if dropout >= 0.9:
    print("RuntimeError: training diverged (fake)", flush=True)
    sys.exit(3)
quality = max(0.0, 1.0 - abs(math.log10(rate) + 3.0) / 2.0)
sleep = float(os.environ.get("FAKE_SLEEP", "0.02"))
with open(options["training.logger.metrics_file"], "w") as stream:
    for k in range(1, EVALS + 1):
        time.sleep(sleep)
        score = quality * k / EVALS
        record = {
            "step": 10 * k,
            "epoch": 0,
            "losses": {"ner": 1.0 / k},
            "score": score,
            "scores": {},
        }
        stream.write(json.dumps(record) + "\n")
        stream.flush()
print("done", flush=True)
