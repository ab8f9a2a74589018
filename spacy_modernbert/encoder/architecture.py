"""`spacy-modernbert.ModernBertTransformer.v1`: the registered encoder architecture.

Thin wiring of the pieces of this package, one job each:
docs -> pieces (alignment) -> windows (windows) -> flat input in length-sorted
micro-batches (packing) -> packed ModernBERT forward (packed, attention) -> merged
per-doc pieces (output).
Use it as the model of spacy-transformers' `transformer` component; any
`spacy-transformers.TransformerListener.v1` (ner, anomaly_scorer, ...) listens to it.
"""

from typing import Any, Callable, List, Optional, Tuple

import numpy
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, chain, torch2xp

from .context import CONTEXT_KEY
from .errors import ATTN_IMPLEMENTATIONS, MAX_MODERNBERT_LENGTH, CheckpointError
from .listeners import TOK2VEC, replace_listener, replace_listener_cfg
from .sentences import DEFAULT_RULES

MIN_LENGTH = 8
MAX_BATCH_TOKENS = 16384


class ModernBertEncoderModel(Model):
    """A thinc Model whose deserialization failures name the problem instead of msgpack's.

    As spacy-transformers' TransformerModel, `transformer` is the torch module (our
    `PackedModernBert`, whose `encoder` holds the weights; `to_hf_state_dict()` gives them
    in Hugging Face naming) and `tokenizer` the fast tokenizer; both None before
    `nlp.initialize()` or loading.
    """

    @property
    def transformer(self) -> Any:
        return self.shims[0]._model

    @property
    def tokenizer(self) -> Any:
        return self.shims[0].tokenizer

    def from_bytes(self, bytes_data: bytes) -> "ModernBertEncoderModel":
        """Load weights and state; the settings of the config this model was built from win.

        thinc restores every attr from the saved bytes, so without this a config override at
        load time (`spacy.load(path, config={"components.transformer.model.output_hidden_states":
        True})`) would be silently replaced by the value saved with the pipeline.
        """
        configured = {key: self.attrs[key] for key in CONFIG_ATTRS if key in self.attrs}
        try:
            super().from_bytes(bytes_data)
            self.attrs.update(configured)
            return self
        except CheckpointError:
            raise
        except (ValueError, TypeError, KeyError) as err:
            raise CheckpointError(
                f"The transformer model file of this pipeline is unreadable or truncated ({err}); "
                "re-save or re-download the pipeline."
            ) from err


def validate_settings(
    max_length: int,
    window_overlap: int,
    max_batch_tokens: int,
    attn_implementation: str,
    sentence_windows: bool = False,
    sentence_context: int = 0,
    sentence_context_dropout: float = 0.0,
    sentence_rules: str = DEFAULT_RULES,
) -> None:
    """Reject configs that mix incompatible settings, with a message naming the fix."""
    from .sentences import check_rules

    check_rules(sentence_rules)
    if attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ValueError(
            f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got '{attn_implementation}'."
        )
    if not MIN_LENGTH <= max_length <= MAX_MODERNBERT_LENGTH:
        raise ValueError(
            f"max_length must be in [{MIN_LENGTH}, {MAX_MODERNBERT_LENGTH}], got {max_length}."
        )
    if not 0 <= window_overlap <= (max_length - 2) // 2:
        raise ValueError(
            f"window_overlap must be in [0, (max_length - 2) // 2 = {(max_length - 2) // 2}], "
            f"got {window_overlap}."
        )
    if max_batch_tokens < max_length:
        raise ValueError(
            f"max_batch_tokens ({max_batch_tokens}) must be at least max_length ({max_length}), "
            "so that one full window fits in a batch."
        )
    limit = (max_length - 2) // 4
    if isinstance(sentence_context, bool) or not isinstance(sentence_context, int):
        raise ValueError(
            f"sentence_context must be a whole number of pieces (0 = off), got {sentence_context!r}."
        )
    if not 0 <= sentence_context <= limit:
        raise ValueError(
            f"sentence_context must be in [0, (max_length - 2) // 4 = {limit}] pieces on each side "
            f"of a sentence, got {sentence_context}; lower it or raise max_length."
        )
    if sentence_context and not sentence_windows:
        raise ValueError(
            f"sentence_context = {sentence_context} needs sentence_windows = true: the context is "
            "what each sentence's own window holds around it. Set sentence_windows = true, or "
            "sentence_context = 0 (without sentence windows a doc is read whole anyway)."
        )
    p = sentence_context_dropout
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
        raise ValueError(
            "sentence_context_dropout must be a probability in [0, 1] (the share of training "
            f"sentences read without their context; 0 = off), got {p!r}."
        )
    if p and not sentence_context:
        raise ValueError(
            f"sentence_context_dropout = {p} needs sentence_context > 0: it drops the context "
            "of some training sentences. Set sentence_context (e.g. 64), or "
            "sentence_context_dropout = 0."
        )


def check_learn_rate_scale(scale: Any) -> None:
    """`learn_rate_scale` must be a finite number > 0 (not a bool), else the fix is named."""
    import math

    if (
        isinstance(scale, bool)
        or not isinstance(scale, (int, float))
        or not math.isfinite(scale)
        or not scale > 0
    ):
        raise ValueError(
            "learn_rate_scale multiplies [training.optimizer]'s learning rate for the encoder's "
            f"parameters and must be a number > 0 (1.0 = the optimizer's rate), got {scale!r}. "
            "To freeze the encoder, set the listener's grad_factor = 0 instead."
        )


# The attrs that come from the architecture's config settings (not from initialization).
CONFIG_ATTRS = (
    "name",
    "max_length",
    "window_overlap",
    "max_batch_tokens",
    "add_prefix_space",
    "from_scratch",
    "output_hidden_states",
    "sentence_windows",
    "sentence_context",
    "sentence_context_dropout",
    "sentence_rules",
)


@registry.architectures("spacy-modernbert.ModernBertTransformer.v1")
def modernbert_transformer_v1(
    name: str,
    max_length: int = MAX_MODERNBERT_LENGTH,
    window_overlap: Optional[int] = None,
    max_batch_tokens: int = MAX_BATCH_TOKENS,
    attn_implementation: str = "sdpa",
    mixed_precision: bool = False,
    gradient_checkpointing: bool = False,
    add_prefix_space: bool = True,
    from_scratch: bool = False,
    output_hidden_states: bool = False,
    quantize: Optional[str] = None,
    grad_clip_norm: Optional[float] = None,
    learn_rate_scale: float = 1.0,
    sentence_windows: bool = False,
    sentence_context: int = 0,
    sentence_context_dropout: float = 0.0,
    sentence_rules: str = DEFAULT_RULES,
) -> Model[List[Doc], Any]:
    """A ModernBERT encoder for spacy-transformers' `transformer` component.

    name (str): Hugging Face hub id (e.g. "answerdotai/ModernBERT-base") or a local
        checkpoint directory. Only read by `nlp.initialize()`; a saved pipeline carries
        its own weights and tokenizer.
    max_length (int): Longest window in pieces, [CLS]/[SEP] included (<= 8192). Longer
        docs are split into overlapping windows and merged back.
    window_overlap (Optional[int]): Minimum overlap, in pieces, between consecutive
        windows; by default min(256, (max_length - 2) // 4).
    max_batch_tokens (int): Token budget of one micro-batch (windows sorted by length,
        `n_windows * longest <= budget`).
    attn_implementation (str): "sdpa" (default), "eager", or "varlen" (CUDA: unpadded
        variable-length kernel with ModernBERT's sliding window; falls back to "sdpa"
        with a warning elsewhere).
    mixed_precision (bool): bf16 autocast on CUDA (ignored on CPU).
    gradient_checkpointing (bool): Recompute layer activations in backward (long docs).
    add_prefix_space (bool): Encode the first word of each doc with a leading space, as
        every other word, the way ModernBERT saw words in pretraining.
    from_scratch (bool): Initialize the encoder's weights randomly (training from
        scratch); only the config and tokenizer of `name` are read. Without it, a
        checkpoint whose weights are missing or do not fit is refused (CheckpointError).
    output_hidden_states (bool): Also set `doc._.trf_data.model_output.hidden_states`:
        num_hidden_layers + 1 arrays of (1, n_pieces, width), the embeddings, then each
        layer's output (the last one is `last_hidden_state`). Off: nothing is kept.
    quantize (Optional[str]): CPU inference precision of the linear layers: "int8"
        (dynamic quantization, PyTorch's fbgemm/x86 or qnnpack kernels), "bf16" (only on
        CPUs with native bf16 matmul; elsewhere a warning and fp32) or None (fp32).
        Inference only: `update` refuses. Applied at load from the fp32 weights, which
        are what the pipeline saves, so a trained pipeline is switched by config alone:
        spacy.load(path, config={"components.transformer.model.quantize": "int8"}).
        Ignored (with a warning) on CUDA. See encoder/quantize.py.
    grad_clip_norm (Optional[float]): Before each optimizer step, scale the encoder's
        gradients so that their global L2 norm (all encoder parameters together) is at
        most this value, as Hugging Face's Trainer does (`max_grad_norm`). None: no global
        clipping (the optimizer's own per-parameter `grad_clip` still applies).
    learn_rate_scale (float): Multiplies `[training.optimizer]`'s learning rate (schedule
        included) for the encoder's parameters only; every other component's weights (the
        `ner` or `textcat` head on top, randomly initialized) keep the optimizer's rate. 1.0
        (default): one rate for all, as before. Below 1 the pretrained encoder moves slower
        than the new head, e.g. `learn_rate = 4e-3` with 0.5 trains the encoder at 2e-3 and the
        head at 4e-3 (thinc's `lr_scale`; weight decay scales with it). Training only.
    sentence_windows (bool): Encode each sentence of a doc in its own window, so that no
        piece attends across a sentence boundary: a paragraph gets the vectors its sentences
        get one by one (a model trained on sentences keeps its accuracy on paragraphs).
        The sentences are the doc's own (a `sentencizer`/`senter` before the transformer,
        or a corpus with sentence starts); a doc without any is split by the rules of
        `sentence_rules` and at line breaks (encoder/sentences.py); at inference those are
        set on the doc (`doc.sents`), so that the `ner` does not open an entity across one.
    sentence_rules (str): How `sentence_windows` splits a doc that has no sentence
        boundaries of its own (`nlp("a paragraph")` without a senter): "news" (spaCy's
        `sentencizer` punctuation, an opening quote or dash after it starting the next
        sentence, and news datelines such as `LONDON 1996-08-30` as sentences of their own;
        what the shipped configs set) or "sentencizer" (default: spaCy's `sentencizer` rules
        alone, so that a config without this setting, e.g. a pipeline saved before it
        existed, reads as it did). Both also split at line breaks. A doc with sentence boundaries (a
        `sentencizer`/`senter`/`parser` before the transformer) is split where they say.
    sentence_context (int): With `sentence_windows`, each sentence's window also holds up to
        this many pieces of the doc on each side (its neighbouring sentences), as context its
        pieces attend to; the sentence's vectors still come from its own window only, so every
        piece has one vector and entities stay inside sentences. 0 (default): no context.
        Training and inference read context the same way; cost grows with the window,
        about (sentence + 2 * sentence_context) pieces per sentence. At most
        (max_length - 2) // 4; needs sentence_windows = true. A doc that is one sentence of
        a longer text may carry the text around it (`encoder.context.set_context`): the
        context then reaches into that text, as it would inside the whole paragraph.
    sentence_context_dropout (float): In training only, the probability that a sentence is
        read without its context (its window is the sentence alone, as with
        sentence_context = 0), drawn per sentence from numpy's global generator (seeded by
        spaCy's `fix_random_seed`). The model then keeps working on sentences read alone and
        learns to use context where it is there. Inference always reads the context.
        0 (default): off. Needs sentence_context > 0.
    """
    from .fork_safety import make_torch_fork_safe
    from .shim import ModernBertShim

    make_torch_fork_safe()
    if window_overlap is None:
        window_overlap = min(256, max(0, (max_length - 2) // 4))
    validate_settings(
        max_length,
        window_overlap,
        max_batch_tokens,
        attn_implementation,
        sentence_windows,
        sentence_context,
        sentence_context_dropout,
        sentence_rules,
    )
    from .quantize import check_mode

    check_mode(quantize)
    if grad_clip_norm is not None and not grad_clip_norm > 0:
        raise ValueError(
            f"grad_clip_norm must be a positive number or null (no clipping), got {grad_clip_norm}."
        )
    check_learn_rate_scale(learn_rate_scale)
    return ModernBertEncoderModel(
        "modernbert-transformer",
        forward,
        init=init,
        shims=[
            ModernBertShim(
                attn_implementation,
                mixed_precision,
                gradient_checkpointing,
                quantize,
                grad_clip_norm,
                learn_rate_scale,
            )
        ],
        dims={"nO": None},
        attrs={
            "name": name,
            "max_length": max_length,
            "window_overlap": window_overlap,
            "max_batch_tokens": max_batch_tokens,
            "add_prefix_space": add_prefix_space,
            "from_scratch": from_scratch,
            "output_hidden_states": output_hidden_states,
            "sentence_windows": sentence_windows,
            "sentence_context": sentence_context,
            "sentence_context_dropout": sentence_context_dropout,
            "sentence_rules": sentence_rules,
            "has_transformer": False,
            "replace_listener": replace_listener,
            "replace_listener_cfg": replace_listener_cfg,
        },
    )


@registry.architectures(TOK2VEC)
def tok2vec_modernbert_v1(
    name: str,
    pooling: Model,
    grad_factor: float = 1.0,
    max_length: int = MAX_MODERNBERT_LENGTH,
    window_overlap: Optional[int] = None,
    max_batch_tokens: int = MAX_BATCH_TOKENS,
    attn_implementation: str = "sdpa",
    mixed_precision: bool = False,
    gradient_checkpointing: bool = False,
    add_prefix_space: bool = True,
    from_scratch: bool = False,
    output_hidden_states: bool = False,
    quantize: Optional[str] = None,
    grad_clip_norm: Optional[float] = None,
    learn_rate_scale: float = 1.0,
    sentence_windows: bool = False,
    sentence_context: int = 0,
    sentence_context_dropout: float = 0.0,
    sentence_rules: str = DEFAULT_RULES,
) -> Model[List[Doc], List[Any]]:
    """A component's own ModernBERT encoder, as `nlp.replace_listeners` leaves it (listeners.py):
    the encoder of `ModernBertTransformer.v1` (same settings), split per doc, pooled per token.

    pooling (Model[Ragged, Floats2d]): pieces -> token vector, as in the listener it replaced.
    grad_factor (float): scales the gradient reaching the encoder (0 freezes it).
    """
    from spacy_transformers.layers.trfs2arrays import trfs2arrays

    encoder = modernbert_transformer_v1(
        name,
        max_length,
        window_overlap,
        max_batch_tokens,
        attn_implementation,
        mixed_precision,
        gradient_checkpointing,
        add_prefix_space,
        from_scratch,
        output_hidden_states,
        quantize,
        grad_clip_norm,
        learn_rate_scale,
        sentence_windows,
        sentence_context,
        sentence_context_dropout,
        sentence_rules,
    )
    return chain(replace_listener(encoder), trfs2arrays(pooling, grad_factor))


def init(model: Model, X: Optional[List[Doc]] = None, Y: Any = None) -> None:
    """Load the checkpoint named in the config, unless weights are already in the model."""
    shim = model.shims[0]
    if not shim.loaded:
        from .checkpoint import load_checkpoint

        encoder, tokenizer = load_checkpoint(
            model.attrs["name"],
            shim.attn_implementation,
            from_scratch=model.attrs.get("from_scratch", False),
        )
        max_positions = encoder.config.max_position_embeddings
        if model.attrs["max_length"] > max_positions:
            raise ValueError(
                f"max_length={model.attrs['max_length']} exceeds the {max_positions} positions "
                f"of checkpoint '{model.attrs['name']}'."
            )
        shim.set_model(encoder, tokenizer)
    model.attrs["has_transformer"] = True
    model.set_dim("nO", shim._model.config.hidden_size)


def _require_loaded(model: Model) -> Any:
    shim = model.shims[0]
    if not shim.loaded:
        raise ValueError(
            "The ModernBERT encoder has no weights yet: call nlp.initialize() (or "
            "`spacy train`) before using the pipeline, or load a trained pipeline."
        )
    return shim


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[Any, Callable]:
    """Encode docs; returns a ModernBertBatch and its backprop callback."""
    import torch

    from .alignment import tokenize_docs
    from .output import ModernBertBatch, doc_wordpieces
    from .packing import pack_windows
    from .windows import plan_sentence_windows, plan_windows

    shim = _require_loaded(model)
    # the setting lives on the shim (from the config), not in attrs: thinc restores attrs
    # from the saved bytes, which would undo a config override at spacy.load
    if is_train and shim.quantize is not None:
        from .quantize import training_refusal

        raise ValueError(training_refusal(shim.quantize))
    tokenizer = shim.tokenizer
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    max_length, overlap = model.attrs["max_length"], model.attrs["window_overlap"]

    live = [i for i, doc in enumerate(docs) if len(doc)]
    pieces = tokenize_docs(
        tokenizer,
        [docs[i] for i in live],
        model.attrs["add_prefix_space"],
        # each sentence as it reads alone: its first word after a line break keeps its "Ġ"
        breaks_as_spaces=bool(model.attrs.get("sentence_windows")),
    )
    context = model.attrs.get("sentence_context", 0) if model.attrs.get("sentence_windows") else 0
    around = {}  # doc index -> (ids before, ids after): context text given with the doc
    if context and any(CONTEXT_KEY in docs[i].user_data for i in live):
        from .context import context_piece_ids

        around = dict(
            zip(
                live,
                context_piece_ids(
                    tokenizer,
                    [docs[i] for i in live],
                    context,
                    model.attrs["add_prefix_space"],
                    breaks_as_spaces=True,
                ),
            )
        )
    dropout = model.attrs.get("sentence_context_dropout", 0.0) if is_train and context else 0.0
    keep_context = (lambda: numpy.random.random() >= dropout) if dropout else None
    doc_pieces: List[Any] = [None] * len(docs)
    windows = []
    for i, p in zip(live, pieces):
        doc_pieces[i] = p
        if model.attrs.get("sentence_windows"):
            from .alignment import sentence_piece_starts
            from .sentences import sentence_token_starts

            # at inference, a doc read by the sentencizer's rules keeps those sentences
            # (doc.sents), so that the ner after the encoder does not cross them
            token_starts = sentence_token_starts(
                docs[i], not is_train, model.attrs.get("sentence_rules", DEFAULT_RULES)
            )
            starts = sentence_piece_starts(token_starts, p)
            before, after = around.get(i, ((), ()))
            windows.extend(
                plan_sentence_windows(
                    i,
                    starts,
                    p.n_content,
                    max_length,
                    overlap,
                    context,
                    len(before),
                    len(after),
                    keep_context,
                )
            )
        else:
            windows.extend(plan_windows(i, p.n_content, max_length, overlap))

    width = model.get_dim("nO")
    if not windows:
        hidden = model.ops.alloc2f(0, width)
        states = (
            [hidden] * (shim._model.config.num_hidden_layers + 1)
            if model.attrs.get("output_hidden_states")
            else None
        )
        return ModernBertBatch.from_docs(
            docs, doc_pieces, [None] * len(docs), hidden, states
        ), lambda d: docs

    content_ids = {i: doc_pieces[i].ids for i in live}
    for i, (before, after) in around.items():
        content_ids[i] = numpy.concatenate([before, content_ids[i], after])
    packed = pack_windows(
        windows,
        content_ids,
        {i: doc_pieces[i].n_content for i in live},
        model.attrs["max_batch_tokens"],
        cls_id,
        sep_id,
        {i: len(before) for i, (before, _) in around.items()},
    )
    device = shim.device
    kwargs = {
        "input_ids": torch.from_numpy(packed.input_ids).to(device),
        "position_ids": torch.from_numpy(packed.position_ids).to(device),
        "groups": packed.groups,
        "gather_index": torch.from_numpy(packed.gather_index).to(device),
    }
    with_states = model.attrs.get("output_hidden_states", False)
    if with_states:
        kwargs["output_hidden_states"] = True
    output, torch_backprop = shim(ArgsKwargs(args=(), kwargs=kwargs), is_train)
    all_states = None
    if with_states:
        output, states = output
        all_states = [_to_xp(model, h) for h in states]
    hidden = _to_xp(model, output)
    cls_tok, sep_tok = tokenizer.cls_token, tokenizer.sep_token
    wordpieces = [
        doc_wordpieces(p, cls_tok, sep_tok, cls_id, sep_id) if p is not None else None
        for p in doc_pieces
    ]
    batch = ModernBertBatch.from_docs(docs, doc_pieces, wordpieces, hidden, all_states)

    def backprop(d_batch: Any) -> List[Doc]:
        d_hidden = d_batch.model_output.last_hidden_state
        if d_hidden.shape[0]:
            d_hidden = d_hidden.to(output.device)
            torch_backprop(ArgsKwargs(args=(output,), kwargs={"grad_tensors": (d_hidden,)}))
        return docs

    return batch, backprop


def _to_xp(model: Model, tensor: Any) -> Any:
    """A torch output as an array of the model's ops (numpy or cupy), detached."""
    array = torch2xp(tensor.detach())
    if model.ops.xp is not numpy and isinstance(array, numpy.ndarray):
        array = model.ops.asarray(array)
    return array
