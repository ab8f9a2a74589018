"""The training-only component that distills the teacher's token vectors into the student.

`distill_hidden` listens to the student's `transformer` like `ner` does (the same
`TransformerListener` and mean pooling, so it shapes exactly the vectors the other components
read), projects them to the teacher's width with a learned linear layer when the widths differ,
and its loss is the distance to the teacher's token vectors, which `teacher.py` stored on the
reference doc: "mse" (mean over dimensions, summed over tokens, as spaCy's components sum their
losses over tokens) or "cosine" (1 - cosine, summed over tokens). It lives beside the pipeline,
never in it (see `make_distill_hidden`), so the saved student is an ordinary pipeline.
"""

from typing import Dict, Iterable, List, Optional

import numpy
from spacy.pipeline import TrainablePipe
from spacy.training import Example
from thinc.api import Linear, Model, chain, with_array

NAME = "distill_hidden"
# The user_data key of the teacher's token vectors on a reference doc: (bytes, rows, width)
# of float16, written by teacher.py.
VECTORS = "spacy_modernbert.teacher_vectors"
LOSSES = ("mse", "cosine")


def store_vectors(doc, vectors: numpy.ndarray) -> None:
    """Keep the teacher's (n_tokens, width) vectors on `doc` (float16, DocBin-serializable)."""
    array = numpy.ascontiguousarray(vectors, dtype="float16")
    doc.user_data[VECTORS] = (array.tobytes(), int(array.shape[0]), int(array.shape[1]))


def read_vectors(doc) -> Optional[numpy.ndarray]:
    """The teacher's vectors of `doc` as float32, or None when it has none."""
    stored = doc.user_data.get(VECTORS)
    if stored is None:
        return None
    data, rows, width = stored
    return numpy.frombuffer(data, dtype="float16").reshape(rows, width).astype("float32")


def build_model(teacher_width: int, student_width: int, upstream: str) -> Model:
    from spacy.util import registry

    listener = registry.resolve(
        {
            "m": {
                "@architectures": "spacy-transformers.TransformerListener.v1",
                "grad_factor": 1.0,
                "upstream": upstream,
                "pooling": {"@layers": "reduce_mean.v1"},
            }
        }
    )["m"]
    if teacher_width == student_width:
        return listener
    return chain(listener, with_array(Linear(nO=teacher_width, nI=student_width)))


def make_distill_hidden(
    vocab, trf, teacher_width: int, student_width: int, loss: str = "mse", weight: float = 1.0
) -> "DistillHidden":
    """The component, its listener registered on the student's transformer component `trf`.

    It is not added to the pipeline (so the saved student never holds it): the loop calls its
    `update` after `nlp.update`, on the same batch, and its listener, registered last, is the
    one that backpropagates into the encoder, with the other listeners' gradients.
    """
    if loss not in LOSSES:
        raise ValueError(f"distill_hidden loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    model = build_model(teacher_width, student_width, trf.name)
    component = DistillHidden(vocab, model, NAME, loss=loss, weight=weight)
    for node in model.walk():
        if node.name == "transformer-listener":
            node.set_dim("nO", student_width)
            trf.add_listener(node, NAME)
    model.initialize()
    return component


class DistillHidden(TrainablePipe):
    """Loss: distance of the (projected) student token vectors to the teacher's."""

    def __init__(self, vocab, model: Model, name: str, *, loss: str, weight: float):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.cfg = {"loss": loss, "weight": weight}

    def predict(self, docs):
        return None

    def set_annotations(self, docs, scores) -> None:
        return None

    def __call__(self, doc):
        return doc

    def pipe(self, stream, *, batch_size: int = 128):
        yield from stream

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd=None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        predicted, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, grads = self.get_loss(examples, predicted)
        backprop(grads)  # always, even all zeros: the transformer waits for every listener
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def get_loss(self, examples: List[Example], predicted) -> tuple:
        ops = self.model.ops
        total, grads = 0.0, []
        weight, kind = float(self.cfg["weight"]), self.cfg["loss"]
        for eg, guess in zip(examples, predicted):
            target = read_vectors(eg.reference)
            if target is None or target.shape[0] != guess.shape[0] or not len(target):
                grads.append(ops.alloc2f(*guess.shape))
                continue
            x = ops.to_numpy(guess).astype("float32")
            if target.shape[1] != x.shape[1]:
                raise ValueError(
                    f"distill_hidden: the teacher's vectors are {target.shape[1]} wide, the "
                    f"student's (projected) {x.shape[1]}; the projection was built for another teacher."
                )
            if kind == "mse":
                diff = x - target
                total += weight * float((diff**2).mean(axis=1).sum())
                grad = weight * 2.0 * diff / x.shape[1]
            else:
                xn = numpy.linalg.norm(x, axis=1, keepdims=True) + 1e-8
                tn = numpy.linalg.norm(target, axis=1, keepdims=True) + 1e-8
                cos = (x * target).sum(axis=1, keepdims=True) / (xn * tn)
                total += weight * float((1.0 - cos).sum())
                grad = -weight * (target / (xn * tn) - cos * x / (xn**2))
            grads.append(ops.asarray2f(grad.astype("float32")))
        return total, grads
