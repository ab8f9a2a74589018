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

Multi-word terms (`max_words` > 1, "superwords" as in SuperBPE): a BPE merge never crosses a
pre-token boundary, and the space before a word is one, so " credit score" can only become
one token if the pre-tokenizer keeps it whole. The extended tokenizer's pre-tokenizer is then
`Split(terms | GPT-2 pattern)` + `ByteLevel(use_regex=False)`: the GPT-2 pattern is the one
ByteLevel(use_regex=True) applies, so text where no term fires is cut exactly as before, and a
term is matched only where the base pre-tokenizer would start a pre-token and only when no
letter or digit follows it ("what is" never fires in "what isn't", " pto balance" never in
" pto balances"). A term is letter words joined by single spaces, each word the base
pre-token it would be (" credit" then " score"); no base merge joins a letter to a following
"Ġ", so BPE on the whole pre-token first reaches the concatenation of the words' base pieces
and only the new merges, ranked after all others, join them. HF added tokens cannot do this:
matched in the raw text, a " credit score" added token either fires inside " credit scores"
or, with `single_word`, never after a word; without its leading space it breaks the
leading-space convention (a lone "Ġ" piece before it).
"""

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import VocabError

Pair = Tuple[str, str]

# The pattern ByteLevel(use_regex=True) splits text with (tokenizers' GPT-2 regex).
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"


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


def is_letter_word(text: str, leading_space: Optional[bool] = None) -> bool:
    """`text` is letters with at most one leading space (`leading_space`: it must / must not have one)."""
    word = text[1:] if text.startswith(" ") else text
    if leading_space is not None and text.startswith(" ") != leading_space:
        return False
    return bool(word) and word.isalpha()


def is_multi_word(token: str) -> bool:
    """Whether a byte-level token string spans several words ("ĠcreditĠscore"; a run of
    spaces "ĠĠ" is one pre-token of the base tokenizer)."""
    return re.search("[^Ġ]Ġ", token) is not None


def _trie_pattern(node: Dict[str, Any]) -> str:
    """A regex matching the strings of a character trie, longest first ("" marks an end)."""
    alts = [re.escape(ch) + _trie_pattern(child) for ch, child in sorted(node.items()) if ch]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if "" in node else body


def terms_pattern(terms: Sequence[str]) -> str:
    """The Split pattern that keeps each multi-word term one pre-token, else cuts as GPT-2 does."""
    if not terms:
        return GPT2_PATTERN
    trie: Dict[str, Any] = {}
    for term in terms:
        node = trie
        for ch in term:
            node = node.setdefault(ch, {})
        node[""] = {}
    return f"(?:{_trie_pattern(trie)})(?![\\p{{L}}\\p{{N}}])|{GPT2_PATTERN}"


def superword_pre_tokenizer(terms: Sequence[str]) -> Dict[str, Any]:
    """tokenizer.json's pre_tokenizer for byte-level BPE with multi-word `terms` (readable text)."""
    return {
        "type": "Sequence",
        "pretokenizers": [
            {
                "type": "Split",
                "pattern": {"Regex": terms_pattern(terms)},
                "behavior": "Isolated",
                "invert": False,
            },
            {
                "type": "ByteLevel",
                "add_prefix_space": False,
                "trim_offsets": True,
                "use_regex": False,
            },
        ],
    }


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
        self._new_by_token: Dict[str, NewToken] = {}
        ids = list(self.vocab.values()) + [t["id"] for t in self.data.get("added_tokens", [])]
        self.next_id = max(ids) + 1 if ids else 0
        self.base_size = self.next_id
        self.added_contents = [t["content"] for t in self.data.get("added_tokens", [])]
        self._bytes = byte_decoder()
        self.superwords: List[str] = []  # multi-word terms added (readable text)
        pre = self.data.get("pre_tokenizer") or {}
        # Multi-word terms rewrite the pre-tokenizer, which must be the one it reproduces.
        self.plain_pre_tokenizer = (
            pre.get("type") == "ByteLevel"
            and pre.get("use_regex", True)
            and not pre.get("add_prefix_space", False)
        )

    # --- the base tokenizer's view --------------------------------------------------------
    def pre_tokens(self, text: str) -> List[str]:
        """The byte-level pre-tokens of `text` (normalized first, as `encode` does)."""
        if self.backend.normalizer is not None:
            text = self.backend.normalizer.normalize_str(text)
        return [piece for piece, _ in self.backend.pre_tokenizer.pre_tokenize_str(text)]

    def base_pieces(self, token: str) -> List[Tuple[str, int]]:
        """(piece, id) of the base BPE on one pre-token (new merges play no part)."""
        return [(t.value, t.id) for t in self.backend.model.tokenize(token)]

    def count(self, texts: Iterable[str], max_words: int = 1) -> Counter:
        """How often each pre-token occurs in `texts`, and with `max_words` > 1 each run of up
        to `max_words` consecutive letter-word pre-tokens (" what", " is", " my" -> "ĠwhatĠisĠmy"),
        the later words each with exactly one space before it."""
        self.require_multi_word(max_words)
        counts: Counter = Counter()
        for text in texts:
            tokens = self.pre_tokens(text)
            counts.update(tokens)
            if max_words < 2:
                continue
            first = [is_letter_word(readable(t, self._bytes)) for t in tokens]
            later = [ok and t.startswith("Ġ") for ok, t in zip(first, tokens)]
            for i in range(len(tokens)):
                if not first[i]:
                    continue
                for j in range(i + 1, min(i + max_words, len(tokens))):
                    if not later[j]:
                        break
                    counts["".join(tokens[i : j + 1])] += 1
        return counts

    def require_multi_word(self, max_words: int) -> None:
        if max_words > 1 and not self.plain_pre_tokenizer:
            raise VocabError(
                "Multi-word terms (--max-words-per-term above 1) need the plain ByteLevel pre-tokenizer "
                f"(use_regex, no add_prefix_space) that ModernBERT has; this tokenizer's is {json.dumps(self.data.get('pre_tokenizer'))[:120]}. "
                "Extend the original checkpoint once, with all its terms, or use --max-words-per-term 1."
            )

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
        self._mark_term(token)
        for pair in merges:
            self.ranks[pair] = len(self.ranks)
            self.new_merges.append(pair)
        for string in new:
            self.vocab[string] = self.next_id
            pieces = [i for _, i in self.base_pieces(string)]
            self.new_tokens.append(NewToken(string, self.next_id, pieces, word=string == token))
            self._new_by_token[string] = self.new_tokens[-1]
            self.next_id += 1

    def _mark_term(self, token: str) -> None:
        """Record `token` as a term: a multi-word one joins the terms the pre-tokenizer keeps whole."""
        text = readable(token, self._bytes)
        if " " in text.strip() and text not in self.superwords:
            self.superwords.append(text)

    def promote(self, token: str) -> bool:
        """A term that an earlier term's intermediate merge already made one token ("what is"
        on the way to "what is my") becomes a term itself; False if it is no new token."""
        new = self._new_by_token.get(token)
        if new is None:
            return False
        new.word = True
        self._mark_term(token)
        return True

    def add_words(
        self,
        candidates: Iterable[str],
        max_new: int,
        progress: Optional[Callable[[int], None]] = None,
        multi_word_rows: Optional[int] = None,
    ) -> List[str]:
        """Add candidates in order while the new vocabulary entries fit in `max_new`; the words added.

        multi_word_rows: at most this many of the new entries go to multi-word terms (each such
        term's whole plan counts, intermediates included); None: no cap."""
        added: List[str] = []
        multi_used = 0
        for token in candidates:
            room = max_new - len(self.new_tokens)
            if room <= 0:
                break
            multi = is_multi_word(token)
            if multi and multi_word_rows is not None and multi_used >= multi_word_rows:
                continue
            merges, new = self.plan(token)
            if not merges and self.promote(token):
                added.append(token)
                continue
            if not merges or len(new) > room:
                continue  # already one token, or too dear for what is left
            if multi and multi_word_rows is not None:
                if multi_used + len(new) > multi_word_rows:
                    continue
                multi_used += len(new)
            self.add(token, merges, new)
            added.append(token)
            if progress is not None and len(added) % 500 == 0:
                progress(len(added))
        return added

    # --- user terms -----------------------------------------------------------------------
    def term_token(self, term: str, max_words: int = 1) -> str:
        """The pre-token that `term` is in running text (after a space), or a clear error.

        With `max_words` > 1 a term may be up to that many letter words joined by single spaces."""
        stripped = term.strip()
        if stripped and max_words > 1 and " " in stripped:
            return self._multi_word_token(stripped, max_words)
        if not stripped or any(ch.isspace() for ch in stripped):
            raise VocabError(
                f"Term {term!r} contains whitespace: a token spans words only with --max-words-per-term 2 or more. "
                "List each word as its own term, or raise --max-words-per-term."
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

    def _multi_word_token(self, term: str, max_words: int) -> str:
        self.require_multi_word(max_words)
        words = term.split(" ")
        parts = self.pre_tokens(" " + term)
        if (
            any(not w for w in words)
            or len(words) > max_words
            or len(parts) != len(words)
            or not all(is_letter_word(readable(p, self._bytes), True) for p in parts)
        ):
            shown = ", ".join(repr(readable(p, self._bytes)) for p in parts)
            raise VocabError(
                f"Term {term!r} cannot be one multi-word token: a term is at most {max_words} words "
                f"(--max-words-per-term) of letters only, joined by single spaces, and the pre-tokenizer cuts it into {shown}. "
                "List those parts as separate terms."
            )
        return "".join(parts)

    # --- output ---------------------------------------------------------------------------
    def to_json(self) -> str:
        """The tokenizer.json of the extended tokenizer."""
        data = json.loads(json.dumps(self.data))
        data["model"]["vocab"] = self.vocab
        extra = [f"{a} {b}" if self._merges_as_strings else [a, b] for a, b in self.new_merges]
        data["model"]["merges"] = list(data["model"].get("merges") or []) + extra
        if self.superwords:
            data["pre_tokenizer"] = superword_pre_tokenizer(self.superwords)
        return json.dumps(data, ensure_ascii=False)

    def check(self, backend: Any) -> None:
        """Every added word must encode to its one new token with the rebuilt tokenizer (a
        multi-word term must also stay one pre-token)."""
        for new in self.new_tokens:
            got = [t.id for t in backend.model.tokenize(new.token)] if new.word else [new.id]
            text = readable(new.token, self._bytes)
            if new.word and " " in text.strip():
                got = backend.encode(text, add_special_tokens=False).ids
            if got != [new.id]:
                raise VocabError(
                    f"Internal error: the new token {readable(new.token, self._bytes)!r} encodes to {got}, not [{new.id}]; please report it."
                )


def pieces_per_word(tokenizer: Any, texts: Sequence[str]) -> Tuple[int, int]:
    """(pieces, whitespace-separated words) of `texts` under `tokenizer` (no special tokens)."""
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    return sum(len(x) for x in ids), sum(len(t.split()) for t in texts)
