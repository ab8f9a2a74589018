"""New tokens for a byte-level BPE tokenizer, added as merges so the tokenizer stays consistent.

Why merges, not `tokenizer.add_tokens`: an added token is matched in the raw text before
the pre-tokenizer runs, so it would also fire inside longer words, it never carries the
leading space that running text has (" payments" is the pre-token "Ġpayments"), and it is
decoded outside the byte-level decoder. Instead each new token is the byte-level string of
a pre-token exactly as the tokenizer's own pre-tokenizer produces it, reached by a chain of
new merges ranked after all existing ones.

Invariants (checked by tests/vocab):
* Existing merges keep their ranks, so BPE on any pre-token first reaches the base
  tokenization and only then applies new merges: text no new merge touches is tokenized
  exactly as before, and every new token stands for the same bytes its pieces did (the
  text round-trips through decode unchanged). Special and added tokens keep their ids.
* Each word is planned against all merges added before it, so its own merges can never be
  pre-empted by a later word's: every added word encodes to exactly one token.
"""

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import VocabError

Pair = Tuple[str, str]


@dataclass
class NewToken:
    """A token added to the vocabulary: its byte-level string, id, and the base pieces it replaces."""

    token: str
    id: int
    pieces: List[int]  # the base tokenizer's ids for the same bytes (for mean initialisation)
    word: bool  # a mined word or a user term (False: an intermediate merge on the way to one)


def _has_byte_level(component: Any) -> bool:
    if not isinstance(component, dict):
        return False
    if component.get("type") == "ByteLevel":
        return True
    return any(_has_byte_level(c) for c in component.get("pretokenizers", []) or [])


def byte_decoder() -> Dict[str, int]:
    """Byte-level alphabet character -> byte (GPT-2's table, as the ByteLevel pre-tokenizer uses)."""
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def readable(token: str, table: Optional[Dict[str, int]] = None) -> str:
    """The text a byte-level token stands for (" payments" for "Ġpayments")."""
    table = table or byte_decoder()
    return bytes(table[c] for c in token if c in table).decode("utf8", errors="replace")


class BpeExtension:
    """A byte-level BPE tokenizer's vocabulary and merges, with new words added as merge chains."""

    def __init__(self, tokenizer: Any, name: str = "BASE"):
        self.tokenizer = tokenizer
        self.backend = tokenizer.backend_tokenizer
        self.data = json.loads(self.backend.to_str())
        model = self.data.get("model") or {}
        if model.get("type") != "BPE":
            raise VocabError(
                f"The tokenizer of '{name}' is a {model.get('type')} model; extend-vocab grows byte-level BPE tokenizers (ModernBERT's)."
            )
        if (
            model.get("continuing_subword_prefix")
            or model.get("end_of_word_suffix")
            or not _has_byte_level(self.data.get("pre_tokenizer"))
        ):
            raise VocabError(
                f"The tokenizer of '{name}' is not a byte-level BPE (ByteLevel pre-tokenizer, no subword prefix or suffix); extend-vocab supports ModernBERT-style tokenizers only."
            )
        self.vocab: Dict[str, int] = dict(model["vocab"])
        merges = model.get("merges") or []
        self._merges_as_strings = bool(merges) and isinstance(merges[0], str)
        pairs = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in merges]
        self.ranks: Dict[Pair, int] = {pair: rank for rank, pair in enumerate(pairs)}
        self.n_base_merges = len(self.ranks)
        self.new_merges: List[Pair] = []
        self.new_tokens: List[NewToken] = []
        ids = list(self.vocab.values()) + [t["id"] for t in self.data.get("added_tokens", [])]
        self.next_id = max(ids) + 1 if ids else 0
        self.base_size = self.next_id
        self.added_contents = [t["content"] for t in self.data.get("added_tokens", [])]
        self._bytes = byte_decoder()

    # --- the base tokenizer's view --------------------------------------------------------
    def pre_tokens(self, text: str) -> List[str]:
        """The byte-level pre-tokens of `text` (normalized first, as `encode` does)."""
        if self.backend.normalizer is not None:
            text = self.backend.normalizer.normalize_str(text)
        return [piece for piece, _ in self.backend.pre_tokenizer.pre_tokenize_str(text)]

    def base_pieces(self, token: str) -> List[Tuple[str, int]]:
        """(piece, id) of the base BPE on one pre-token (new merges play no part)."""
        return [(t.value, t.id) for t in self.backend.model.tokenize(token)]

    def count(self, texts: Iterable[str]) -> Counter:
        """How often each pre-token occurs in `texts`."""
        counts: Counter = Counter()
        for text in texts:
            counts.update(self.pre_tokens(text))
        return counts

    def mine(self, counts: Counter, min_freq: int) -> List[Tuple[str, int, int]]:
        """(pre-token, frequency, base pieces) of the words worth a token, best first: the pieces
        a single token would save over the corpus, frequency x (pieces - 1)."""
        found = []
        for token, freq in counts.items():
            if freq < min_freq or len(token) < 2 or self._touches_added(token):
                continue
            n = len(self.backend.model.tokenize(token))
            if n > 1:
                found.append((token, freq, n))
        found.sort(key=lambda row: (-row[1] * (row[2] - 1), -row[1], row[0]))
        return found

    def _touches_added(self, token: str) -> bool:
        text = readable(token, self._bytes)
        return any(content and content in text for content in self.added_contents)

    # --- planning and adding merges -------------------------------------------------------
    def _merge(self, pieces: List[str], rank: Callable[[Pair], Optional[int]]) -> List[str]:
        """BPE as the `tokenizers` library runs it: the lowest-ranked adjacent pair first, leftmost on ties."""
        pieces = list(pieces)
        while len(pieces) > 1:
            best: Optional[Tuple[int, int]] = None
            for i in range(len(pieces) - 1):
                r = rank((pieces[i], pieces[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
        return pieces

    def current_pieces(self, token: str) -> List[str]:
        """The pieces of `token` under the base merges plus the merges added so far."""
        return self._merge([p for p, _ in self.base_pieces(token)], self.ranks.get)

    def plan(self, token: str) -> Tuple[List[Pair], List[str]]:
        """(merges to add, new vocabulary strings) that make `token` one token.

        Left to right, reusing strings already in the vocabulary, so words sharing a prefix
        share intermediates. Each merge ranks after every earlier one (see the module docstring).
        """
        local: Dict[Pair, int] = {}
        rank = lambda pair: self.ranks.get(pair, local.get(pair))  # noqa: E731
        pieces = self.current_pieces(token)
        merges: List[Pair] = []
        new: List[str] = []
        while len(pieces) > 1:
            joined = [pieces[i] + pieces[i + 1] for i in range(len(pieces) - 1)]
            known = [i for i, s in enumerate(joined) if s in self.vocab or s in new]
            i = known[0] if known else 0
            pair = (pieces[i], pieces[i + 1])
            local[pair] = len(self.ranks) + len(local)
            merges.append(pair)
            if joined[i] not in self.vocab and joined[i] not in new:
                new.append(joined[i])
            pieces = self._merge(pieces, rank)
        return merges, new

    def add(self, token: str, merges: Sequence[Pair], new: Sequence[str]) -> None:
        """Commit a plan from `plan(token)`."""
        for pair in merges:
            self.ranks[pair] = len(self.ranks)
            self.new_merges.append(pair)
        for string in new:
            self.vocab[string] = self.next_id
            pieces = [i for _, i in self.base_pieces(string)]
            self.new_tokens.append(NewToken(string, self.next_id, pieces, word=string == token))
            self.next_id += 1

    def add_words(
        self,
        candidates: Iterable[str],
        max_new: int,
        progress: Optional[Callable[[int], None]] = None,
    ) -> List[str]:
        """Add candidates in order while the new vocabulary entries fit in `max_new`; the words added."""
        added: List[str] = []
        for token in candidates:
            room = max_new - len(self.new_tokens)
            if room <= 0:
                break
            merges, new = self.plan(token)
            if not merges or len(new) > room:
                continue  # already one token, or too dear for what is left
            self.add(token, merges, new)
            added.append(token)
            if progress is not None and len(added) % 500 == 0:
                progress(len(added))
        return added

    # --- user terms -----------------------------------------------------------------------
    def term_token(self, term: str) -> str:
        """The pre-token that `term` is in running text (after a space), or a clear error."""
        stripped = term.strip()
        if not stripped or any(ch.isspace() for ch in stripped):
            raise VocabError(
                f"Term {term!r} contains whitespace: a token cannot span words. List each word as its own term."
            )
        if (
            self.backend.normalizer is not None
            and self.backend.normalizer.normalize_str(stripped) != stripped
        ):
            raise VocabError(
                f"Term {stripped!r} is changed by the tokenizer's normalizer and can never appear as written: list it as {self.backend.normalizer.normalize_str(stripped)!r}."
            )
        if any(content and content in stripped for content in self.added_contents):
            raise VocabError(
                f"Term {stripped!r} contains a special or added token of the tokenizer; remove it from the terms."
            )
        parts = self.pre_tokens(" " + stripped)
        if len(parts) != 1:
            shown = ", ".join(repr(readable(p, self._bytes)) for p in parts)
            raise VocabError(
                f"Term {stripped!r} cannot be one token: the tokenizer's pre-tokenizer splits it into {shown}. List those parts as separate terms."
            )
        if any(
            t.id is None or t.value == self.data["model"].get("unk_token")
            for t in self.backend.model.tokenize(parts[0])
        ):
            raise VocabError(
                f"Term {stripped!r} has characters the tokenizer cannot represent (they become the unknown token)."
            )
        return parts[0]

    # --- output ---------------------------------------------------------------------------
    def to_json(self) -> str:
        """The tokenizer.json of the extended tokenizer."""
        data = json.loads(json.dumps(self.data))
        data["model"]["vocab"] = self.vocab
        extra = [f"{a} {b}" if self._merges_as_strings else [a, b] for a, b in self.new_merges]
        data["model"]["merges"] = list(data["model"].get("merges") or []) + extra
        return json.dumps(data, ensure_ascii=False)

    def check(self, backend: Any) -> None:
        """Every added word must encode to its one new token with the rebuilt tokenizer."""
        for new in self.new_tokens:
            got = [t.id for t in backend.model.tokenize(new.token)] if new.word else [new.id]
            if got != [new.id]:
                raise VocabError(
                    f"Internal error: the new token {readable(new.token, self._bytes)!r} encodes to {got}, not [{new.id}]; please report it."
                )


def pieces_per_word(tokenizer: Any, texts: Sequence[str]) -> Tuple[int, int]:
    """(pieces, whitespace-separated words) of `texts` under `tokenizer` (no special tokens)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    return sum(len(x) for x in ids), sum(len(t.split()) for t in texts)
