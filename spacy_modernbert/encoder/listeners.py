"""`nlp.replace_listeners` for our encoder: a component gets its own copy of ModernBERT.

spaCy's habit for freezing a shared encoder or sourcing one component into another pipeline
is `nlp.replace_listeners("transformer", "ner", ["model.tok2vec"])`: each listener of the
component is replaced by a copy of the encoder (`replace_listener`), and the component's
config by one that builds the same structure (`replace_listener_cfg`), so that the saved
pipeline loads. spacy-transformers' own `replace_listener_cfg` only rewrites architectures
named `*TransformerModel*`; for ours it left the encoder's config at the listener's place,
which builds a model of another structure ("Cannot deserialize model: mismatched structure").

Invariant: `spacy-modernbert.Tok2VecModernBert.v1` (architecture.py) builds exactly what `replace_listener`
makes of a `TransformerListener.v1` (chain(chain(encoder, split_trf_batch), trfs2arrays)),
so a component's weights load into the model its rewritten config builds.
Light at import (spacy-transformers' layers are imported when a model is built).
"""

from typing import Any, Dict

from thinc.api import Model, chain

ENCODER = "spacy-modernbert.ModernBertTransformer.v1"
TOK2VEC = "spacy-modernbert.Tok2VecModernBert.v1"


def replace_listener(model: Model) -> Model:
    """What a listener becomes: a copy of the encoder whose batch output is split per doc."""
    from spacy_transformers.layers.split_trf import split_trf_batch

    return chain(model, split_trf_batch())


def replace_listener_cfg(
    tok2vec_model_cfg: Dict[str, Any], listener_model_cfg: Dict[str, Any]
) -> Dict[str, Any]:
    """The config of a component's own encoder: the encoder's settings plus the listener's
    pooling and grad_factor, under `spacy-modernbert.Tok2VecModernBert.v1`.

    spaCy passes the component's `model.tok2vec` config whatever the listener's path; when that
    is a layer wrapping the listener (`DocumentMemory.v1`: the listener is its `tok2vec`), the
    listener's settings are read from inside it."""
    while "TransformerListener" not in listener_model_cfg.get("@architectures", "") and (
        isinstance(listener_model_cfg.get("tok2vec"), dict)
    ):
        listener_model_cfg = listener_model_cfg["tok2vec"]
    result = dict(tok2vec_model_cfg)
    if result.get("@architectures") == ENCODER and "TransformerListener" in listener_model_cfg.get(
        "@architectures", ""
    ):
        result["@architectures"] = TOK2VEC
        for key in ("pooling", "grad_factor"):
            if key in listener_model_cfg:
                result[key] = listener_model_cfg[key]
    return result
