"""`benchmarks.grad_norms.v1`: a `[training] before_update` callback for `spacy train --code`
that writes the encoder's global gradient norm of each update as one JSON line to `path`.

The norm is the shim's `last_grad_norm`, which the encoder measures only when its
`grad_clip_norm` is set: run with `--components.transformer.model.grad_clip_norm 1e9` (a clip
that never cuts; the models are the same to the digit). `before_update` runs before step N's
update, so the line of step N holds the norm of update N - 1 (null before the first).
Used by `benchmarks/ner_readme_path_seeds.py --trajectory`."""

import json
from pathlib import Path

from spacy.util import registry

import spacy_modernbert.tokenizer  # noqa: F401  (registered where --code replaces the tokenizer's)

NAME = "benchmarks.grad_norms.v1"


@registry.callbacks(NAME)
def grad_norms(path: str):
    out = Path(path).open("w", encoding="utf8")

    def before_update(nlp, info):
        shim = nlp.get_pipe("transformer").model.shims[0]
        out.write(json.dumps({"step": info["step"], "norm_before": shim.last_grad_norm}) + "\n")
        out.flush()

    return before_update
