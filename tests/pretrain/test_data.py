"""Reading pretraining text: formats, directories, windows, and refusals of bad input."""

import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from spacy_modernbert.pretrain.data import (
    BatchPlan,
    PretrainDataError,
    make_windows,
    read_texts,
    split_held_out,
)


def test_formats_and_directories(tmp_path):
    (tmp_path / "a.txt").write_text("first doc\n\nsecond doc\n", encoding="utf8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "third doc"}) + "\n\n", encoding="utf8")
    docbin = DocBin()
    docbin.add(Doc(Vocab(), words=["fourth", "doc"], spaces=[True, False]))
    docbin.to_disk(tmp_path / "c.spacy")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    assert read_texts([tmp_path]) == ["first doc", "second doc", "third doc", "fourth doc"]


def test_empty_file_is_skipped_but_no_text_at_all_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf8")
    (tmp_path / "full.txt").write_text("some text\n", encoding="utf8")
    assert read_texts([tmp_path / "empty.txt", tmp_path / "full.txt"]) == ["some text"]
    with pytest.raises(PretrainDataError, match="No text found"):
        read_texts([tmp_path / "empty.txt"])


def test_binary_and_non_utf8_files_are_refused_with_file_and_line(tmp_path):
    binary = tmp_path / "model.txt"
    binary.write_bytes(b"fine line\n\x00\x01\x02garbage\n")
    with pytest.raises(PretrainDataError, match=r"model\.txt' line 2 .*binary"):
        read_texts([binary])
    latin = tmp_path / "latin.txt"
    latin.write_bytes("ok\nok\ncaf\u00e9\n".encode("latin-1"))
    with pytest.raises(PretrainDataError, match=r"latin\.txt' line 3 is not valid UTF-8"):
        read_texts([latin])


def test_bad_jsonl_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "no"}\n', encoding="utf8")
    with pytest.raises(PretrainDataError, match=r"line 2 has no string \"text\""):
        read_texts([bad])
    with pytest.raises(PretrainDataError, match="does not exist"):
        read_texts([tmp_path / "missing.txt"])


def test_long_documents_are_split_not_dropped():
    ids = list(range(100, 125))
    windows = make_windows([ids, [7]], window=10, cls_id=1, sep_id=2)
    assert all(len(w) <= 10 and w[0] == 1 and w[-1] == 2 for w in windows)
    assert [t for w in windows[:-1] for t in w[1:-1]] == ids
    assert windows[-1] == [1, 7, 2]


def test_held_out_split_and_batch_plan_are_deterministic():
    windows = [[1, i, 2] for i in range(50)]
    train, held = split_held_out(windows, 0.1, seed=3)
    assert (
        len(held) == 5 and len(train) == 45 and not set(map(tuple, held)) & set(map(tuple, train))
    )
    plan = BatchPlan([len(w) for w in train], batch_tokens=30, seed=0)
    first_epoch = [i for step in range(5) for i in plan.batch(step)]
    assert sorted(first_epoch) == list(range(45))
    assert all(sum(3 for _ in plan.batch(s)) <= 30 for s in range(12))
    assert BatchPlan([3] * 45, 30, 0).batch(7) == plan.batch(7)


def test_windows_read_each_document_as_the_pipeline_does(tiny_checkpoint):
    """The first word of a document is pretrained as the "Ġword" the transformer component
    encodes (add_prefix_space), not as a bare "word" the pipeline never produces."""
    from transformers import AutoTokenizer

    from spacy_modernbert.encoder.alignment import tokenize_docs
    from spacy_modernbert.pretrain.data import tokenize_windows

    tok = AutoTokenizer.from_pretrained(str(tiny_checkpoint))
    texts = ["Monitoring alerts fired.", "  already spaced", "\nafter a break"]
    # the end too: a final space after a word is the last token's whitespace, which the
    # transformer drops; further whitespace is a token of its own and is kept
    texts += ["ends with a space ", "two spaces  ", "a line \n", "x. "]
    windows = tokenize_windows(texts, tok, 64)
    nlp = spacy.blank("en")
    for text, window in zip(texts, windows):
        pieces = tokenize_docs(tok, [nlp.make_doc(text)])[0]
        assert window[1:-1] == list(pieces.ids)
    first = tok.convert_ids_to_tokens(windows[0][1:2])[0]
    assert first.startswith("Ġ")
    assert windows[1][1:-1] == tok("  already spaced", add_special_tokens=False)["input_ids"]
