"""A trained pipeline's encoder as a Hugging Face `ModernBertModel` directory.

Why: the workflows this project replaces end with `save_pretrained` and a Hub upload, and a
pipeline trained with `spacy train` has to be able to give its fine-tuned encoder back (to
share it, use it in another stack, or start the next fine-tune from it).

Invariants:
* The weights are named by `ModernBertEncoder.to_hf_state_dict()`, the inverse of the
  loading map: both directions come from the one table in `encoder/modules.py`, so there
  is no second name mapping here. They are the fp32 weights the pipeline saves (a
  quantized encoder is refused before we get here).
* The directory is what `ModernBertModel.save_pretrained` + `tokenizer.save_pretrained`
  write (config.json, model.safetensors, tokenizer files), plus a README.md model card
  saying where it came from; `AutoModel` / `AutoTokenizer.from_pretrained(DIR)` load it
  offline with no weight missing or unexpected (`check_hf_dir` verifies exactly that and
  the hidden states, on the pipeline's own pieces).
* No task head is exported: none of ours computes the same function as a transformers
  head (`head_notes` says why for each component), and an approximate head would give
  different scores under the same name.
"""

import copy
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy

WEIGHTS = "model.safetensors"

# Why a component's head has no exact transformers counterpart (by factory name).
_ANOMALY_WHY = (
    "ModernBertForSequenceClassification (even with classifier_pooling='mean') averages all pieces, "
    "[CLS] and [SEP] included, and sends the pooled vector through dense -> activation -> LayerNorm "
    "before its classifier; the anomaly head averages spaCy tokens (each the mean or max of its "
    "pieces, [CLS]/[SEP] excluded) and scores v.x + b (supervised) or a squared distance to a center "
    "(one_class). A LayerNorm cannot act as the identity (it removes the mean and the scale of x), "
    "so no weights of that head give the same scores"
)
HEAD_WHY = {
    "anomaly_scorer": _ANOMALY_WHY,
    "ner": "spaCy's ner is a transition-based parser over token vectors (states and actions); "
    "ModernBertForTokenClassification is one linear layer per piece: no weights give the same entities",
    "textcat": "spaCy's textcat architectures pool token vectors (and may add bag-of-words features) "
    "before their output layer; ModernBertForSequenceClassification pools pieces and adds "
    "dense -> activation -> LayerNorm, so the scores cannot be the same",
    "textcat_multilabel": "as textcat: the pooling and the dense/LayerNorm head of "
    "ModernBertForSequenceClassification differ from spaCy's textcat architectures",
}
OTHER_WHY = "no transformers head computes what this component computes"


def write_hf_dir(packed: Any, tokenizer: Any, output: Path) -> List[str]:
    """Write config.json, model.safetensors and the tokenizer files of `packed` (our
    `PackedModernBert`) into `output`; returns the names written."""
    from safetensors.torch import save_file

    output = Path(output)
    names = write_config_and_tokenizer(packed, tokenizer, output)
    state = {k: v.detach().cpu().float().contiguous() for k, v in packed.to_hf_state_dict().items()}
    save_file(state, str(output / WEIGHTS), metadata={"format": "pt"})
    return sorted(set(names) | {WEIGHTS})


def write_config_and_tokenizer(packed: Any, tokenizer: Any, output: Path) -> List[str]:
    """config.json (a `ModernBertModel` config) and the tokenizer files; returns the names."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(packed.hf_config)
    config.architectures = ["ModernBertModel"]
    config.reference_compile = False
    before = {p.name for p in output.iterdir()}
    config.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))
    return sorted({p.name for p in output.iterdir()} - before | {"config.json"})


def head_notes(nlp: Any, component: str) -> List[Tuple[str, str, str]]:
    """(component, factory, why it is not exported) for every other component of `nlp`."""
    notes = []
    for name in nlp.pipe_names:
        if name == component:
            continue
        factory = nlp.get_pipe_meta(name).factory
        notes.append((name, factory, HEAD_WHY.get(factory, OTHER_WHY)))
    return notes


def model_card(
    info: Dict[str, Any],
    notes: Sequence[Tuple[str, str, str]],
    files: Sequence[str],
    what: str = "hf",
) -> str:
    """The README.md of an exported directory: provenance, how to load it, what is not in it."""
    lines = [
        "---",
        "library_name: transformers" if what == "hf" else "library_name: onnx",
        "tags: [modernbert, spacy, spacy-modernbert]",
        "---",
        f"# {info['title']}",
        "",
        f"The ModernBERT encoder of the spaCy pipeline `{info['pipeline']}` (component `{info['component']}`), "
        f"exported by `{info['command']}` (spacy-modernbert {info['version']}) on {info['date']}.",
        "",
        "## Where it came from",
        "",
        f"- pipeline: `{info['pipeline']}` ({info['pipeline_name']} {info['pipeline_version']}, language `{info['lang']}`, "
        f"components: {', '.join(info['pipe_names'])})",
        f"- the encoder was initialized from `{info['base']}` and trained with the pipeline "
        "(the weights here are the pipeline's fp32 weights, not the base checkpoint's)",
        f"- shape: {info['layers']} layers, hidden size {info['hidden']}, vocabulary {info['vocab']}",
        f"- pipeline max_length: {info['max_length']} pieces (longer docs are encoded by the pipeline in "
        "overlapping windows; this model sees whatever you pass it)",
        "",
        "## Files",
        "",
        *[f"- `{name}`" for name in files],
        "",
        "## Use",
        "",
        "The pipeline encodes every word with its leading space, the first one included: prefix "
        "the text with a space to get the same pieces it used.",
        "",
        "```python",
    ]
    if what == "hf":
        lines += [
            "from transformers import AutoModel, AutoTokenizer",
            "",
            "tokenizer = AutoTokenizer.from_pretrained(DIR)",
            "model = AutoModel.from_pretrained(DIR)",
            'inputs = tokenizer(" " + text, return_tensors="pt")',
            "hidden = model(**inputs).last_hidden_state  # (1, n_pieces, hidden)",
        ]
    else:
        lines += [
            "import onnxruntime",
            "from transformers import AutoTokenizer",
            "",
            "tokenizer = AutoTokenizer.from_pretrained(DIR)",
            'session = onnxruntime.InferenceSession(f"{DIR}/model.onnx")',
            'inputs = tokenizer([" " + t for t in texts], padding=True, return_tensors="np")',
            'hidden = session.run(None, {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"]})[0]',
        ]
    lines += ["```", ""]
    if info.get("checks"):
        lines += ["## Checked at export", "", *[f"- {c}" for c in info["checks"]], ""]
    if notes:
        lines += ["## Not exported", ""]
        lines += [f"- `{name}` ({factory}): {why}." for name, factory, why in notes]
        lines.append("")
    return "\n".join(lines)


def check_hf_dir(
    output: Path, pieces: Sequence[Tuple[str, numpy.ndarray, numpy.ndarray]]
) -> Dict[str, Any]:
    """Load `output` with AutoModel / AutoTokenizer (offline) and compare with the pipeline.

    pieces: (text, input_ids (n,), hidden (n, width)) of the pipeline, per doc.
    RETURNS: {"loading_info": ..., "max_abs_diff": float, "n_docs": int,
              "same_pieces": docs whose `tokenizer(" " + text)` ids equal the pipeline's}.
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    model, info = AutoModel.from_pretrained(
        str(output), output_loading_info=True, local_files_only=True
    )
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(output), local_files_only=True)
    worst = 0.0
    with torch.no_grad():
        for _, ids, hidden in pieces:
            got = (
                model(input_ids=torch.as_tensor(ids, dtype=torch.long)[None])
                .last_hidden_state[0]
                .numpy()
            )
            worst = max(worst, float(numpy.abs(got - hidden).max()))
    same = sum(
        list(tokenizer(" " + text)["input_ids"]) == [int(i) for i in ids] for text, ids, _ in pieces
    )
    return {
        "loading_info": {k: [str(x) for x in v] for k, v in info.items()},
        "max_abs_diff": worst,
        "n_docs": len(pieces),
        "same_pieces": int(same),
        "model_class": type(model).__name__,
    }
