"""Training memory stays flat (issue 23, docs/memory.md).

thinc's `PyTorchShim.finish_update` rebinds every parameter's `.data` to a tensor built from
the numpy view of the old one, and that view keeps the old tensor alive: one more link per
parameter per update, and resident memory grew with every update (the links pin glibc's
heap). Our shim updates the parameters in place. Two checks, both at a small scale:

* the invariant itself (deterministic): after an update the parameters are the same tensors
  on the same memory, and the number of live torch tensors does not grow from update to update;
* the symptom, as the issue states it: resident memory in a fresh process, transformer + ner,
  spaCy's update order. The growth between update N and 3N must stay under a bound derived
  from the first N updates (a quarter of what they added, with a floor for allocator noise).
  No timings are asserted.
"""

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SENTENCES = [
    (
        "EU rejects German call to boycott British lamb .",
        [(0, 1, "ORG"), (2, 3, "MISC"), (6, 7, "MISC")],
    ),
    ("Peter Blackburn flew to Paris on Monday .", [(0, 2, "PER"), (4, 5, "LOC")]),
    (
        "The operations team in London reviewed the report from New York .",
        [(4, 5, "LOC"), (9, 11, "LOC")],
    ),
    ("Maria Lopez joined Acme in 2021 .", [(0, 2, "PER"), (3, 4, "ORG")]),
    (
        "Germany beat France 2-1 in Berlin on Sunday .",
        [(0, 1, "LOC"), (2, 3, "LOC"), (5, 6, "LOC")],
    ),
    ("Shares of Siemens rose 3.5 percent , traders said .", [(2, 3, "ORG")]),
]

# One process, one training loop; prints the RSS (MiB) after each probed update as JSON.
CHILD = r"""
import json, random, sys
import torch
torch.set_num_threads(1)
import spacy
import spacy_modernbert  # noqa: F401
from spacy.tokens import Doc
from spacy.training import Example

checkpoint, n, batch_size, upstream = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
sentences = json.loads(sys.argv[5])
if upstream:  # the broken variant: thinc's own finish_update
    from thinc.api import PyTorchShim
    import spacy_modernbert.encoder.shim as shim_module
    shim_module.step_in_place = PyTorchShim.finish_update

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2 ** 20

listener = {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
            "pooling": {"@layers": "reduce_mean.v1"}}
nlp = spacy.blank("en")
nlp.add_pipe("transformer", config={"model": {"@architectures": "spacy-modernbert.ModernBertTransformer.v1",
                                              "name": checkpoint, "max_length": 64, "max_batch_tokens": 512}})
nlp.add_pipe("ner", config={"model": {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
                                      "hidden_width": 32, "maxout_pieces": 2, "use_upper": False, "tok2vec": listener}})
examples = []
for text, spans in sentences:
    words = text.split()
    tags = ["O"] * len(words)
    for start, end, label in spans:
        tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
    examples.append(Example.from_dict(Doc(nlp.vocab, words=words), {"entities": tags}))
optimizer = nlp.initialize(lambda: examples)
rng = random.Random(0)
probes = {0: rss()}
for step in range(1, 3 * n + 1):
    batch = rng.sample(examples, batch_size)
    nlp.update(batch, sgd=False, drop=0.1)  # spacy train's order: update, then every finish_update
    for _, proc in nlp.pipeline:
        proc.finish_update(optimizer)
    if step in (n, 3 * n):
        probes[step] = rss()
print("RSS " + json.dumps(probes))
"""


def soak(checkpoint: Path, n: int, batch_size: int = 4, upstream: bool = False) -> dict:
    """RSS (MiB) before the first update and after update n and 3n, in a fresh process."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(checkpoint),
            str(n),
            str(batch_size),
            "1" if upstream else "0",
            json.dumps(SENTENCES),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
    )
    assert out.returncode == 0, out.stderr[-2000:]
    line = [line for line in out.stdout.splitlines() if line.startswith("RSS ")][-1]
    return {int(k): v for k, v in json.loads(line[4:]).items()}


def flat_enough(probes: dict, n: int) -> tuple:
    """(growth from update n to 3n, its bound): a quarter of what the first n updates added,
    at least 8 MiB (allocator noise of a flat run on this scale is a few MiB)."""
    growth = probes[3 * n] - probes[n]
    bound = max(0.25 * (probes[n] - probes[0]), 8.0)
    return growth, bound


def test_rss_growth_from_update_n_to_3n_is_bounded(tiny_checkpoint):
    n = 50
    probes = soak(tiny_checkpoint, n)
    growth, bound = flat_enough(probes, n)
    assert growth <= bound, (
        f"RSS grew {growth:.1f} MiB from update {n} to {3 * n} (bound {bound:.1f} MiB; RSS {probes}): "
        "training memory is not flat"
    )


def _live_tensors() -> int:
    import torch

    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


def test_update_keeps_parameter_tensors_and_leaves_no_tensor_behind(shared_encoder_pipeline):
    from spacy.tokens import Doc
    from spacy.training import Example

    nlp = shared_encoder_pipeline()
    nlp.remove_pipe("anomaly_scorer")
    examples = []
    for text, spans in SENTENCES:
        words = text.split()
        tags = ["O"] * len(words)
        for start, end, label in spans:
            tags[start:end] = [f"B-{label}"] + [f"I-{label}"] * (end - start - 1)
        examples.append(Example.from_dict(Doc(nlp.vocab, words=words), {"entities": tags}))
    optimizer = nlp.initialize(lambda: examples)
    encoder = nlp.get_pipe("transformer").model.shims[0]._model
    before = [(p, p.data_ptr()) for p in encoder.parameters()]
    snapshot = [p.detach().clone() for p, _ in before]

    def update():
        nlp.update(examples, sgd=False)
        for _, proc in nlp.pipeline:
            proc.finish_update(optimizer)

    update()
    update()
    live = _live_tensors()
    for _ in range(5):
        update()
    assert _live_tensors() == live, (
        "every update left torch tensors alive (thinc's finish_update chain)"
    )
    after = list(encoder.parameters())
    assert all(p is q and p.data_ptr() == ptr for (q, ptr), p in zip(before, after))
    assert any(not (p.detach() == s).all() for p, s in zip(after, snapshot)), (
        "the optimizer did not change the weights"
    )
