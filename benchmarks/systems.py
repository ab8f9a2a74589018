"""The systems compared: ours, `spacy_transformers_baseline` and `hf_baseline`.

* `ours`: `spacy-modernbert.ModernBertTransformer.v1` in spaCy's `transformer` component;
* `spacy_transformers_baseline`: `spacy-transformers.TransformerModel.v3` loading the same
  checkpoint, with a tokenizer config that keeps `token_type_ids` away from ModernBertModel
  and the stock strided spans (window 128, stride 96);
* `hf_baseline` (speed): `transformers.ModernBertModel` forward with length-sorted batches
  under `torch.inference_mode()` -- the best plain batching a user would write (accuracy:
  `ModernBertFor{Token,Sequence}Classification` in a plain PyTorch loop, see accuracy.py).

Both spaCy pipelines get the same listener components (ner + anomaly_scorer) and sdpa
attention, so the comparison is apples to apples.
"""

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

SPACY_TRANSFORMERS_BASELINE_WINDOW = 128
SPACY_TRANSFORMERS_BASELINE_STRIDE = 96


def ours_transformer(checkpoint: Path, mixed_precision: bool = False, **settings) -> Dict[str, Any]:
    model = {
        "@architectures": "spacy-modernbert.ModernBertTransformer.v1",
        "name": str(checkpoint),
        "attn_implementation": "sdpa",
        "mixed_precision": mixed_precision,
    }
    model.update(settings)
    return {"model": model}


def spacy_transformers_baseline_transformer(
    checkpoint: Path, mixed_precision: bool = False
) -> Dict[str, Any]:
    return {
        "model": {
            "@architectures": "spacy-transformers.TransformerModel.v3",
            "name": str(checkpoint),
            "tokenizer_config": {
                "use_fast": True,
                "model_input_names": ["input_ids", "attention_mask"],
            },
            "transformer_config": {"attn_implementation": "sdpa", "reference_compile": False},
            "mixed_precision": mixed_precision,
            "get_spans": {
                "@span_getters": "spacy-transformers.strided_spans.v1",
                "window": SPACY_TRANSFORMERS_BASELINE_WINDOW,
                "stride": SPACY_TRANSFORMERS_BASELINE_STRIDE,
            },
        }
    }


def listener() -> Dict[str, Any]:
    return {
        "@architectures": "spacy-transformers.TransformerListener.v1",
        "grad_factor": 1.0,
        "pooling": {"@layers": "reduce_mean.v1"},
    }


def ner_config() -> Dict[str, Any]:
    return {
        "model": {
            "@architectures": "spacy.TransitionBasedParser.v2",
            "state_type": "ner",
            # 6 state tokens instead of 3: +1.0 F1 on CoNLL valid (issue 19, BENCHMARKS.md)
            "extra_state_tokens": True,
            "hidden_width": 64,
            "maxout_pieces": 2,
            "use_upper": False,
            "tok2vec": listener(),
        }
    }


def anomaly_config() -> Dict[str, Any]:
    return {
        "mode": "supervised",
        "model": {"@architectures": "spacy-modernbert.AnomalyHead.v1", "tok2vec": listener()},
    }


def build_pipeline(
    system: str,
    checkpoint: Path,
    components: Sequence[str] = ("ner", "anomaly_scorer"),
    mixed_precision: bool = False,
    **settings,
):
    """A blank English pipeline: transformer (ours or the spacy-transformers baseline) + listener components."""
    import spacy

    import spacy_modernbert  # noqa: F401  (registers the architecture and anomaly_scorer)

    nlp = spacy.blank("en")
    if system == "ours":
        nlp.add_pipe(
            "transformer", config=ours_transformer(checkpoint, mixed_precision, **settings)
        )
    elif system == "spacy_transformers_baseline":
        nlp.add_pipe(
            "transformer",
            config=spacy_transformers_baseline_transformer(checkpoint, mixed_precision),
        )
    else:
        raise ValueError(f"unknown system {system!r}")
    for name in components:
        if name == "ner":
            nlp.add_pipe("ner", config=ner_config())
        elif name == "anomaly_scorer":
            nlp.add_pipe("anomaly_scorer", config=anomaly_config())
        else:
            raise ValueError(f"unknown component {name!r}")
    return nlp


def toy_examples(nlp, texts: Iterable[str], label: str = "ANOMALY") -> List[Any]:
    """Examples to initialize/update ner + anomaly_scorer: capitalized words as entities,
    every fourth doc an anomaly (labels only need to exist, not to mean anything)."""
    from spacy.training import Example

    examples = []
    for i, text in enumerate(texts):
        doc = nlp.make_doc(text)
        ents = [
            (t.idx, t.idx + len(t), "ORG" if i % 2 else "PER")
            for t in doc
            if t.text[:1].isupper() and t.i > 0
        ][:3]
        cats = {label: 1.0 if i % 4 == 0 else 0.0}
        examples.append(Example.from_dict(doc, {"entities": ents, "cats": cats}))
    return examples


class RawHF:
    """transformers.ModernBertModel with length-sorted batches under inference_mode."""

    def __init__(
        self,
        checkpoint: Path,
        device: str = "cpu",
        bf16: bool = False,
        max_batch_tokens: int = 16384,
    ):
        import torch
        from transformers import AutoTokenizer, ModernBertModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True)
        self.model = (
            ModernBertModel.from_pretrained(
                str(checkpoint),
                attn_implementation="sdpa",
                reference_compile=False,
                torch_dtype=torch.float32,
            )
            .to(device)
            .eval()
        )
        self.device = device
        self.bf16 = bf16
        self.max_batch_tokens = max_batch_tokens

    def encode(self, texts: Sequence[str]) -> int:
        """Encode texts; returns the number of (unpadded) tokens processed."""
        import torch

        enc = self.tokenizer(
            list(texts), add_special_tokens=True, truncation=True, max_length=8192
        )["input_ids"]
        order = sorted(range(len(enc)), key=lambda i: -len(enc[i]))
        batches: List[List[int]] = []
        for i in order:
            if (
                batches
                and (len(batches[-1]) + 1) * len(enc[batches[-1][0]]) <= self.max_batch_tokens
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        pad = self.tokenizer.pad_token_id
        n_tokens = 0
        with (
            torch.inference_mode(),
            torch.autocast(
                device_type=torch.device(self.device).type, dtype=torch.bfloat16, enabled=self.bf16
            ),
        ):
            for batch in batches:
                longest = len(enc[batch[0]])
                ids = torch.full((len(batch), longest), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), longest), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(enc[i])] = torch.tensor(enc[i])
                    mask[row, : len(enc[i])] = 1
                    n_tokens += len(enc[i])
                out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
                out.last_hidden_state.float().cpu()
        return n_tokens


def spacy_train_update(
    nlp,
    batch: List[Any],
    optimizer: Any,
    drop: float = 0.1,
    losses: Optional[Dict[str, float]] = None,
) -> None:
    """One update as `spacy train` (train_while_improving) makes it: `nlp.update` without an
    optimizer, then every trainable pipe's `finish_update`. `nlp.update(sgd=optimizer)` would
    step the transformer right after its own update, before the listeners' backward reaches
    it (issue 19, BENCHMARKS.md)."""
    nlp.update(batch, sgd=False, drop=drop, losses=losses)
    for _, proc in nlp.pipeline:
        if getattr(proc, "is_trainable", False) and proc.model not in (True, False, None):
            proc.finish_update(optimizer)
