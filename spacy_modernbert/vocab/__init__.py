"""Domain vocabulary: grow a checkpoint's byte-level BPE tokenizer and its embeddings.

bpe.py mines the words of a corpus that the tokenizer splits into many pieces and adds
them as new BPE merges (never as "added tokens"), so the tokenizer stays one consistent
byte-level BPE: every text still encodes to the same bytes and decodes back exactly, the
special tokens keep their ids, and text no new merge touches is tokenized as before.
extend.py grows the embedding matrix and the MLM decoder and writes a Hugging Face
checkpoint. The command is `spacy_modernbert/cli/extend_vocab.py`.
"""


class VocabError(ValueError):
    """The vocabulary cannot be extended as asked; the message names the input and the fix."""
