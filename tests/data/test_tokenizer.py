"""`spacy-modernbert.Tokenizer.v1`: spaCy's tokenizer, with words with an ASCII hyphen kept whole
(`split_hyphens = false`) as CoNLL-2003 tokenizes them (issue 33)."""

import configparser
from pathlib import Path

import spacy

from spacy_modernbert.tokenizer import TOKENIZER, create_tokenizer

ROOT = Path(__file__).resolve().parents[2]
TEXT = "EU rejects German-born call , 1996-08-30 : Ajax won 3-1 in Paris–Berlin , 2+2 , x:y ."


def _nlp(**settings):
    return spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER, **settings}}})


def test_hyphenated_words_stay_whole_and_everything_else_splits_as_spacy_splits():
    spacys = [t.text for t in spacy.blank("en")(TEXT)]
    kept = [t.text for t in _nlp(split_hyphens=False)(TEXT)]
    assert {"German-born", "1996-08-30", "3-1"} <= set(kept)
    assert "German" in spacys and "German-born" not in spacys
    # the same tokens once the hyphenated words are joined again: nothing else changed
    assert " ".join(kept) == " ".join(spacys).replace(" - ", "-")
    assert "–" in kept and "+" in kept and ":" in kept  # en dash, math and colon still split


def test_split_hyphens_true_is_spacys_tokenizer():
    assert [t.text for t in _nlp()(TEXT)] == [t.text for t in spacy.blank("en")(TEXT)]


def test_a_saved_pipeline_tokenizes_as_it_was_trained(tmp_path):
    _nlp(split_hyphens=False).to_disk(tmp_path / "p")
    assert "German-born" in [t.text for t in spacy.load(tmp_path / "p")(TEXT)]
    assert len(create_tokenizer(split_hyphens=False)(spacy.blank("en"))("3-1")) == 1


def test_the_tokenizer_is_an_entry_point_and_the_cpu_config_keeps_hyphens():
    from spacy.util import load_config

    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    tokenizers = setup["options.entry_points"]["spacy_tokenizers"]
    assert f"{TOKENIZER} = spacy_modernbert.tokenizer:create_tokenizer" in tokenizers
    tokenizer = load_config(ROOT / "configs" / "cpu_tiny.cfg")["nlp"]["tokenizer"]
    assert tokenizer == {"@tokenizers": TOKENIZER, "split_hyphens": False}
