"""Create a tiny ModernBERT checkpoint offline: random weights + a byte-level BPE tokenizer.

Tests (fixture `tiny_checkpoint`), CI, the benchmarks and the offline default run
(`python -m spacy_modernbert init-model`) all create it here. It is not part of the encoder:
it is saved with `save_pretrained` and loaded back by path through the very same
`from_pretrained` code as a hub checkpoint.
"""

import json
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Union

SPECIAL_TOKENS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]

# The tiny checkpoint's shape, declared once: `create_tiny_checkpoint` and the
# `init-model` command's options both default to these.
DEFAULT_VOCAB_SIZE = 2048
DEFAULT_HIDDEN_SIZE = 64
DEFAULT_NUM_HIDDEN_LAYERS = 4
DEFAULT_NUM_ATTENTION_HEADS = 4
DEFAULT_INTERMEDIATE_SIZE = 96
DEFAULT_LOCAL_ATTENTION = 16
DEFAULT_GLOBAL_ATTN_EVERY_N_LAYERS = 3
DEFAULT_SEED = 0

# A little general English so the tokenizer has common merges even with no corpus given.
_BUILTIN_TEXT = """\
The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.
On Monday the operations team in London reviewed the quarterly report from New York.
Maria Lopez joined the platform group in 2021 and now leads the payments service.
At 03:12 UTC the api gateway returned errors for seven minutes; the deploy was rolled back.
European Union officials met in Brussels on Tuesday to discuss trade with Japan and Germany.
He said the results were better than expected, and the shares rose 3.5 percent.
Please call me back when you get this message, I will be home after six o'clock.
Congratulations! You have won a free ticket. Text WIN to 80086 to claim your prize now.
"""


def _read_texts(paths: Iterable[Union[str, Path]]) -> Iterator[str]:
    """Texts to train the tokenizer on: lines of text files, "text" of JSONL records, and
    the docs of spaCy `.spacy` corpora (DocBin)."""
    for path in paths:
        path = Path(path)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".spacy":
                from spacy.tokens import DocBin
                from spacy.vocab import Vocab

                yield from (
                    doc.text
                    for doc in DocBin().from_disk(file).get_docs(Vocab())
                    if doc.text.strip()
                )
                continue
            for line in file.read_text(encoding="utf8", errors="replace").splitlines():
                if file.suffix == ".jsonl" and line.strip():
                    yield str(json.loads(line).get("text", ""))
                elif line.strip():
                    yield line


def train_tokenizer(texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE):
    """Train a ModernBERT-style byte-level BPE tokenizer and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    # As ModernBERT: byte-level, no prefix space added by the tokenizer itself.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=8192,
    )


def create_tiny_checkpoint(
    output_dir: Union[str, Path],
    text_paths: Optional[List[Union[str, Path]]] = None,
    *,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    hidden_size: int = DEFAULT_HIDDEN_SIZE,
    num_hidden_layers: int = DEFAULT_NUM_HIDDEN_LAYERS,
    num_attention_heads: int = DEFAULT_NUM_ATTENTION_HEADS,
    intermediate_size: int = DEFAULT_INTERMEDIATE_SIZE,
    local_attention: int = DEFAULT_LOCAL_ATTENTION,
    global_attn_every_n_layers: int = DEFAULT_GLOBAL_ATTN_EVERY_N_LAYERS,
    seed: int = DEFAULT_SEED,
) -> Path:
    """Write a random-weight ModernBERT checkpoint and its tokenizer to `output_dir`.

    `local_attention` is small on purpose, so that sliding-window attention is exercised by
    short test documents exactly as ModernBERT-base's 128-token window is by long ones.
    """
    import torch
    from transformers import ModernBertConfig, ModernBertModel

    output_dir = Path(output_dir)
    texts = list(_read_texts(text_paths or [])) + _BUILTIN_TEXT.splitlines()
    tokenizer = train_tokenizer(texts, vocab_size=vocab_size)
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        max_position_embeddings=8192,
        local_attention=local_attention,
        global_attn_every_n_layers=global_attn_every_n_layers,
        pad_token_id=tokenizer.pad_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        reference_compile=False,
    )
    torch.manual_seed(seed)
    model = ModernBertModel(config)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(output_dir))
    return output_dir
