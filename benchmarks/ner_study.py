"""NER study (issue 19): an honest Hugging Face anchor, and what costs our spaCy pipeline points.

One run = one system trained on the NER budget and scored on `--split`: `dev` (default; the
last 10% of CoNLL-2003 train, for every choice), `test` (CoNLL-2003 valid, for reporting only)
or `legacy` (issue 19's data: shuffled train sentences, scored on valid, the rows below were
made so). `benchmarks/ner_protocol.py` runs the issue-33 protocol on top of this script.
The result is appended as one JSON line to `--results` (default
`benchmarks/ner_study_results.jsonl`, committed beside this script). Every system starts from
the same random-init checkpoint (no pretrained weights exist offline), the one
`python -m benchmarks accuracy` creates (`.benchmark_cache/modernbert-small-random`).

Budget (the benchmark's): 4,000 CoNLL-2003 train sentences (shuffled with seed 0), 3 epochs,
32 sentences per step (375 steps), the full validation split (3,250 sentences), 1 torch thread.

    # the HF anchor, its usual recipe (AdamW, weight decay 0.01, 10% linear warmup, linear decay)
    python benchmarks/ner_study.py hf --lr 5e-4 --tag sweep
    # ours: transformer + ner; any option of `ours_ner` as --set key=value
    python benchmarks/ner_study.py ours --lr 1e-3 --tag sweep
    python benchmarks/ner_study.py ours --lr 1e-3 --set pooling=first --tag ablation

Both systems reuse the benchmark's own functions (`benchmarks/accuracy.py`):
the HF loop is `train_hf_ner` itself; ours builds the
benchmark's pipeline pieces (`systems.ours_transformer`, `systems.listener`) with the setting
under study changed, and trains as `spacy train` does (`nlp.update(sgd=False)`, then every
pipe's `finish_update`, then the thinc schedule). Rows of the results file without a `loop`
setting ran before that was fixed, with `loop=nlp_update` (see `ours_ner`).
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import accuracy as acc  # noqa: E402
from benchmarks import data as bdata  # noqa: E402
from benchmarks import systems  # noqa: E402

N_TRAIN, EPOCHS, BATCH, SEED = 4000, 3, 32, 0
DATA_DIR = bdata.DEFAULT_DATA_DIR if bdata.DEFAULT_DATA_DIR.exists() else Path("/work/shared/data")
BLOCK = 10
# `sentence_rules` of every run: the value configs/*.cfg ship (tests/project/test_paragraphs.py
# checks that they agree), so that the "shipped path" views read paragraphs as users get them
SHIPPED_RULES = "news"


def load(
    n_train: int = N_TRAIN,
    n_valid: Optional[int] = None,
    seed: int = SEED,
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
):
    """The issue-19 data ("legacy" split): a seeded shuffle of single train sentences, scored on valid."""
    train = bdata.read_conll(data_dir / bdata.CONLL_TRAIN)
    random.Random(seed).shuffle(train)
    return train[:n_train], bdata.read_conll(data_dir / bdata.CONLL_VALID, limit=n_valid)


def load_split(
    split: str,
    n_train: int = N_TRAIN,
    n_eval: Optional[int] = None,
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
):
    """The issue-33 protocol's data: (train, eval) sentences, in reading order.

    CoNLL-2003 train in file order (consecutive sentences come from one article) is cut in
    two, fixed (`data.train_pool`): the last `data.DEV_FRACTION` is the dev split that makes every choice ("dev"), the
    rest the training pool. Training data: `n_train // BLOCK` blocks of `BLOCK` consecutive
    pool sentences, drawn with seed 0 whatever the run's seed (every run trains on the same
    sentences), kept in reading order so that `docs_of` joins real neighbours. "test" scores
    on CoNLL valid, which no choice may read; "legacy" is the issue-19 data (`load`).
    """
    if split == "legacy":
        return load(n_train, n_eval, data_dir=data_dir)
    if split not in ("dev", "test"):
        raise ValueError(
            f"unknown split {split!r}: dev (carved from train, for choices) | test (CoNLL valid) | legacy"
        )
    pool, dev = bdata.train_pool(data_dir)
    blocks = [pool[i : i + BLOCK] for i in range(0, len(pool) - BLOCK + 1, BLOCK)]
    random.Random(0).shuffle(blocks)
    train = [s for block in blocks[: max(1, n_train // BLOCK)] for s in block]
    held = dev if split == "dev" else bdata.read_conll(data_dir / bdata.CONLL_VALID)
    return train, held[:n_eval] if n_eval else held


# ------------------------------------------------------------------------------ HF anchor

# Every run is scored on sentences (the headline F1) and on docs of 10 consecutive sentences
# (a user's paragraph, `f1_by_doc_size`).
EVAL_DOCS_OF = (1, 10)


def hf_ner(
    checkpoint: Path,
    train,
    valid,
    lr: float,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    seed: int = SEED,
    warmup: float = acc.WARMUP_FRACTION,
    weight_decay: float = 0.01,
    eval_docs_of=EVAL_DOCS_OF,
) -> Dict[str, Any]:
    """`accuracy.train_hf_ner`: ModernBertForTokenClassification (first piece labelled), AdamW
    (weight decay 0.01), `warmup` of the steps linear warmup then linear decay to 0, grad-norm clip 1.0."""
    return acc.train_hf_ner(
        checkpoint,
        train,
        valid,
        epochs,
        batch_size,
        seed,
        lr=lr,
        warmup=warmup,
        weight_decay=weight_decay,
        eval_docs_of=eval_docs_of,
        errors=True,
    )


# ------------------------------------------------------------------------------------ ours


def group_sentences(sents: List[Any], docs_of: int = 1, docs_of_mix: int = 0, seed: int = SEED):
    """Consecutive sentences joined into training docs, in order: `docs_of` per doc, or with
    `docs_of_mix` a size drawn from 1..docs_of_mix (with `seed`) for each doc."""
    if not docs_of_mix:
        return [sents[i : i + docs_of] for i in range(0, len(sents), docs_of)]
    groups, start, draw = [], 0, random.Random(seed)
    while start < len(sents):
        size = draw.randint(1, docs_of_mix)
        groups.append(sents[start : start + size])
        start += size
    return groups


def block_context(texts: List[str], k: int, block: int):
    """(text before, text after) sentence k inside its block of `block` consecutive sentences
    (`context_block`): the block's other sentences, never a sentence of another block."""
    first = k - k % block
    inside = texts[first : first + block]
    return " ".join(inside[: k - first]), " ".join(inside[k - first + 1 :])


def make_batches(
    examples: List[Any],
    rng: random.Random,
    *,
    batch_size: int,
    docs_of: int = 1,
    block_shuffle: int = 0,
    batch_words: int = 0,
    neighbours: Optional[Dict[int, List[Any]]] = None,
) -> List[List[Any]]:
    """One epoch's steps of `ours_ner` (shuffled with `rng`): about `batch_size` sentences per
    step (`docs_of`-sentence docs), by words (`batch_words`), or whole blocks of `block_shuffle`
    docs; with `neighbours` (`memory_neighbours`), each example followed by its block's
    unannotated sentences, the annotated examples and their order unchanged."""
    if block_shuffle:
        blocks = [examples[i : i + block_shuffle] for i in range(0, len(examples), block_shuffle)]
        rng.shuffle(blocks)
        per = block_shuffle * max(1, round(batch_size / block_shuffle))
        order = [eg for block in blocks for eg in block]
        return [order[i : i + per] for i in range(0, len(order), per)]
    order = list(examples)
    rng.shuffle(order)
    if batch_words:
        from spacy.training.batchers import minibatch_by_words

        return list(
            minibatch_by_words(order, size=batch_words, tolerance=0.2, discard_oversize=False)
        )
    per = max(1, round(batch_size / docs_of))
    steps = [order[i : i + per] for i in range(0, len(order), per)]
    if neighbours:
        steps = [[x for eg in step for x in (eg, *neighbours[id(eg)])] for step in steps]
    return steps


def memory_neighbours(
    examples, groups, block: int, make_doc, trained: bool = True
) -> Dict[int, List[Any]]:
    """`ours_ner(memory_block=block)`: for each annotated one-sentence example k (keyed by
    id), the other sentences of its block of `block` consecutive training sentences as examples
    without NER annotation (spaCy's ner skips them), each doc in memory group k with example k's
    own (`document_memory.set_memory_group`), so that they are pooled as one text; with
    `trained` False they are read for the memory only (no gradient reaches them)."""
    from spacy.training import Example

    from spacy_modernbert.layers.document_memory import set_memory_group

    out: Dict[int, List[Any]] = {}
    for k, eg in enumerate(examples):
        set_memory_group(eg.predicted, k)
        first = k - k % block
        others = []
        for j in range(first, min(first + block, len(groups))):
            if j != k:
                doc = set_memory_group(make_doc(groups[j]), k, trained)
                others.append(Example.from_dict(doc, {"words": [t.text for t in doc]}))
        out[id(eg)] = others
    return out


def as_spacy_train_reads(nlp, group):
    """The training Example `spacy train` makes of a group of (words, BILUO tags) sentences:
    the reference doc `convert-conll` writes (`conll_sentences_to_doc`: words joined by single
    spaces, sentence starts, entities), and as the predicted side its text tokenized by `nlp`
    (spaCy's Corpus with gold_preproc false), aligned to the reference by characters."""
    from spacy.training import Example, biluo_to_iob

    from spacy_modernbert.data.from_conll import conll_sentences_to_doc

    written = conll_sentences_to_doc(
        nlp.vocab, [list(zip(words, biluo_to_iob(list(tags)))) for words, tags in group]
    )
    return Example(nlp.make_doc(written.text), written)


def ours_ner(
    checkpoint: Path,
    train,
    valid,
    lr: float,
    epochs: int = EPOCHS,
    batch_size: int = BATCH,
    seed: int = SEED,
    warmup: float = 0.1,
    schedule: str = "warmup_linear",
    drop: float = 0.1,
    L2: float = 0.01,
    grad_clip: float = 1.0,
    eps: float = 1e-8,
    beta1: float = 0.9,
    beta2: float = 0.999,
    pooling: str = "mean",
    grad_factor: float = 1.0,
    hidden_width: int = 64,
    maxout_pieces: int = 2,
    use_upper: bool = False,
    extra_state_tokens: bool = False,
    docs_of: int = 1,
    batch_words: int = 0,
    head: str = "ner",
    max_length: int = 512,
    grad_clip_norm: Optional[float] = None,
    learn_rate_scale: float = 1.0,
    loop: str = "spacy_train",
    eval_docs_of=EVAL_DOCS_OF,
    oracle_cut: int = 100,
    sentence_windows: bool = False,
    block_shuffle: int = 0,
    max_steps: int = 0,
    docs_of_mix: int = 0,
    sentence_context: int = 0,
    context_block: int = 0,
    sentence_context_dropout: float = 0.0,
    retokenize: bool = False,
    doc_memory: bool = False,
    memory_block: int = 0,
    memory_block_grad: bool = True,
    save_to: Optional[Path] = None,
) -> Dict[str, Any]:
    """Transformer (ours) + `ner` listening to it, trained as `spacy train` does.

    lr/warmup/schedule: thinc Adam with `warmup_linear.v1` (warmup = fraction of the run's
        steps, total_steps = the run's steps) or `constant` (the old benchmark: no schedule).
    docs_of: sentences joined per training Doc (1: one sentence per Doc); steps still hold
        about `batch_size` sentences. batch_words: batch by words (spaCy's `batch_by_words`
        with this size) instead of by sentences.
    pooling: "mean" | "first" | "last" (pieces -> token vector in the listener).
    grad_clip_norm: the encoder's global grad-norm clip (architecture setting; None: off).
        When set, each history point also holds `max_grad_norm`, the largest global norm of
        the encoder's gradients (before clipping) since the previous point; a clip of 1e9
        measures the norms without clipping.
    learn_rate_scale: the encoder's `learn_rate_scale` (architecture setting): the encoder
        trains at `lr` times it, the ner head at `lr`.
    loop: "nlp_update": `nlp.update(batch, sgd=optimizer)`, where spaCy 3.8 calls each pipe's
        `finish_update` right after its own `update`, so the transformer's step runs before
        the ner's backward reaches it (the encoder applies each gradient one step late);
        "spacy_train" (default): `nlp.update(batch, sgd=False)` then every trainable pipe's
        `finish_update`, as `spacy train` (`train_while_improving`) does.
    oracle_cut: the ner's `update_with_oracle_cut_size` (spaCy's default 100 tokens: longer
        training docs are cut into segments of about that many moves).
    block_shuffle: shuffle blocks of this many consecutive training docs and batch whole
        blocks (`batch_size` rounded to blocks): one-sentence docs in the batches that
        10-sentence docs make (a few articles per step), the control for docs_of=10.
    sentence_windows: the encoder's `sentence_windows` (one window per sentence); every
        training and scored doc then carries its sentence starts.
    sentence_context: the encoder's `sentence_context` (needs sentence_windows): each sentence's
        window also holds this many pieces of its doc on each side. Its vectors read the
        neighbouring sentences only in multi-sentence docs: the "10" view (10 consecutive
        sentences per doc, gold starts); the headline view (sentences) has no neighbours.
    context_block: with `sentence_context`, every training doc (one sentence, docs_of=1) carries
        the text of the other sentences of its block of this many consecutive training
        sentences as the text around it (`encoder.context.set_context`; the training data is
        blocks of `BLOCK` consecutive sentences): FLERT's training, one sentence per example
        with its neighbours as context, batched as the sentence recipe is.
    sentence_context_dropout: the encoder's `sentence_context_dropout`: in training, each
        sentence is read without its context with this probability (inference always reads it).
    doc_memory: the ner reads its listener through `spacy-modernbert.DocumentMemory.v1`
        (each token's vector beside the mean of the doc's vectors of the same lowercase word;
        pooled document memory): multi-sentence docs share evidence about repeated names
        without the encoder attending across sentences.
    memory_block: with doc_memory, sentence-level training (docs_of=1, the sentence recipe's
        examples, shuffle and steps) whose memory pools over each training sentence's block of
        this many consecutive training sentences: a step holds its `batch_size` annotated
        sentences, each followed by the block's other sentences as docs without NER annotation
        (spaCy's ner makes no state for them: no loss of their own), all of one memory group
        (`document_memory.set_memory_group`), so the annotated sentence's memory reads the whole
        block and the gradient reaches the neighbours' encodings only through that memory. The
        encoder reads every sentence alone; a step encodes `memory_block` times the sentences.
    memory_block_grad: with memory_block, False reads the neighbours for the memory only (their
        encodings get no gradient from it, `set_memory_group(trained=False)`; the encoder's
        backward still runs over them, with zeros).
    docs_of_mix: training docs of a mix of sizes, 1..docs_of_mix consecutive sentences each
        (drawn with the run's seed), instead of `docs_of`: sentences and paragraphs both seen.
    retokenize: train on docs made as `spacy train` makes them (its Corpus, gold_preproc false):
        the predicted side is `nlp.make_doc(text)`, spaCy's tokens of the doc's text (words
        joined by single spaces, as `convert-conll` writes it), aligned to CoNLL's tokens as the
        reference (`as_spacy_train_reads`); batches count the predicted tokens, as spaCy's
        batcher does, and the predicted docs carry no sentence starts, as in `spacy train`.
        Scoring is unchanged (CoNLL's tokens). Not with context_block.
    max_steps: stop after this many updates (0: `epochs` whole epochs), the schedule ending
        with them, as `spacy train`'s `max_steps` (the README path's budget, ner_readme_path.py).
    save_to: save the trained pipeline there (before scoring, as trained), so that other
        views of the same model are scored without training again (`ner_paragraphs.py`).
    head: "ner" (spaCy's transition-based ner). The token-level BILUO tagging head
        (`head=biluo_ner`, `head_hidden`) was tried at commit d6dab72 and dropped (BENCHMARKS.md).
    """
    if retokenize and context_block:
        raise ValueError(
            "retokenize makes the training docs as spacy train does, which records no context "
            "around them: leave context_block at 0"
        )
    import spacy
    from spacy.tokens import Doc
    from spacy.training import Example, iob_to_biluo

    import spacy_modernbert  # noqa: F401

    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    trf = systems.ours_transformer(checkpoint, max_length=max_length, grad_clip_norm=grad_clip_norm)
    if learn_rate_scale != 1.0:
        trf["model"]["learn_rate_scale"] = learn_rate_scale
    # the rules that split a paragraph without sentence starts ("10sz"), as the shipped configs
    # set them (the architecture's default is "sentencizer", the behaviour before "news")
    trf["model"]["sentence_rules"] = SHIPPED_RULES
    if sentence_windows:
        trf["model"]["sentence_windows"] = True
    if sentence_context:
        trf["model"]["sentence_context"] = sentence_context
    if sentence_context_dropout:
        trf["model"]["sentence_context_dropout"] = sentence_context_dropout
    nlp.add_pipe("transformer", config=trf)
    listener = systems.listener()
    listener["grad_factor"] = grad_factor
    listener["pooling"] = {"@layers": f"reduce_{pooling}.v1"}
    tok2vec = listener
    if doc_memory:
        # registers the layer where the installed entry points predate it
        from spacy_modernbert.layers.document_memory import NAME

        tok2vec = {"@architectures": NAME, "tok2vec": listener, "key": "lower"}
    if head == "ner":
        model = systems.ner_config()["model"]
        model.update(
            hidden_width=hidden_width,
            maxout_pieces=maxout_pieces,
            use_upper=use_upper,
            extra_state_tokens=extra_state_tokens,
            tok2vec=tok2vec,
        )
        nlp.add_pipe("ner", config={"model": model, "update_with_oracle_cut_size": oracle_cut})
    else:
        raise ValueError(
            f"unknown head {head!r}: ner (the token-level biluo_ner of commit d6dab72 was dropped, see BENCHMARKS.md)"
        )

    sents = []
    for words, tags in train:
        sents.append((list(words), iob_to_biluo(list(tags))))
    groups = group_sentences(sents, docs_of, docs_of_mix, seed)
    if docs_of_mix:
        docs_of = max(1, round(len(sents) / len(groups)))  # docs per step: ~batch_size sentences
    examples = []

    def make_doc(group, with_starts=sentence_windows):
        words = [w for ws, _ in group for w in ws]
        starts = [j == 0 for ws, _ in group for j in range(len(ws))] if with_starts else None
        return Doc(nlp.vocab, words=words, sent_starts=starts)

    if context_block and (docs_of != 1 or docs_of_mix or not sentence_context):
        raise ValueError("context_block needs docs_of=1 and sentence_context > 0")
    if memory_block and (
        not doc_memory or docs_of != 1 or docs_of_mix or block_shuffle or retokenize or batch_words
    ):
        raise ValueError(
            "memory_block trains sentence by sentence with the memory over each sentence's block: "
            "it needs doc_memory=True and docs_of=1, without docs_of_mix, block_shuffle, "
            "retokenize or batch_words"
        )
    texts = [" ".join(ws) for ws, _ in sents]
    for k, group in enumerate(groups):
        doc = make_doc(group)
        if context_block:
            from spacy_modernbert.encoder.context import set_context

            set_context(doc, *block_context(texts, k, context_block))
        ents = [t for _, ts in group for t in ts]
        if retokenize:
            examples.append(as_spacy_train_reads(nlp, group))
            continue
        examples.append(Example.from_dict(doc, {"words": [t.text for t in doc], "entities": ents}))
    n_words = sum(len(ws) for ws, _ in sents)
    # memory_block: each annotated sentence's block neighbours, unannotated, in its memory group
    neighbours = (
        memory_neighbours(examples, groups, memory_block, make_doc, memory_block_grad)
        if memory_block
        else {}
    )

    rng = random.Random(seed)

    def batches() -> List[List[Any]]:
        return make_batches(
            examples,
            rng,
            batch_size=batch_size,
            docs_of=docs_of,
            block_shuffle=block_shuffle,
            batch_words=batch_words,
            neighbours=neighbours,
        )

    steps_per_epoch = len(batches())
    rng = random.Random(seed)  # the same shuffles as if batches() had not been called
    total = epochs * steps_per_epoch
    if max_steps:
        total = min(total, max_steps)
    optimizer = acc.spacy_optimizer(
        lr, total, warmup, schedule, L2=L2, grad_clip=grad_clip, eps=eps, beta1=beta1, beta2=beta2
    )
    nlp.initialize(lambda: examples, sgd=optimizer)
    t0 = time.perf_counter()
    history = []
    step = 0
    shim = nlp.get_pipe("transformer").model.shims[0]
    max_norm = (
        0.0  # the encoder's largest global grad norm (before clipping) since the last history point
    )
    for epoch in range(epochs):
        losses: Dict[str, float] = {}
        for batch in batches():
            if step >= total:
                break
            before = dict(losses)
            if loop == "spacy_train":
                systems.spacy_train_update(nlp, batch, optimizer, drop=drop, losses=losses)
            elif loop == "nlp_update":
                nlp.update(batch, sgd=optimizer, drop=drop, losses=losses)
            else:
                raise ValueError(f"unknown loop {loop!r}: nlp_update | spacy_train")
            optimizer.step_schedules()
            step += 1
            max_norm = max(max_norm, shim.last_grad_norm or 0.0)
            if step % 25 == 0 or step == 1:
                point = {k: round(float(v - before.get(k, 0.0)), 3) for k, v in losses.items()} | {
                    "step": step
                }
                if grad_clip_norm is not None:
                    point["max_grad_norm"] = round(max_norm, 1)
                history.append(point)
                max_norm = 0.0
        acc.log(
            f"  ours epoch {epoch + 1}/{epochs}: "
            + ", ".join(f"{k} {v:.1f}" for k, v in losses.items())
        )
    train_seconds = time.perf_counter() - t0
    if save_to is not None:
        Path(save_to).parent.mkdir(parents=True, exist_ok=True)
        nlp.to_disk(save_to)

    def score(k, with_starts=sentence_windows):
        groups = [valid[i : i + k] for i in range(0, len(valid), k)]
        docs = nlp.pipe((make_doc(group, with_starts) for group in groups), batch_size=64)
        pred = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in docs]
        gold = [bdata.iob_spans(tags) for _, tags in acc.join_sentences(valid, k)]
        return {**acc.span_prf(gold, pred), "errors": acc.span_errors(gold, pred)}

    by_size = {k: score(k) for k in eval_docs_of}
    if sentence_windows and max(eval_docs_of) > 1:
        # paragraphs as `nlp("a paragraph")` gives them: no sentence starts, so the encoder
        # splits them by the encoder's `sentence_rules`, each sentence in its own window (with
        # its context when `sentence_context` is set; before doc_memory, only then)
        by_size[f"{max(eval_docs_of)}sz"] = score(max(eval_docs_of), with_starts=False)
    if not sentence_windows and max(eval_docs_of) > 1:
        # the same trained pipeline, switched to sentence windows at inference only (config
        # setting, no retraining): paragraphs read sentence by sentence, at the gold sentence
        # starts ("10sw") and, as the shipped configs read `nlp("a paragraph")`, at the
        # sentences the encoder's `sentence_rules` find in a doc without boundaries ("10sz")
        nlp.get_pipe("transformer").model.attrs["sentence_windows"] = True
        by_size[f"{max(eval_docs_of)}sw"] = score(max(eval_docs_of), with_starts=True)
        by_size[f"{max(eval_docs_of)}sz"] = score(max(eval_docs_of), with_starts=False)
    return {
        **by_size[eval_docs_of[0]],
        "f1_by_doc_size": {k: m["f1"] for k, m in by_size.items()},
        "train_seconds": train_seconds,
        "steps": total,
        "train_words_per_s": n_words * step / (steps_per_epoch * train_seconds),
        "loss_history": history,
    }


# ------------------------------------------------------------------------------------ main


def report(results: Path) -> str:
    """Markdown tables of every run in `results`: the sweep, then each ablation vs its base run."""
    from benchmarks.report import table

    runs = [
        json.loads(line) for line in results.read_text(encoding="utf8").splitlines() if line.strip()
    ]

    def row(r: Dict[str, Any]) -> List[Any]:
        change = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "-"
        return [
            r["system"],
            f"{r['lr']:g}",
            change,
            f"{r['f1']:.2f}",
            f"{r['p']:.2f}",
            f"{r['r']:.2f}",
            f"{r['train_seconds']:.0f}",
            f"{r['train_words_per_s']:.0f}",
            r["utc"],
        ]

    headers = ["system", "lr", "change", "F1", "P", "R", "train s", "words/s", "UTC"]
    out = []
    for tag in dict.fromkeys(r["tag"] for r in runs):
        rows = sorted((r for r in runs if r["tag"] == tag), key=lambda r: (r["system"], r["lr"]))
        out.append(f"{tag or 'untagged'}:\n\n" + table(headers, [row(r) for r in rows]))
    return "\n\n".join(out)


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    import torch

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "system", choices=["hf", "ours", "report"], help="report: print the tables of --results"
    )
    p.add_argument("--lr", type=float)
    p.add_argument(
        "--set", action="append", default=[], help="key=value: a keyword of hf_ner / ours_ner"
    )
    p.add_argument("--tag", default="", help="sweep | ablation | ... (kept in the result line)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--split",
        choices=["dev", "test", "legacy"],
        default="dev",
        help="dev: score on the last 10%% of CoNLL train (every choice); test: CoNLL valid (report only); "
        "legacy: issue 19's data (shuffled train sentences, scored on valid)",
    )
    p.add_argument(
        "--seed", type=int, default=SEED, help="the run's seed (initialization, shuffles, dropout)"
    )
    p.add_argument("--n-train", type=int, default=N_TRAIN)
    p.add_argument(
        "--n-valid", type=int, default=None, help="score on the first N sentences of the split"
    )
    p.add_argument("--cache-dir", type=Path, default=ROOT / ".benchmark_cache")
    p.add_argument("--checkpoint", type=Path, default=None)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
    )
    p.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "ner_study_results.jsonl")
    p.add_argument(
        "--save-model",
        type=Path,
        default=None,
        help="ours: save the trained pipeline to this directory (scored again by ner_paragraphs.py)",
    )
    args = p.parse_args(argv)
    if args.system == "report":
        print(report(args.results))
        return {}
    if args.lr is None:
        p.error("--lr is required to train a system")

    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or bdata.ensure_checkpoint(
        args.cache_dir / "modernbert-small-random", "small", args.data_dir, log=acc.log
    )
    train, valid = load_split(args.split, args.n_train, args.n_valid, data_dir=args.data_dir)
    settings = dict(kv.split("=", 1) for kv in args.set)
    settings = {k: _value(v) for k, v in settings.items()}
    acc.log(
        f"{args.system} lr {args.lr} {settings} seed {args.seed} ({len(train)} train, {len(valid)} {args.split})"
    )
    t0 = time.perf_counter()
    run = hf_ner if args.system == "hf" else ours_ner
    if args.save_model is not None:
        if args.system != "ours":
            p.error("--save-model saves our pipeline: use it with `ours`")
        settings_run = {**settings, "save_to": args.save_model}
    else:
        settings_run = settings
    result = run(checkpoint, train, valid, args.lr, seed=args.seed, **settings_run)
    if "train_words_per_s" not in result:
        n_words = sum(len(w) for w, _ in train)
        result["train_words_per_s"] = (
            settings.get("epochs", EPOCHS) * n_words / result["train_seconds"]
        )
    line = {
        "system": args.system,
        "lr": args.lr,
        "settings": settings,
        "tag": args.tag,
        "f1": round(100 * result["f1"], 2),
        "p": round(100 * result["precision"], 2),
        "r": round(100 * result["recall"], 2),
        "train_seconds": round(result["train_seconds"], 1),
        "train_words_per_s": round(result["train_words_per_s"], 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "n_train": len(train),
        "n_valid": len(valid),
        "threads": args.threads,
        "split": args.split,
        "seed": args.seed,
        "f1_by_doc_size": {
            str(k): round(100 * v, 2) for k, v in result.get("f1_by_doc_size", {}).items()
        },
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "loss_history": result.get("loss_history"),
        # where the headline view's entities go wrong (accuracy.span_errors)
        **({"errors": result["errors"]} if "errors" in result else {}),
    }
    acc.log(
        f"RESULT {args.system} lr {args.lr} {settings}: F1 {line['f1']} (P {line['p']} R {line['r']}), "
        f"train {line['train_seconds']} s, {line['train_words_per_s']} words/s"
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    with args.results.open("a", encoding="utf8") as f:
        f.write(json.dumps(line) + "\n")
    return line


if __name__ == "__main__":
    main()
