"""Paragraphs on the shipped path (issue 33): the same trained models read sentences, paragraphs at gold sentence starts, and paragraphs split by each rule set of `sentence_rules`.

Why: users call `nlp()` on paragraphs, which carry no sentence boundaries; with
`sentence_windows = true` (the shipped NER configs) the encoder splits them by rules
(`spacy_modernbert/encoder/sentences.py`) and reads each sentence in its own window. What a
user gets is then limited by those rules, not by the model: this benchmark measures the rules
against the gold sentence boundaries and what their errors cost in F1, with models trained once.

Invariant: the models are the sentence system of `ner_protocol.py` (1-sentence training docs,
its dev-chosen rate, seeds 0-2), trained by `ner_study.py` (each run appends its line to
`ner_study_results.jsonl`) and saved; every view below scores those saved models, so the views
differ only in how the scored docs are split. `splits` and `dev` read the dev split only (every
rule was chosen there); `test` reads CoNLL valid once per final run and chooses nothing.

    python benchmarks/ner_paragraphs.py train --protocol pretrained   # 3 seed models (saved)
    python benchmarks/ner_paragraphs.py splits                        # rules vs gold boundaries on dev
    python benchmarks/ner_paragraphs.py splits --split test           # the same on test (descriptive)
    python benchmarks/ner_paragraphs.py dev --protocol pretrained     # every view on dev
    python benchmarks/ner_paragraphs.py test --protocol pretrained    # the reported views on test

Views (docs of `BLOCK` consecutive sentences, as `ner_study`'s "10" views):
    sentences      each sentence its own doc (the sentence system's headline view)
    gold           paragraphs with the gold sentence starts (a user's senter, if perfect)
    <rules>        paragraphs without sentence starts, split by the encoder's `sentence_rules`
                   (the shipped path: what `nlp("a paragraph")` gives)
    merges:<rules> gold starts minus those the rules miss (only the rules' merges)   [dev]
    cuts:<rules>   gold starts plus the rules' false starts (only the rules' cuts)    [dev]
    whole          paragraphs read whole, no sentence windows                         [dev]
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import ner_protocol as proto  # noqa: E402

RULE_SETS = ("sentencizer", "news")  # the rules before this benchmark, then the dev choice
BLOCK = 10
TAG = "protocol33-paragraphs"
LR = 2e-3  # the sentence system's dev-chosen rate in both protocols (ner_pretrained.json, ner_grid_r3.json)
RECIPE = {"docs_of": 1, "epochs": proto.EPOCHS}
OUT = ROOT / "benchmarks" / "results"
TEST_VIEWS = ("sentences", "gold", *RULE_SETS)
DEV_VIEWS = (
    *TEST_VIEWS,
    *(f"merges:{r}" for r in RULE_SETS),
    *(f"cuts:{r}" for r in RULE_SETS),
    "whole",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBER = re.compile(r"^[\d.,:/+%-]+$")


def model_dir(cache_dir: Path, protocol: str, seed: int) -> Path:
    return Path(cache_dir) / "ner_paragraphs" / f"{protocol}-seed{seed}"


# ------------------------------------------------------------------------------ boundaries


def blocks(sents: Sequence[Any], k: int = BLOCK) -> List[Sequence[Any]]:
    return [sents[i : i + k] for i in range(0, len(sents), k)]


def gold_starts(group: Sequence[Any]) -> List[int]:
    """Token index of each sentence's first token in the doc that joins `group`."""
    starts, offset = [], 0
    for words, _ in group:
        starts.append(offset)
        offset += len(words)
    return starts


def rule_starts(vocab, words: Sequence[str], rules: str) -> List[int]:
    """Where the encoder's `sentence_rules` start sentences in a doc of `words` without starts
    (spaces between words, as the scored docs are made)."""
    from spacy.tokens import Doc

    from spacy_modernbert.encoder.sentences import sentence_token_starts

    return sentence_token_starts(Doc(vocab, words=list(words)), rules=rules)


def miss_kind(before: Sequence[str], after: Sequence[str]) -> str:
    """Why a gold boundary between sentence `before` and `after` (word lists) has no cue."""
    last = before[-1]
    if _DATE.match(last):
        return "after a dateline (LONDON 1996-08-30)"
    if any(w in ".!?" for w in before[-2:]):
        return "after final punctuation (a quote or dash follows)"
    if _NUMBER.match(last):
        return "after a number (results and tables)"
    if all(w.isupper() or not w.isalpha() for w in before):
        return "after an all-caps line (headline, source)"
    return "other (byline, heading, table header)"


def boundary_stats(sents: Sequence[Any], rules: str) -> Dict[str, Any]:
    """The rules' sentence starts against the gold ones over docs of `BLOCK` sentences:
    precision / recall of the starts after each doc's first, the misses by kind, and the false
    starts that fall inside a gold entity (a cut the ner cannot cross)."""
    import spacy

    from benchmarks import data as bdata

    vocab = spacy.blank("en").vocab
    tp = n_pred = n_gold = inside = 0
    misses: Counter = Counter()
    for group in blocks(sents):
        words = [w for ws, _ in group for w in ws]
        tags = [t for _, ts in group for t in ts]
        gold = gold_starts(group)
        gold_set = set(gold[1:])
        pred = set(rule_starts(vocab, words, rules)) - {0}
        tp += len(gold_set & pred)
        n_pred += len(pred)
        n_gold += len(gold_set)
        for j, start in enumerate(gold[1:], 1):
            if start not in pred:
                misses[miss_kind(group[j - 1][0], group[j][0])] += 1
        spans = bdata.iob_spans(tags)
        inside += sum(any(s < b < e for s, e, _ in spans) for b in pred - gold_set)
    p, r = tp / max(1, n_pred), tp / max(1, n_gold)
    return {
        "rules": rules,
        "gold starts": n_gold,
        "rule starts": n_pred,
        "precision": round(p, 3),
        "recall": round(r, 3),
        "F1": round(2 * p * r / max(1e-9, p + r), 3),
        "false starts inside an entity": inside,
        "misses": dict(misses.most_common()),
    }


# ------------------------------------------------------------------------------ scoring


def load_model(path: Path):
    import spacy

    import spacy_modernbert  # noqa: F401

    if not (Path(path) / "config.cfg").exists():
        raise FileNotFoundError(
            f"no trained pipeline at {path}: run `python benchmarks/ner_paragraphs.py train` first"
        )
    return spacy.load(path)


def view_starts(view: str, vocab, group: Sequence[Any]) -> Optional[Set[int]]:
    """The sentence starts a scored doc of `group` carries under `view`; None: none (the
    encoder splits it by its `sentence_rules`, or reads it whole)."""
    words = [w for ws, _ in group for w in ws]
    gold = set(gold_starts(group))
    kind, _, rules = view.partition(":")
    if view in ("sentences", "gold"):
        return gold
    if view in RULE_SETS or view == "whole":
        return None
    if kind == "merges" and rules in RULE_SETS:
        return gold & set(rule_starts(vocab, words, rules))
    if kind == "cuts" and rules in RULE_SETS:
        return gold | set(rule_starts(vocab, words, rules))
    raise ValueError(f"unknown view {view!r}: {DEV_VIEWS}")


def score_view(nlp, sents: Sequence[Any], view: str) -> float:
    """Entity F1 (x100) of `nlp` on `sents` read as `view` (module docstring)."""
    from spacy.tokens import Doc

    from benchmarks import accuracy as acc
    from benchmarks import data as bdata

    trf = nlp.get_pipe("transformer").model
    trf.attrs["sentence_windows"] = view != "whole"
    if view in RULE_SETS:
        trf.attrs["sentence_rules"] = view
    groups = [[s] for s in sents] if view == "sentences" else blocks(sents)
    docs = []
    for group in groups:
        words = [w for ws, _ in group for w in ws]
        starts = view_starts(view, nlp.vocab, group)
        flags = None if starts is None else [i in starts for i in range(len(words))]
        docs.append(Doc(nlp.vocab, words=words, sent_starts=flags))
    pred = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(docs, batch_size=64)]
    gold_spans = [bdata.iob_spans(tags) for _, tags in acc.join_sentences(sents, len(groups[0]))]
    return round(100 * acc.span_prf(gold_spans, pred)["f1"], 2)


def spread(values: Sequence[float]) -> Dict[str, Any]:
    return {
        "mean": round(statistics.mean(values), 2),
        "std": round(statistics.stdev(values), 2) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def score_models(
    protocol: str, split: str, views: Sequence[str], cache_dir: Path, data_dir: Path, log=print
) -> Dict[str, List[float]]:
    """{view: [F1 of seed 0, 1, 2]} of the saved seed models on `split` (dev | test)."""
    from benchmarks.ner_study import load_split

    _, sents = load_split(split, proto.N_TRAIN, data_dir=data_dir)
    out: Dict[str, List[float]] = {v: [] for v in views}
    for seed in proto.SEEDS:
        nlp = load_model(model_dir(cache_dir, protocol, seed))
        for view in views:
            t0 = time.perf_counter()
            out[view].append(score_view(nlp, sents, view))
            log(
                f"{protocol} seed {seed} {split} {view}: {out[view][-1]} ({time.perf_counter() - t0:.0f} s)"
            )
    return out


# ------------------------------------------------------------------------------ phases


def train(protocol: str, cache_dir: Path, data_dir: Path, threads: int = 1) -> None:
    """The sentence system's seed models, one `ner_study.py` process each (its line appended
    to the study's results), scored there on dev and saved for the views here."""
    checkpoint = _checkpoint(protocol, cache_dir, data_dir)
    for seed in proto.SEEDS:
        out = model_dir(cache_dir, protocol, seed)
        if (out / "config.cfg").exists():
            continue
        cmd = [sys.executable, str(ROOT / "benchmarks" / "ner_study.py"), "ours", "--lr", str(LR)]
        cmd += [a for k, v in RECIPE.items() for a in ("--set", f"{k}={v}")]
        cmd += ["--n-train", str(proto.N_TRAIN), "--split", "dev", "--seed", str(seed)]
        cmd += [
            "--threads",
            str(threads),
            "--checkpoint",
            str(checkpoint),
            "--data-dir",
            str(data_dir),
        ]
        cmd += ["--tag", f"{TAG}-{protocol}", "--save-model", str(out)]
        subprocess.run(cmd, check=True)


def _checkpoint(protocol: str, cache_dir: Path, data_dir: Path) -> Path:
    from benchmarks import data as bdata

    if protocol == "pretrained":
        return proto.ensure_pretrained(cache_dir, data_dir)[0]
    return bdata.ensure_checkpoint(Path(cache_dir) / "modernbert-small-random", "small", data_dir)


def _record(
    name: str, command: str, chooses: str, reports: str, protocol: str, columns, rows, **extra
):
    from benchmarks.report import machine_info, write_json
    from benchmarks.results import record

    checkpoint = proto.PROTOCOLS[protocol].checkpoint if protocol else "none: no model is read"
    marker = Path(extra.pop("cache_dir", proto.CACHE)) / "modernbert-small-pretrained-33"
    if protocol == "pretrained" and (marker / "protocol_pretrain.json").exists():
        # which pretraining run the models start from (its held-out MLM loss tells them apart)
        extra["pretraining"] = json.loads((marker / "protocol_pretrain.json").read_text("utf8"))
    result = record(
        name,
        command,
        {
            "chooses": chooses,
            "reports": reports,
            "checkpoint": checkpoint,
            "seeds": len(proto.SEEDS) if protocol else 0,
            "budget": f"{proto.N_TRAIN:,} CoNLL-2003 train sentences (blocks of 10 consecutive), "
            f"{proto.EPOCHS} epochs of 32 one-sentence docs per step, rate {LR:g}, 1 torch thread",
        },
        columns,
        rows,
        extra.pop("summary", []),
        machine=machine_info("cpu"),
        **extra,
    )
    write_json(OUT / f"{name}.json", result)
    return result


CHOOSES = 'dev: the last 10% of CoNLL-2003 train (the rules of `sentence_rules = "news"` were chosen on it)'


def phase_splits(data_dir: Path, split: str = "dev") -> Dict[str, Any]:
    """The rules against the gold sentence starts (no model): on dev, where they were chosen,
    or on test, descriptive only (it explains the test figures and chooses nothing)."""
    from benchmarks.ner_study import load_split

    _, sents = load_split(split, proto.N_TRAIN, data_dir=data_dir)
    rows = [boundary_stats(sents, rules) for rules in RULE_SETS]
    where = (
        "dev (this table chooses; no test figure)"
        if split == "dev"
        else "test: CoNLL-2003 valid, descriptive (no model; read after the rules were fixed)"
    )
    return _record(
        "ner_splitter" + ("" if split == "dev" else "_test"),
        f"python benchmarks/ner_paragraphs.py splits --split {split}",
        CHOOSES,
        f"{where}: sentence starts after the first of each doc of "
        f"{BLOCK} consecutive sentences joined by spaces",
        "",
        [
            "rules",
            "gold starts",
            "rule starts",
            "precision",
            "recall",
            "F1",
            "false starts inside an entity",
            "misses",
        ],
        rows,
    )


def phase_views(protocol: str, split: str, cache_dir: Path, data_dir: Path) -> Dict[str, Any]:
    views = DEV_VIEWS if split == "dev" else TEST_VIEWS
    scores = score_models(protocol, split, views, cache_dir, data_dir)
    describe = {
        "sentences": "one sentence per doc",
        "gold": f"{BLOCK}-sentence docs, gold sentence starts",
        "sentencizer": f"{BLOCK}-sentence docs, shipped path, sentence_rules = sentencizer (before)",
        "news": f"{BLOCK}-sentence docs, shipped path, sentence_rules = news (the shipped configs)",
        "whole": f"{BLOCK}-sentence docs read whole (sentence_windows = false)",
    }
    for r in RULE_SETS:
        describe[f"merges:{r}"] = f"{BLOCK}-sentence docs, gold starts minus those {r} misses"
        describe[f"cuts:{r}"] = f"{BLOCK}-sentence docs, gold starts plus {r}'s false starts"
    rows = [
        {
            "view": describe[v],
            "F1": spread(scores[v]),
            "vs gold starts": round(
                statistics.mean(scores[v]) - statistics.mean(scores["gold"]), 2
            ),
            "seeds": scores[v],
        }
        for v in views
    ]
    name = f"ner_paragraphs{'' if split == 'test' else '_dev'}{'' if protocol == 'pretrained' else '_random'}"
    prefix = proto.PROTOCOLS[protocol].claim_prefix or "random checkpoint: "
    summary = []
    if split == "test":
        news, old, sent = (statistics.mean(scores[v]) for v in ("news", "sentencizer", "sentences"))
        summary.append(
            {
                "claim": prefix
                + f"NER F1 on {BLOCK}-sentence paragraphs on the shipped path (no sentence starts, sentence_rules = news) vs the same models on sentences",
                "figure": f"{news:.2f} vs {sent:.2f} ({news - sent:+.2f}; sentencizer rules: {old:.2f})",
                "range": f"news {min(scores['news'])}-{max(scores['news'])}, sentences {min(scores['sentences'])}-{max(scores['sentences'])}",
                "baseline": "the same 3 seed models (1-sentence training docs) on one sentence per doc",
                "split": "rules chosen on dev (last 10% of CoNLL train), reported on test (CoNLL valid), 3 seeds",
                "caveat": "paragraphs are 10 consecutive valid sentences joined by spaces (no line breaks)",
            }
        )
    command = (
        f"python benchmarks/ner_paragraphs.py train --protocol {protocol} && "
        f"python benchmarks/ner_paragraphs.py {split} --protocol {protocol}"
    )
    return _record(
        name,
        command,
        CHOOSES,
        "test: CoNLL-2003 valid, once per final run"
        if split == "test"
        else "dev (this table chooses; no test figure)",
        protocol,
        ["view", "F1", "vs gold starts"],
        rows,
        summary=summary,
        cache_dir=cache_dir,
    )


def main(argv: Optional[List[str]] = None) -> None:
    import torch

    from benchmarks.ner_study import DATA_DIR

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("phase", choices=["train", "splits", "dev", "test"])
    p.add_argument("--protocol", choices=sorted(proto.PROTOCOLS), default="pretrained")
    p.add_argument("--cache-dir", type=Path, default=proto.CACHE)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--split", choices=["dev", "test"], default="dev", help="splits: which split's boundaries"
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.phase == "train":
        train(args.protocol, args.cache_dir, args.data_dir, args.threads)
    elif args.phase == "splits":
        phase_splits(args.data_dir, args.split)
    else:
        phase_views(args.protocol, args.phase, args.cache_dir, args.data_dir)


if __name__ == "__main__":
    main()
