"""Converters: JSONL / CoNLL / SMS -> Docs -> DocBin, merging, and the CLI wrappers."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from spacy_modernbert.cli.convert import convert_jsonl, merge_corpora
from spacy_modernbert.data.converters import (
    conll_to_docs,
    corpus_summary,
    iob1_to_iob2,
    jsonl_to_docs,
    merge_docbins,
    read_docbin,
    record_to_doc,
    sms_to_docs,
    write_docbin,
)
from spacy_modernbert.data.splits import stratified_split

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def write_lines(path: Path, lines) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf8")
    return path


def jsonl(path: Path, records) -> Path:
    return write_lines(path, [json.dumps(r, ensure_ascii=False) for r in records])


# --- JSONL --------------------------------------------------------------------------------

RECORDS = [
    {
        "text": "nginx on web-03.prod.acme.net returned HTTP 503 at 03:12 UTC.",
        "entities": [[0, 5, "SERVICE"], [9, 29, "HOST"], [39, 47, "ERROR"], [51, 60, "TIME"]],
        "anomaly": 0,
    },
    {
        "text": "Root logged in from 185.220.101.4 and disabled audit logging.",
        "entities": [[20, 33, "IP"]],
        "anomaly": 1,
    },
    {"text": "No entities in this one.", "entities": [], "anomaly": 0.0},
    {"text": "Entities unknown here; anomaly known.", "anomaly": True},
    {"text": "Priya Nair restarted kafka.", "entities": [[0, 10, "PERSON"], [21, 26, "SERVICE"]]},
]


def test_jsonl_round_trip(tmp_path):
    src = jsonl(tmp_path / "in.jsonl", RECORDS)
    docs = jsonl_to_docs(src, label="ANOMALY")
    write_docbin(docs, tmp_path / "out.spacy")
    back = read_docbin(tmp_path / "out.spacy")
    assert len(back) == len(RECORDS)
    for record, doc in zip(RECORDS, back):
        assert doc.text == record["text"]
        expected = [(s, e, label) for s, e, label in record.get("entities") or []]
        assert [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents] == expected
        for (s, e, _), ent in zip(expected, doc.ents):
            assert ent.text == record["text"][s:e]
        if "anomaly" in record:
            assert doc.cats == {"ANOMALY": float(record["anomaly"])}
        else:
            assert doc.cats == {}
    # absent `entities`: NER unannotated (missing), not "no entities"
    assert all(token.ent_iob_ == "" for token in back[3])
    # `[]`: annotated, every token outside
    assert all(token.ent_iob_ == "O" for token in back[2])
    # partial entity lists: the rest is explicitly O
    assert [t.ent_iob_ for t in back[4]] == ["B", "I", "O", "B", "O"]
    summary = corpus_summary(back, "ANOMALY")
    assert summary["n_docs"] == 5 and summary["n_ner_annotated"] == 4
    assert summary["n_anomaly_annotated"] == 4 and summary["n_anomalies"] == 2
    assert summary["entity_labels"] == {
        "ERROR": 1,
        "HOST": 1,
        "IP": 1,
        "PERSON": 1,
        "SERVICE": 2,
        "TIME": 1,
    }


def test_jsonl_custom_label_and_blank_lines(tmp_path):
    src = write_lines(tmp_path / "in.jsonl", ["", json.dumps({"text": "a b", "anomaly": 1}), "   "])
    docs = jsonl_to_docs(src, label="SPAMMY")
    assert len(docs) == 1 and docs[0].cats == {"SPAMMY": 1.0}


def test_offsets_with_whitespace_are_trimmed(nlp):
    doc = record_to_doc(nlp, {"text": "on  web-03 now", "entities": [[3, 11, "HOST"]]})
    assert [(e.text, e.label_) for e in doc.ents] == [("web-03", "HOST")]


@pytest.mark.parametrize(
    "record,expected",
    [
        (
            {"text": "restart web-03 now", "entities": [[8, 11, "HOST"]]},
            ["line 7", "[8, 11, 'HOST']", "'web'", "web-03"],
        ),
        (
            {"text": "nginx on web-03", "entities": [[0, 5, "SERVICE"], [3, 15, "HOST"]]},
            ["line 7", "overlapping", "'nginx'", "'nx on web-03'"],
        ),
        ({"text": "abc", "entities": [[0, 9, "X"]]}, ["line 7", "out of bounds"]),
        ({"text": "abc", "entities": [[0, 1]]}, ["line 7", "[start, end, label]"]),
        ({"text": "abc", "anomaly": 2}, ["line 7", "anomaly", "2"]),
        ({"text": "abc", "anomaly": "yes"}, ["line 7", "anomaly", "'yes'"]),
        ({"entities": []}, ["line 7", "'text'"]),
    ],
)
def test_jsonl_errors_name_the_line_and_problem(tmp_path, record, expected):
    lines = [json.dumps({"text": f"fine {i}", "anomaly": 0}) for i in range(6)] + [
        json.dumps(record)
    ]
    src = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(ValueError) as excinfo:
        jsonl_to_docs(src)
    for part in expected:
        assert part in str(excinfo.value)


def test_bad_json_and_empty_file(tmp_path):
    src = write_lines(tmp_path / "bad.jsonl", [json.dumps({"text": "ok"}), '{"text": "oops",'])
    with pytest.raises(ValueError, match="line 2: invalid JSON"):
        jsonl_to_docs(src)
    src = write_lines(tmp_path / "list.jsonl", ["[1, 2]"])
    with pytest.raises(ValueError, match="line 1: expected a JSON object"):
        jsonl_to_docs(src)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf8")
    with pytest.raises(ValueError, match="no documents"):
        jsonl_to_docs(empty)


def test_cli_errors_exit_with_message(tmp_path, capsys):
    src = write_lines(tmp_path / "bad.jsonl", [json.dumps({"text": "ok"}), "not json"])
    with pytest.raises(SystemExit) as excinfo:
        convert_jsonl(src, tmp_path / "out.spacy")
    assert excinfo.value.code == 1
    out = " ".join(
        capsys.readouterr().out.split()
    )  # wasabi wraps long messages at the terminal width
    assert "line 2" in out and "invalid JSON" in out
    assert not (tmp_path / "out.spacy").exists()
    with pytest.raises(SystemExit):
        merge_corpora(tmp_path / "m.spacy", [src])  # not a DocBin
    assert "could not read" in capsys.readouterr().out


def test_cli_subprocess_missing_file(tmp_path):
    """The real command line fails fast and clearly on a missing input (no spaCy import needed)."""
    for command in (["convert-jsonl"], ["convert-conll"], ["convert-sms"]):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "spacy_modernbert",
                *command,
                str(tmp_path / "nope.txt"),
                str(tmp_path / "x.spacy"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        output = result.stdout + result.stderr
        assert result.returncode != 0
        assert "not found" in output and "nope.txt" in output
        assert "Traceback" not in output


def test_cli_convert_jsonl(tmp_path, capsys):
    src = jsonl(tmp_path / "in.jsonl", RECORDS)
    summary = convert_jsonl(src, tmp_path / "sub" / "x.spacy", label="ODD")
    assert summary["n_docs"] == 5 and summary["n_anomalies"] == 2
    assert "Wrote 5 docs" in capsys.readouterr().out
    docs = read_docbin(tmp_path / "sub" / "x.spacy")
    assert len(docs) == 5 and docs[1].cats == {"ODD": 1.0}


# --- CoNLL --------------------------------------------------------------------------------

CONLL = """-DOCSTART- -X- O O

EU B-ORG 0
rejects O 0
German B-MISC 0
call O 0
. O 0

Peter B-PER 0
Blackburn I-PER 0

BRUSSELS B-LOC 0
1996-08-22 O 0

The O 0
European B-ORG 0
Commission I-ORG 0
said O 0

-DOCSTART- -X- O O

Japan I-LOC 0
beat O 0
Syria I-LOC 0
"""


def test_conll_grouping_and_entities(tmp_path):
    path = tmp_path / "x.iob"
    path.write_text(CONLL, encoding="utf8")
    docs = conll_to_docs(path, n_sents=2)
    # doc 1: sentences 1-2, doc 2: sentences 3-4, -DOCSTART- ends a doc, doc 3: sentence 5
    assert [len(list(doc.sents)) for doc in docs] == [2, 2, 1]
    assert docs[0].text == "EU rejects German call . Peter Blackburn"
    assert [(e.text, e.label_) for e in docs[0].ents] == [
        ("EU", "ORG"),
        ("German", "MISC"),
        ("Peter Blackburn", "PER"),
    ]
    assert [(e.text, e.label_) for e in docs[1].ents] == [
        ("BRUSSELS", "LOC"),
        ("European Commission", "ORG"),
    ]
    # IOB1 I- at the start of an entity becomes B-
    assert [(e.text, e.label_) for e in docs[2].ents] == [("Japan", "LOC"), ("Syria", "LOC")]
    assert all(doc.cats == {} for doc in docs)
    assert all(t.ent_iob_ in ("B", "I", "O") for doc in docs for t in doc)
    assert [s.text for s in docs[1].sents] == [
        "BRUSSELS 1996-08-22",
        "The European Commission said",
    ]
    # round trip keeps sentence starts and entities
    write_docbin(docs, tmp_path / "c.spacy")
    back = read_docbin(tmp_path / "c.spacy")
    assert [[s.text for s in d.sents] for d in back] == [[s.text for s in d.sents] for d in docs]
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in back] == [
        [(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs
    ]


def test_conll_limit_and_n_sents(tmp_path):
    path = tmp_path / "x.iob"
    path.write_text(CONLL, encoding="utf8")
    docs = conll_to_docs(path, n_sents=10, limit=3)
    assert len(docs) == 1 and len(list(docs[0].sents)) == 3
    assert len(conll_to_docs(path, n_sents=1)) == 5
    with pytest.raises(ValueError, match="n_sents"):
        conll_to_docs(path, n_sents=0)


def test_conll_errors(tmp_path):
    bad = tmp_path / "bad.iob"
    bad.write_text("EU B-ORG 0\nrejects X-TAG 0\n", encoding="utf8")
    with pytest.raises(ValueError, match="line 2"):
        conll_to_docs(bad)
    empty = tmp_path / "empty.iob"
    empty.write_text("\n", encoding="utf8")
    with pytest.raises(ValueError, match="no documents"):
        conll_to_docs(empty)


def test_iob1_to_iob2():
    assert iob1_to_iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-ORG",
        "B-ORG",
        "I-ORG",
    ]


# --- SMS ----------------------------------------------------------------------------------


def sms_file(tmp_path, n_ham=80, n_spam=20):
    lines = [f"ham\tHey, see you at {i} ok" for i in range(n_ham)] + [
        f"spam\tWIN a prize now, call {i}" for i in range(n_spam)
    ]
    lines = [
        lines[(i * 37) % len(lines)] for i in range(len(lines))
    ]  # interleave deterministically
    return write_lines(tmp_path / "sms.tsv", lines)


def test_sms_labels_and_stratified_split(tmp_path):
    splits = sms_to_docs(sms_file(tmp_path), dev_frac=0.15, test_frac=0.15, seed=0)
    sizes = {name: len(docs) for name, docs in splits.items()}
    assert sizes == {"train": 70, "dev": 15, "test": 15}
    for name, n_spam in (("train", 14), ("dev", 3), ("test", 3)):
        docs = splits[name]
        assert sum(d.cats["ANOMALY"] for d in docs) == n_spam
        for doc in docs:
            assert doc.cats["ANOMALY"] == (1.0 if doc.text.startswith("WIN") else 0.0)
            assert not doc.ents and all(t.ent_iob_ == "" for t in doc)  # NER unannotated
    texts = {name: [d.text for d in docs] for name, docs in splits.items()}
    assert not set(texts["train"]) & set(texts["dev"]) and not set(texts["dev"]) & set(
        texts["test"]
    )
    again = sms_to_docs(sms_file(tmp_path), seed=0)
    assert {k: [d.text for d in v] for k, v in again.items()} == texts
    other = sms_to_docs(sms_file(tmp_path), seed=1)
    assert [d.text for d in other["test"]] != texts["test"]
    assert sum(len(v) for v in sms_to_docs(sms_file(tmp_path), limit=10).values()) == 10


def test_sms_malformed(tmp_path):
    bad = write_lines(tmp_path / "bad.tsv", ["ham\tfine", "spam no tab here"])
    with pytest.raises(ValueError, match="line 2"):
        sms_to_docs(bad)
    bad = write_lines(tmp_path / "bad2.tsv", ["ham\tfine", "", "eggs\ttext"])
    with pytest.raises(ValueError, match="line 3: label must be 'ham' or 'spam'"):
        sms_to_docs(bad)


def test_stratified_split_proportions():
    labels = [1] * 60 + [0] * 540
    train, dev, test = stratified_split(labels, 0.15, 0.15, seed=3)
    assert (len(train), len(dev), len(test)) == (420, 90, 90)
    assert [sum(labels[i] for i in idx) for idx in (train, dev, test)] == [42, 9, 9]
    assert sorted(train + dev + test) == list(range(600))
    with pytest.raises(ValueError):
        stratified_split(labels, 0.6, 0.5)


# --- merge --------------------------------------------------------------------------------


def test_merge_keeps_counts_and_annotations(tmp_path):
    conll = tmp_path / "x.iob"
    conll.write_text(CONLL, encoding="utf8")
    write_docbin(conll_to_docs(conll, n_sents=2), tmp_path / "ner.spacy")
    splits = sms_to_docs(sms_file(tmp_path))
    write_docbin(splits["dev"], tmp_path / "anom.spacy")
    write_docbin(jsonl_to_docs(jsonl(tmp_path / "in.jsonl", RECORDS)), tmp_path / "both.spacy")
    merged = merge_docbins(
        [tmp_path / "ner.spacy", tmp_path / "anom.spacy", tmp_path / "both.spacy"]
    )
    assert len(merged) == 3 + 15 + 5
    summary = merge_corpora(
        tmp_path / "merged.spacy",
        [tmp_path / "ner.spacy", tmp_path / "anom.spacy", tmp_path / "both.spacy"],
    )
    assert summary["n_docs"] == 23
    back = read_docbin(tmp_path / "merged.spacy")
    ner, anom, both = back[:3], back[3:18], back[18:]
    assert [len(d.ents) for d in ner] == [3, 2, 2] and all(d.cats == {} for d in ner)
    assert all(all(t.ent_iob_ != "" for t in d) for d in ner)
    assert all(all(t.ent_iob_ == "" for t in d) for d in anom)
    assert sum(d.cats["ANOMALY"] for d in anom) == 3
    assert [d.cats for d in both] == [
        {"ANOMALY": 0.0},
        {"ANOMALY": 1.0},
        {"ANOMALY": 0.0},
        {"ANOMALY": 1.0},
        {},
    ]
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in both] == [
        [tuple(e) for e in r.get("entities") or []] for r in RECORDS
    ]
    assert all(t.ent_iob_ == "" for t in both[3])


def test_convert_conll_carves_the_last_docs_as_dev(tmp_path):
    """`--dev-output`: the last `--dev-frac` of the docs (file order) leave the training file."""
    from spacy_modernbert.cli.convert import DEFAULT_N_SENTS, convert_conll

    path = tmp_path / "x.iob"
    path.write_text(CONLL, encoding="utf8")
    assert DEFAULT_N_SENTS == 1
    summary = convert_conll(
        path, tmp_path / "train.spacy", dev_output=tmp_path / "dev.spacy", dev_frac=0.4
    )
    train, dev = read_docbin(tmp_path / "train.spacy"), read_docbin(tmp_path / "dev.spacy")
    everything = conll_to_docs(path)  # one sentence per doc by default
    assert [d.text for d in train] + [d.text for d in dev] == [d.text for d in everything]
    assert len(dev) == 2 and summary["n_docs"] == 3 and summary["dev"]["n_docs"] == 2
    for frac in (0.0, 1.0, 0.01):
        with pytest.raises(SystemExit):
            convert_conll(
                path, tmp_path / "t.spacy", dev_output=tmp_path / "d.spacy", dev_frac=frac
            )
