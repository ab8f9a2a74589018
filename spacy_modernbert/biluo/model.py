"""`spacy-modernbert.BiluoTagger.v1`: per-token tag probabilities over a tok2vec.

tok2vec -> [Linear + GELU + LayerNorm of `hidden_width`, the head of
`ModernBertForTokenClassification`, when hidden_width > 0] -> softmax over the BILUO tags
(zero-initialized, as spaCy's tagger). The number of tags is set by `biluo_ner` at
initialize, on the layer named "output_layer".
"""
from typing import List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Gelu, Model, Softmax, chain, with_array, zero_init
from thinc.types import Floats2d


@registry.architectures("spacy-modernbert.BiluoTagger.v1")
def build_biluo_tagger(tok2vec: Model[List[Doc], List[Floats2d]], hidden_width: int = 0,
                       nO: Optional[int] = None) -> Model[List[Doc], List[Floats2d]]:
    """tok2vec (Model[List[Doc], List[Floats2d]]): the token vectors, e.g. a transformer listener.
    hidden_width (int): width of a GELU + LayerNorm layer before the softmax; 0 for none.
    nO (Optional[int]): number of tags, normally set by the component at initialize.
    """
    if hidden_width < 0:
        raise ValueError(f"spacy-modernbert.BiluoTagger.v1: hidden_width must be >= 0, got {hidden_width}")
    output_layer = Softmax(nO=nO, init_W=zero_init)
    head = chain(Gelu(nO=hidden_width, normalize=True), output_layer) if hidden_width else output_layer
    model = chain(tok2vec, with_array(head))
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    return model
