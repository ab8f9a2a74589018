"""Benchmark inputs: CoNLL-2003 / SMS Spam in the shapes the baselines need, speed texts, cached checkpoints.

The real data lives beside the checkout in `../shared/data` (never copied into the repo);
`--data-dir` points elsewhere. When it is missing (CI, tests), speed texts fall back to
built-in English sentences so the commands still run.
"""

import json
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy_modernbert.data.converters import read_conll_sentences
from spacy_modernbert.data.converters import read_sms as read_sms_messages
from spacy_modernbert.data.splits import stratified_split as stratified_indices

# The checkout's neighbour `../shared/data` (relative to the repository root, not the working directory).
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CONLL_TRAIN = Path("conll2003") / "train.iob"
CONLL_VALID = Path("conll2003") / "valid.iob"
SMS = Path("sms_spam") / "SMSSpamCollection"

Sentence = Tuple[List[str], List[str]]  # words, IOB2 tags

_FALLBACK = [
    "The quick brown fox jumps over the lazy dog near the river bank .",
    "European Union officials met in Brussels on Tuesday to discuss trade with Japan .",
    "Maria Lopez joined the platform group in 2021 and now leads the payments service .",
    "He said the results were better than expected , and the shares rose 3.5 percent .",
    "Please call me back when you get this message , I will be home after six .",
    "At 03:12 UTC the gateway returned errors for seven minutes before the rollback .",
    "Germany beat France 2-1 in a friendly match played in Berlin on Sunday evening .",
    "The company reported a net profit of 12 million dollars for the third quarter .",
]


def read_conll(path: Path, limit: Optional[int] = None) -> List[Sentence]:
    """(words, tags) per sentence of a CoNLL IOB file (the data layer's reader; -DOCSTART- skipped)."""
    return [
        ([w for w, _ in sent], [t for _, t in sent])
        for sent in read_conll_sentences(path, limit)
        if sent
    ]


# The dev split of every NER choice (issue 33): the last tenth of CoNLL-2003 train, fixed.
DEV_FRACTION = 0.1


def train_pool(data_dir: Path) -> Tuple[List[Sentence], List[Sentence]]:
    """(pool, dev): CoNLL-2003 train in file order cut in two, fixed; dev is the last
    `DEV_FRACTION`. Nothing of dev may be trained on (labelled or as pretraining text);
    CoNLL valid, the test split, chooses nothing."""
    sents = read_conll(Path(data_dir) / CONLL_TRAIN)
    n_dev = round(DEV_FRACTION * len(sents))
    return sents[:-n_dev], sents[-n_dev:]


def iob_spans(tags: Sequence[str]) -> List[Tuple[int, int, str]]:
    """(start, end, label) word spans of IOB2 tags; a stray I- opens a span (as conlleval)."""
    spans = []
    start, label = None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, name = tag.partition("-")
        if start is not None and (prefix in ("O", "B") or name != label):
            spans.append((start, i, label))
            start, label = None, None
        if prefix in ("B", "I") and start is None:
            start, label = i, name
    return spans


def read_sms(path: Path, limit: Optional[int] = None) -> List[Tuple[int, str]]:
    """(1 if spam else 0, text) per message of the SMS Spam Collection (the data layer's reader)."""
    return [(int(spam), text.strip()) for text, spam in read_sms_messages(path, limit)]


def stratified_split(
    rows: Sequence[Tuple[int, str]], test_frac: float, seed: int
) -> Tuple[list, list]:
    """Split (label, text) rows into train/test with the same spam rate in both (the demo's splitter)."""
    train, _, test = stratified_split3(rows, 0.0, test_frac, seed)
    return train, test


def stratified_split3(
    rows: Sequence[Tuple[int, str]], dev_frac: float, test_frac: float, seed: int
) -> Tuple[list, list, list]:
    """(train, dev, test) of (label, text) rows, each with the same spam rate."""
    parts = stratified_indices(
        [label for label, _ in rows], dev_frac=dev_frac, test_frac=test_frac, seed=seed
    )
    return tuple([rows[i] for i in part] for part in parts)


def sentence_texts(data_dir: Path, limit: int = 5000) -> List[str]:
    """Plain-text sentences (CoNLL-2003 validation words joined by spaces), or the fallback."""
    path = Path(data_dir) / CONLL_VALID
    if path.exists():
        texts = [" ".join(words) for words, _ in read_conll(path, limit=limit)]
        texts = [t for t in texts if len(t.split()) >= 5]
        if texts:
            return texts
    print(
        f"WARNING: {path} not found: the benchmark runs on built-in sentences, not CoNLL-2003 "
        "(pass --data-dir DIR with conll2003/ and sms_spam/)",
        flush=True,
    )
    rng = random.Random(0)
    return [rng.choice(_FALLBACK) for _ in range(limit)]


def short_docs(sentences: Sequence[str], n: int) -> List[str]:
    return [sentences[i % len(sentences)] for i in range(n)]


def paragraphs(sentences: Sequence[str], n: int, words: int = 300, offset: int = 0) -> List[str]:
    """`n` paragraphs of consecutive sentences, each just over `words` words."""
    out, current, count = [], [], 0
    i = offset
    while len(out) < n:
        s = sentences[i % len(sentences)]
        current.append(s)
        count += len(s.split())
        i += 1
        if count >= words:
            out.append(" ".join(current))
            current, count = [], 0
    return out


def long_doc(sentences: Sequence[str], count_tokens, n_tokens: int, offset: int = 0) -> str:
    """One document of consecutive sentences with at most `n_tokens` model tokens ([CLS]/[SEP] included)."""
    parts: List[str] = []
    i = offset
    # grow by estimate, then trim sentence by sentence
    while True:
        parts.append(sentences[i % len(sentences)])
        i += 1
        if len(parts) % 20 == 0 and count_tokens(" ".join(parts)) >= n_tokens:
            break
    while count_tokens(" ".join(parts)) > n_tokens:
        parts.pop()
    return " ".join(parts)


def tokenizer_texts(data_dir: Path) -> List[str]:
    """Text to train a checkpoint's tokenizer on: CoNLL-2003 train only (normal training text).

    Never SMS, never validation/test text: a tokenizer that saw the anomalies (spam) or the
    test docs gives their words pieces of their own, an advantage the anchors do not get
    (issue 24). Benchmarks with another training set pass its texts to `ensure_checkpoint`.
    """
    data_dir = Path(data_dir)
    texts: List[str] = []
    if (data_dir / CONLL_TRAIN).exists():
        texts.extend(" ".join(w) for w, _ in read_conll(data_dir / CONLL_TRAIN))
    if not texts:
        print(
            f"WARNING: no CoNLL-2003 train in {data_dir}: the checkpoint's tokenizer is trained on "
            "built-in sentences (pass --data-dir DIR)",
            flush=True,
        )
    return texts or list(_FALLBACK)


# ---------------------------------------------------------------------------- checkpoints

SHAPES: Dict[str, Dict[str, int]] = {
    # ModernBERT-base's shape (random weights): what the speed benchmark runs.
    "base": dict(
        hidden_size=768,
        num_hidden_layers=22,
        num_attention_heads=12,
        intermediate_size=1152,
        local_attention=128,
        global_attn_every_n_layers=3,
        vocab_size=50368,
    ),
    # A small model that trains from scratch in minutes on 2 CPU cores (accuracy benchmark).
    "small": dict(
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=256,
        local_attention=128,
        global_attn_every_n_layers=3,
        vocab_size=8192,
    ),
    # ~7M parameters (6 x 256, BPE 16k): the pretraining benchmark (benchmarks/pretrain.py).
    "pretrain": dict(
        hidden_size=256,
        num_hidden_layers=6,
        num_attention_heads=4,
        intermediate_size=384,
        local_attention=128,
        global_attn_every_n_layers=3,
        vocab_size=16384,
    ),
    # The distillation benchmark's student (benchmarks/distill.py): 2 x 64, small's tokenizer size.
    "distill_student": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        local_attention=128,
        global_attn_every_n_layers=3,
        vocab_size=8192,
    ),
    # A wider distillation student within 1/4 of small's encoder FLOPs per token (0.246 on CoNLL
    # valid; benchmarks/flops.py): 3 x 72, chosen on the dev split (benchmarks/distill_dev.py).
    "distill_student_3x72": dict(
        hidden_size=72,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=144,
        local_attention=128,
        global_attn_every_n_layers=3,
        vocab_size=8192,
    ),
    # Unit tests.
    "tiny": dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=96,
        local_attention=16,
        global_attn_every_n_layers=3,
        vocab_size=1024,
    ),
}


def ensure_checkpoint(
    path: Path,
    shape: str,
    data_dir: Path,
    log=print,
    texts: Optional[Sequence[str]] = None,
    text_name: str = "conll2003-train",
) -> Path:
    """Create a random-weight checkpoint of `shape` at `path`, or reuse the one already there.

    Its BPE tokenizer is trained on `texts` (default: `tokenizer_texts`, CoNLL-2003 train),
    named `text_name` in the directory's marker; a cached checkpoint of another shape or
    whose tokenizer saw other text is refused, never silently reused.
    """
    from spacy_modernbert.tiny import create_tiny_checkpoint

    path = Path(path)
    spec = dict(SHAPES[shape])
    marker = path / "benchmark_shape.json"
    if (path / "config.json").exists():
        stored = json.loads(marker.read_text()) if marker.exists() else {}
        if stored.get("shape") != shape or stored.get("tokenizer_text") != text_name:
            raise ValueError(
                f"{path} holds a checkpoint of shape {stored.get('shape')!r} whose tokenizer saw "
                f"{stored.get('tokenizer_text', 'unrecorded text')!r}, not {shape!r} on {text_name!r}: "
                "delete it or pass another --cache-dir"
            )
        return path
    log(
        f"creating a {shape}-shaped random checkpoint at {path}, tokenizer trained on {text_name} (once; cached)"
    )
    import tempfile

    vocab_size = spec.pop("vocab_size")
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "text.txt"
        lines = [
            t.replace("\n", " ")
            for t in (texts if texts is not None else tokenizer_texts(data_dir))
        ]
        text_file.write_text("\n".join(lines), encoding="utf8")
        create_tiny_checkpoint(path, [text_file], vocab_size=vocab_size, **spec)
    marker.write_text(json.dumps({"shape": shape, "tokenizer_text": text_name}))
    return path


def model_summary(config: Any) -> Dict[str, Any]:
    keys = [
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "local_attention",
        "global_attn_every_n_layers",
        "vocab_size",
    ]
    return {k: getattr(config, k) for k in keys}


_WS = re.compile(r"\s+")


def n_words(text: str) -> int:
    return len(_WS.split(text.strip())) if text.strip() else 0
