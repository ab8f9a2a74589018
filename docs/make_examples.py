"""Write docs/examples.md from a run of the demo pipeline, so the documented examples cannot drift.

    python docs/make_examples.py training/model-calibrated --data assets/demo/test.jsonl --output docs/examples.md

Every figure on the page (entities, scores, the threshold, the `serve` answer, the `annotate`
row) is what the given pipeline returns when the script runs; nothing is typed by hand. The
headline example is a document of `--data` the pipeline gets fully right (every gold entity
exactly, nothing else, and the right anomaly decision at its stored threshold); the page says
how many such documents there are, so the choice is not mistaken for the accuracy (that is
`evaluate`'s metrics.json). If none is fully right, the page says so and shows the closest.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
MAX_HEADLINE_CHARS = 260
LINE_LENGTH = 100  # pyproject.toml [tool.ruff] line-length


def _call_lines(head: str, text: str) -> List[str]:
    """`head` + the text as a double-quoted literal + `)`, wrapped as `ruff format` wraps it, so the
    generated page passes `ruff format --check` as written."""
    literal = json.dumps(text, ensure_ascii=False)
    one_line = f"{head}{literal})"
    return [one_line] if len(one_line) <= LINE_LENGTH else [head, f"    {literal}", ")"]


def judge(doc: Any, row: Dict[str, Any]) -> Dict[str, Any]:
    """How the pipeline did on one labelled row: entity matches and the anomaly decision."""
    predicted = {(e.start_char, e.end_char, e.label_) for e in doc.ents}
    gold = {tuple(e) for e in row.get("entities", [])}
    anomaly_right = None
    if "anomaly" in row and doc._.is_anomaly is not None:
        anomaly_right = bool(doc._.is_anomaly) == bool(row["anomaly"])
    return {
        "entities_right": predicted == gold,
        "n_correct": len(predicted & gold),
        "n_gold": len(gold),
        "n_predicted": len(predicted),
        "anomaly_right": anomaly_right,
        "fully_right": predicted == gold and anomaly_right is not False,
    }


def choose(
    docs: List[Any], rows: List[Dict[str, Any]], anomalous: bool
) -> Tuple[Optional[int], bool]:
    """(index of the example to show, whether it is fully right) among rows with this gold anomaly label.

    Fully right first, then the most entity labels of distinct kinds, then the shortest text.
    """
    candidates = [
        i
        for i, row in enumerate(rows)
        if bool(row.get("anomaly")) == anomalous and len(row["text"]) <= MAX_HEADLINE_CHARS
    ]
    if not candidates:
        candidates = [i for i, row in enumerate(rows) if bool(row.get("anomaly")) == anomalous]
    if not candidates:
        return None, False
    verdicts = {i: judge(docs[i], rows[i]) for i in candidates}
    right = [i for i in candidates if verdicts[i]["fully_right"]]
    if right:
        best = max(
            right, key=lambda i: (len({e.label_ for e in docs[i].ents}), -len(rows[i]["text"]))
        )
        return best, True

    def closeness(i: int) -> float:
        v = verdicts[i]
        f = 2 * v["n_correct"] / max(1, v["n_gold"] + v["n_predicted"])
        return f + (1.0 if v["anomaly_right"] else 0.0)

    return max(candidates, key=closeness), False


def _entities(doc: Any) -> List[Tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]


def _serve_answer(nlp: Any, text: str) -> Optional[str]:
    try:
        from fastapi.testclient import TestClient
    except ImportError:
        return None
    from spacy_modernbert.serve.app import create_app
    from spacy_modernbert.serve.limits import Limits

    with TestClient(create_app(nlp, Limits())) as client:
        answer = client.post("/annotate", json={"texts": [text]}).json()
    return json.dumps(answer, indent=2, ensure_ascii=False)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def render(pipeline: str, data: Path, nlp: Any, rows: List[Dict[str, Any]], docs: List[Any]) -> str:
    """The markdown page."""
    from spacy_modernbert.annotate.rows import output_row

    pipe = nlp.get_pipe("anomaly_scorer")
    threshold = float(pipe.cfg.get("threshold", 0.5))
    verdicts = [judge(doc, row) for doc, row in zip(docs, rows)]
    n_right = sum(v["fully_right"] for v in verdicts)
    n_entities = sum(v["entities_right"] for v in verdicts)
    n_anomaly = sum(bool(v["anomaly_right"]) for v in verdicts)
    headline, headline_right = choose(docs, rows, anomalous=False)
    flagged, flagged_right = choose(docs, rows, anomalous=True)
    meta = nlp.meta
    lines = [
        "# Examples from the demo pipeline",
        "",
        "<!-- Generated by docs/make_examples.py: do not edit; rerun the script after `weasel run all`. -->",
        "",
        f"Generated by `python docs/make_examples.py {pipeline} --data {data}` (commit `{_commit()}`): every output",
        f"below is what the pipeline `{meta.get('lang', 'en')}_{meta.get('name')}` {meta.get('version')} returns. Its",
        f"anomaly threshold is `{threshold:.6f}` (stored by `calibrate`). The encoder is the tiny offline checkpoint of",
        "`weasel run all`, trained from random weights on the demo corpus: the figures show the mechanics, not the",
        "accuracy of a real ModernBERT (see `metrics/metrics.json` and the model card for that).",
        "",
        f"Of the {len(rows)} documents of `{data}`, the pipeline gets {n_right} fully right (every entity exact, nothing",
        f"extra, and the right anomaly decision), {n_entities} with every entity exact, and {n_anomaly} with the right",
        "anomaly decision. The examples below are chosen among the fully right ones"
        + (
            " (the headline: the one with the most entity types)."
            if headline_right
            else ": there is none, so the closest is shown, with its errors."
        ),
        "",
    ]
    if headline is not None:
        doc, row = docs[headline], rows[headline]
        verdict = verdicts[headline]
        lines += [
            "## Python",
            "",
            "```python",
            "import spacy",
            "",
            f'nlp = spacy.load("{pipeline}")',
            *_call_lines("doc = nlp(", row["text"]),
            "print([(ent.text, ent.label_) for ent in doc.ents])",
            "print(round(doc._.anomaly_score, 4), doc._.is_anomaly)",
            "```",
            "",
            "```text",
            repr(_entities(doc)),
            f"{round(float(doc._.anomaly_score), 4)} {doc._.is_anomaly}",
            "```",
            "",
        ]
        if not headline_right:
            gold = [(row["text"][s:e], label) for s, e, label in row.get("entities", [])]
            lines += [
                f"Not fully right: the gold entities are `{gold}` and the gold anomaly label is "
                f"`{bool(row.get('anomaly'))}` ({verdict['n_correct']} of {verdict['n_gold']} entities found).",
                "",
            ]
        answer = _serve_answer(nlp, row["text"])
        if answer is not None:
            lines += [
                "## `serve`",
                "",
                '`POST /annotate` with `{"texts": [...]}` of the same text answers:',
                "",
                "```json",
                answer,
                "```",
                "",
            ]
        record = {"id": "report-1", "text": row["text"]}
        lines += [
            "## `annotate`",
            "",
            "One output row of `python -m spacy_modernbert annotate PIPELINE in.jsonl out.jsonl`",
            'for the input row `{"id": "report-1", "text": ...}`:',
            "",
            "```json",
            json.dumps(output_row(record, doc), ensure_ascii=False),
            "```",
            "",
        ]
    if flagged is not None:
        doc, row = docs[flagged], rows[flagged]
        lines += [
            "## An anomalous report",
            "",
            "```text",
            row["text"],
            "```",
            "",
            f"`doc._.anomaly_score` = {float(doc._.anomaly_score):.4f}, `doc._.is_anomaly` = {doc._.is_anomaly} "
            f"(threshold {threshold:.6f}); gold: anomalous."
            + ("" if flagged_right else " Not fully right (see the entities or the decision)."),
            "",
        ]
    return "\n".join(lines)


def make_examples(pipeline: str, data: Path, output: Path) -> str:
    """Run `pipeline` over the labelled JSONL `data` and write the page to `output`; returns the text."""
    import srsly

    from spacy_modernbert.cli._util import load_pipeline

    nlp = load_pipeline(pipeline)
    if "anomaly_scorer" not in nlp.pipe_names:
        raise SystemExit(f"{pipeline} has no anomaly_scorer: the examples show one")
    rows = [
        row
        for row in srsly.read_jsonl(data)
        if isinstance(row, dict) and isinstance(row.get("text"), str)
    ]
    docs = list(nlp.pipe(row["text"] for row in rows))
    text = render(pipeline, data, nlp, rows, docs)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    Path(output).write_text(text, encoding="utf8")
    return text


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "pipeline", help="the pipeline directory or package (e.g. training/model-calibrated)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=ROOT / "assets" / "demo" / "test.jsonl",
        help="labelled JSONL (text, entities, anomaly) to choose the examples from",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "examples.md")
    args = parser.parse_args(argv)
    make_examples(args.pipeline, args.data, args.output)
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
