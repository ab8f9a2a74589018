"""`spacy-modernbert.Tokenizer.v1`: spaCy's tokenizer, optionally keeping hyphenated words whole.

spaCy's rule-based tokenizer splits an ASCII hyphen inside a word ("German-born" -> "German", "-",
"born"; "1996-08-30" -> 5 tokens; a score "3-1" -> 3). CoNLL-2003 and other newswire NER corpora
keep such words whole, and so do their entity spans ("German-born" is one MISC token). `spacy
train` tokenizes each training doc's text anew, so with spaCy's rules a model trained on CoNLL
learns from tokens its annotators never saw: 3,720 of CoNLL-2003's 12,637 training sentences
tokenize differently, 4,118 gold tokens are cut at a hyphen, and training on spaCy's tokens cost the
benchmark 1.27 dev F1 against CoNLL's own tokens, 3 of 3 seeds (benchmarks/ner_readme_path_dev.py).

`split_hyphens = false` keeps an ASCII hyphen (and a double one) inside a word: every infix rule of
the language is kept but may no longer match at a "-". En and em dashes, "~", and every other
infix, prefix, suffix and exception still split as spaCy splits them. The tokenizer saves its rules
with the pipeline, so a trained pipeline tokenizes as it was trained.
"""

from typing import Any, Callable

from spacy.util import registry

TOKENIZER = "spacy-modernbert.Tokenizer.v1"
NO_HYPHEN = "(?!-)"


def keep_hyphens(infixes) -> list:
    """The infix patterns, each unable to match at an ASCII hyphen."""
    return [NO_HYPHEN + f"(?:{pattern})" for pattern in infixes]


@registry.tokenizers(TOKENIZER)
def create_tokenizer(split_hyphens: bool = True) -> Callable[[Any], Any]:
    """spaCy's tokenizer (`spacy.Tokenizer.v1`) for the pipeline's language.

    split_hyphens (bool): False keeps words with an ASCII hyphen whole ("German-born",
        "1996-08-30", "3-1"), as CoNLL-2003 tokenizes them (module docstring).
    """
    from spacy.util import compile_infix_regex

    make_spacy_tokenizer = registry.tokenizers.get("spacy.Tokenizer.v1")()

    def make(nlp: Any) -> Any:
        tokenizer = make_spacy_tokenizer(nlp)
        infixes = nlp.Defaults.infixes
        if not split_hyphens and infixes:
            tokenizer.infix_finditer = compile_infix_regex(keep_hyphens(infixes)).finditer
        return tokenizer

    return make
