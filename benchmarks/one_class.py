"""`python -m benchmarks one-class`: one-class anomaly detection under a clean protocol.

Why: the figures of the first round had a tokenizer trained on every SMS message (spam and
test included) and a detector design chosen on the test sets it was reported on (issue 24).

The protocol (invariants):
* **What the checkpoint saw.** For each training set, a random-init `small` checkpoint
  (4 x 128, BPE 8k) whose tokenizer is trained on that set's *normal training docs only*,
  and the same checkpoint after `pretrain` on the same docs (`--pretrain-steps` x
  `--pretrain-batch-tokens` pieces; 0 steps: random-init only). No validation, test or
  anomalous text reaches a tokenizer or a checkpoint.
* **Splits**, one per seed in `--splits` (default 3):
  - `sms`: the SMS Spam Collection split 60/20/20 (stratified by label, seeded) into
    train / validation / test; the training set is the ham of the train part;
  - `news-vs-sms1`, `news-vs-sms3`: normal docs are 3 consecutive CoNLL-2003 sentences; the
    training set is CoNLL train (the same for every seed); CoNLL valid docs are shuffled and
    cut into `--news-eval` validation and `--news-eval` test normals; the anomalies are
    SMS messages, one or three per doc, disjoint between validation and test;
  - `clinc-oos`: CLINC150, fitted on `--clinc-train` in-scope training utterances (a seeded
    sample, the same for every split); validation and test are disjoint halves of
    `--news-eval` in-scope `val` utterances each and of the 200 out-of-scope utterances
    (`oos_train` + `oos_val`; the release's test split is not used);
  - `news-mixed`: the same normals as the other news tasks; an anomaly is another CoNLL valid doc with one of its
    3 sentences replaced by an SMS message (a hidden passage: issue 32).
* **Objectives** (`--objectives`): one pretrained checkpoint per pretrain objective, `mlm`
  ("pretrained"), `mlm+contrastive` ("contrastive"), `rtd` ("rtd-pretrained": replaced-token
  detection, pretrain/rtd.py) and `mlm+rtd` ("mlm-rtd"), each a grid axis of its own.
* **Replaced-token detection** (`--replaced-tokens`): ours' grid gains the `replaced_tokens`
  detector (one_class_rtd.py: fitted on encoded corrupted copies of the normal training docs),
  with a row of its own (`ours @replaced_tokens`).
* **Outlier exposure** (`--outlier-exposure FILE`, e.g. CLINC150's `wiki_sents.txt`): a
  family `ours_oe`, ours' grid with the component's `outlier_exposure` setting (a seeded
  sample of `--outlier-exposure-n` lines of FILE as pseudo-anomalies). The file must never
  hold the anomalies a task is measured on: a split whose validation or test texts appear in
  it is refused.
* **Design frozen on validation.** Each family of systems has a grid of at most 12
  configurations (`grids.py`); per family, task and split, the configuration with the best
  validation ROC AUC is chosen, then scored once on the test split. The families:
  `ours` (the `anomaly_scorer` detectors, on our encoder's features, x checkpoint),
  `tfidf_knn`, `emb_lof` and `emb_ecod` (our pooled embedding, x checkpoint).
* Reported: the chosen configuration's test ROC AUC (mean and range over splits), average
  precision, and |Spearman(score, words)| among the normal test docs (length dependence).

Ours is scored with the component's own code: our pipeline's listener features
(`anomaly.model.doc_features`) and the registered detectors' `fit` / `scores` (`anomaly.detectors`),
as `anomaly_scorer` (mode "one_class") runs them, so one encoder pass per
checkpoint serves every detector of the grid.
"""

import random
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import typer

from . import data as bdata
from ._app import CacheDir, Checkpoint, DataDir, Output, Threads, app, defaults
from .one_class_grids import ANCHOR_GRIDS, OURS_GRID, ours_scores, text_keys
from .one_class_rtd import ROW as RTD_ROW
from .one_class_rtd import RTD_GRID, corrupted_features
from .report import log, machine_info, table, write_json
from .results import command_line, git_commit, record

TASKS = ("sms", "news-vs-sms1", "news-vs-sms3", "news-mixed", "clinc-oos")
CLINC = Path("clinc150") / "clinc150_train_val.json"
# `--objectives`: the pretrain objective of each pretrained checkpoint, and its name in the grids.
OBJECTIVE_CHECKPOINTS = {
    "mlm": "pretrained",
    "mlm+contrastive": "contrastive",
    "rtd": "rtd-pretrained",
    "mlm+rtd": "mlm-rtd",
}
Split = Dict[str, Any]  # train, val, val_gold, test, test_gold, train_key
# Our families and their names in the summary's claims (ours_oe: with --outlier-exposure).
OURS = {"ours": "ours", "ours_oe": "ours + outlier exposure"}


def sms_split(rows: Sequence[Tuple[int, str]], seed: int) -> Split:
    from spacy_modernbert.data.splits import stratified_split

    train, val, test = stratified_split(
        [y for y, _ in rows], dev_frac=0.2, test_frac=0.2, seed=seed
    )
    return {
        "train": [rows[i][1] for i in train if rows[i][0] == 0],
        "train_key": f"sms-ham-seed{seed}",
        "val": [rows[i][1] for i in val],
        "val_gold": [rows[i][0] for i in val],
        "test": [rows[i][1] for i in test],
        "test_gold": [rows[i][0] for i in test],
    }


def conll_docs(path: Path, per_doc: int = 3) -> List[List[str]]:
    """Documents of `per_doc` consecutive CoNLL sentences, each a list of its sentences."""
    sents = [" ".join(words) for words, _ in bdata.read_conll(path)]
    return [sents[i : i + per_doc] for i in range(0, len(sents) - per_doc + 1, per_doc)]


def news_splits(
    train: List[str], valid: List[List[str]], sms: List[str], n: int, seed: int
) -> Dict[str, Split]:
    """The news tasks of one seed: validation and test normals from CoNLL valid docs (lists of
    sentences), SMS anomalies. `news-mixed`: an anomaly is a CoNLL valid doc (none of the
    normal ones) with one sentence, at a random position, replaced by an SMS message: one
    anomalous passage hidden among normal ones; at most `n` per set (fewer when CoNLL valid
    has too few docs left)."""
    valid, sms = list(valid), list(sms)
    rng = random.Random(seed)
    rng.shuffle(valid)
    random.Random(seed).shuffle(sms)
    n = min(n, len(valid) // 2, len(sms) // 8)
    if n < 1:
        raise SystemExit(
            f"too few CoNLL valid docs ({len(valid)}) or SMS messages ({len(sms)}) for the news tasks"
        )
    joined = [" ".join(d) for d in valid]
    normal_val, normal_test = joined[:n], joined[n : 2 * n]
    three = [" ".join(sms[2 * n + 3 * i : 2 * n + 3 * i + 3]) for i in range(2 * n)]
    rest, spare = valid[2 * n :], sms[8 * n :]
    m = min(n, len(rest) // 2, len(spare) // 2)
    mixed = []
    for doc, message in zip(rest[: 2 * m], spare):
        at = rng.randrange(len(doc))
        mixed.append(" ".join(doc[:at] + [message] + doc[at + 1 :]))
    out = {}
    for name, val_anom, test_anom in (
        ("news-vs-sms1", sms[:n], sms[n : 2 * n]),
        ("news-vs-sms3", three[:n], three[n:]),
        ("news-mixed", mixed[:m], mixed[m:]),
    ):
        out[name] = {
            "train": train,
            "train_key": "conll2003-train",
            "val": normal_val + val_anom,
            "val_gold": [0] * n + [1] * len(val_anom),
            "test": normal_test + test_anom,
            "test_gold": [0] * n + [1] * len(test_anom),
        }
    return out


def clinc_split(data: Dict[str, Any], n_train: int, n: int, seed: int) -> Split:
    """clinc-oos of one seed: in-scope training utterances, in-scope val + out-of-scope anomalies."""
    train = [t for t, _ in data["train"]]
    random.Random(0).shuffle(train)  # the same training sample (and checkpoint) for every split
    inscope = [t for t, _ in data["val"]]
    oos = [t for t, _ in data["oos_train"] + data["oos_val"]]
    random.Random(seed).shuffle(inscope)
    random.Random(seed).shuffle(oos)
    n, m = min(n, len(inscope) // 2), len(oos) // 2
    if n < 1 or m < 1:
        raise SystemExit(
            f"too few CLINC150 val ({len(inscope)}) or out-of-scope ({len(oos)}) utterances"
        )
    return {
        "train": train[:n_train],
        "train_key": f"clinc150-train{n_train}",
        "val": inscope[:n] + oos[:m],
        "val_gold": [0] * n + [1] * m,
        "test": inscope[n : 2 * n] + oos[m : 2 * m],
        "test_gold": [0] * n + [1] * m,
    }


def check_outlier_texts(texts: Sequence[str], split: Split, task: str) -> None:
    """Refuse outlier-exposure texts that hold a validation or test text of the split (the
    pseudo-anomalies must never come from the anomalies a task is measured on)."""
    if not texts:
        return
    held_out = {t.strip().lower() for t in split["val"] + split["test"]}
    shared = [t for t in texts if t.strip().lower() in held_out]
    if shared:
        raise SystemExit(
            f"--outlier-exposure holds {len(shared)} validation/test texts of {task} "
            f"(e.g. {shared[0][:60]!r}): use out-of-domain text that is not the task's anomaly source"
        )


def metrics(gold: Sequence[int], scores: Sequence[float], words: Sequence[int]) -> Dict[str, Any]:
    from scipy.stats import spearmanr

    from spacy_modernbert.anomaly.curves import average_precision, roc_auc

    gold_a, scores_a, words_a = (
        numpy.asarray(gold),
        numpy.asarray(scores, dtype="float64"),
        numpy.asarray(words),
    )
    normal = gold_a == 0
    rho = (
        spearmanr(scores_a[normal], words_a[normal]).correlation
        if normal.sum() > 1
        else float("nan")
    )
    return {
        "roc_auc": roc_auc(gold_a, scores_a),
        "average_precision": average_precision(gold_a, scores_a),
        "abs_spearman_words": None if numpy.isnan(rho) else abs(float(rho)),
    }


# ---------------------------------------------------------------------------- checkpoints and features


def parse_objectives(objectives: str) -> List[str]:
    """`--objectives` (comma-separated) as a list, each one of OBJECTIVE_CHECKPOINTS."""
    chosen = [o.strip() for o in objectives.split(",") if o.strip()]
    bad = [o for o in chosen if o not in OBJECTIVE_CHECKPOINTS]
    if bad or not chosen:
        raise typer.BadParameter(
            f"unknown objectives {bad}; choose from {', '.join(OBJECTIVE_CHECKPOINTS)}",
            param_hint="--objectives",
        )
    return chosen


def checkpoints_for(
    key: str,
    train: List[str],
    cache_dir: Path,
    data_dir: Path,
    given: Optional[Path],
    pretrain_steps: int,
    pretrain_batch_tokens: int,
    seed: int,
    objectives: Sequence[str] = ("mlm",),
    shape: str = "small",
) -> Dict[str, Path]:
    """{"random-init": ..., "pretrained": ..., "contrastive": ...} for one training set (cached
    under cache_dir/key): one pretrained checkpoint per objective of `objectives`. `shape`: the
    encoder's (bdata.SHAPES; another than "small" is cached under cache_dir/KEY-SHAPE), its
    tokenizer trained on the same `train` text."""
    if given is not None:
        return {"random-init": Path(given)}
    root = Path(cache_dir) / "one_class" / (key if shape == "small" else f"{key}-{shape}")
    out = {
        "random-init": bdata.ensure_checkpoint(
            root / "random-init", shape, data_dir, log=log, texts=train, text_name=key
        )
    }
    for objective in objectives if pretrain_steps > 0 else ():
        name = OBJECTIVE_CHECKPOINTS[objective]
        target = root / f"{name}-{pretrain_steps}x{pretrain_batch_tokens}"
        if not (target / "config.json").exists():
            from spacy_modernbert.pretrain.loop import pretrain

            text = root / "train.txt"
            text.write_text("\n".join(t.replace("\n", " ") for t in train) + "\n", encoding="utf8")
            log(
                f"pretraining {key} ({objective}): {pretrain_steps} steps of {pretrain_batch_tokens} pieces on its {len(train)} normal docs"
            )
            pretrain(
                out["random-init"],
                [text],
                target,
                steps=pretrain_steps,
                batch_tokens=pretrain_batch_tokens,
                seed=seed,
                save_every=pretrain_steps,
                log_every=max(1, pretrain_steps // 5),
                objective=objective,
            )
        out[name] = target
    return out


def encoder_features(
    checkpoint: Path, texts: Sequence[str], seed: int, memo: Optional[Dict[str, Any]] = None
) -> Tuple[numpy.ndarray, List[numpy.ndarray]]:
    """Pooled embeddings and token vectors of `texts`, exactly as `anomaly_scorer` (one_class) sees them.

    texts may hold spaCy Docs instead (their tokenization kept; no memo).

    memo: {text: (pooled row, token vectors)} of this checkpoint, filled and reused (the news
    tasks of one seed share their normal documents; inference mode is deterministic)."""
    if memo is not None:
        todo = list(dict.fromkeys(t for t in texts if t not in memo))
        if todo:
            X, T = encoder_features(checkpoint, todo, seed)
            memo.update({t: (x, tok) for t, x, tok in zip(todo, X, T)})
        return numpy.stack([memo[t][0] for t in texts]), [memo[t][1] for t in texts]
    import spacy
    from spacy.training import Example

    import spacy_modernbert  # noqa: F401
    from spacy_modernbert.anomaly.model import doc_features

    from .systems import listener, ours_transformer

    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=ours_transformer(checkpoint))
    nlp.add_pipe(
        "anomaly_scorer",
        config={
            "mode": "one_class",
            "detector": {"@anomaly_detectors": "spacy-modernbert.KnnDetector.v1"},
            "model": {"@architectures": "spacy-modernbert.AnomalyHead.v1", "tok2vec": listener()},
        },
    )
    nlp.initialize(
        lambda: [
            Example(nlp.make_doc(t), nlp.make_doc(t))
            for t in [str(t) for t in texts[:8]] + ["a b", "c d"]
        ]
    )
    model = nlp.get_pipe("anomaly_scorer").model
    pooled, tokens = [], []
    for start in range(0, len(texts), 256):
        docs = list(
            nlp.get_pipe("transformer").pipe(
                (_as_doc(nlp, t) for t in texts[start : start + 256]), batch_size=64
            )
        )
        X, T = doc_features(model, docs, True)
        pooled.append(numpy.asarray(model.ops.to_numpy(X), dtype="float64"))
        tokens.extend(numpy.asarray(model.ops.to_numpy(t), dtype="float32") for t in T)
    return numpy.concatenate(pooled), tokens


def _as_doc(nlp: Any, text: Any) -> Any:
    """A doc of `nlp` from a text, or from a Doc's words and spaces (its tokenization kept:
    the corrupted copies of one_class_rtd.py)."""
    if isinstance(text, str):
        return nlp.make_doc(text)
    from spacy.tokens import Doc

    return Doc(nlp.vocab, words=[t.text for t in text], spaces=[bool(t.whitespace_) for t in text])


# ---------------------------------------------------------------------------- the run


def chosen_on_validation(
    scored: List[Tuple[Dict[str, Any], str, Any]], test_gold: Any, test_words: Any
) -> Dict[str, Any]:
    """A family's (or a row's) entry from its grid `scored` = [(validation metrics, name,
    test scores)]: the configuration with the best validation ROC AUC, its test metrics
    (the test split touched once, for the chosen one), and every configuration's validation AUC."""
    val_m, name, test_s = max(scored, key=lambda x: x[0]["roc_auc"] or 0.0)
    return {
        "chosen": name,
        "val": val_m,
        "test": metrics(test_gold, test_s, test_words),
        "grid": {n: m["roc_auc"] for m, n, _ in scored},
    }


def run_one_class(
    checkpoint: Optional[Path] = None,
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/one_class.json"),
    threads: int = 1,
    tasks: str = ",".join(TASKS),
    splits: int = 3,
    news_eval: int = 500,
    pretrain_steps: int = 200,
    pretrain_batch_tokens: int = 2048,
    objectives: str = "mlm",
    clinc_train: int = 3000,
    outlier_exposure: Optional[Path] = None,
    outlier_exposure_n: int = 1000,
    replaced_tokens: bool = False,
) -> Dict[str, Any]:
    """Every family's validation-chosen configuration, scored on the test split of each seed."""
    import torch

    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    git_commit()  # the code that runs: read now, not when the result is written
    data_dir = Path(data_dir)
    if not (data_dir / bdata.SMS).exists():
        raise SystemExit(f"SMS Spam Collection not found under {data_dir}: pass --data-dir")
    wanted = [t.strip() for t in tasks.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in TASKS]
    if unknown or not wanted:
        raise typer.BadParameter(
            f"unknown tasks {unknown}; choose from {', '.join(TASKS)}", param_hint="--tasks"
        )
    chosen_objectives = parse_objectives(objectives)
    sms_rows = bdata.read_sms(data_dir / bdata.SMS)
    news = None
    if any(t.startswith("news") for t in wanted):
        news = (
            [" ".join(d) for d in conll_docs(data_dir / bdata.CONLL_TRAIN)],
            conll_docs(data_dir / bdata.CONLL_VALID),
            [t for _, t in sms_rows],
        )
    clinc = None
    if "clinc-oos" in wanted:
        import json

        if not (data_dir / CLINC).exists():
            raise SystemExit(f"CLINC150 not found under {data_dir}: pass --data-dir")
        clinc = json.loads((data_dir / CLINC).read_text(encoding="utf8"))
    oe_texts: List[str] = []
    if outlier_exposure is not None:
        from spacy_modernbert.anomaly.outlier_exposure import read_texts

        try:
            oe_texts = read_texts(
                {"path": str(outlier_exposure), "n": outlier_exposure_n}, "ours_oe"
            )
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--outlier-exposure") from None
    oe_setting = (
        {"path": str(outlier_exposure), "n": len(oe_texts)}
        if outlier_exposure is not None
        else None
    )
    runs: List[Dict[str, Any]] = []
    features: Dict[Tuple[str, str], Any] = {}
    for task in wanted:
        for seed in range(splits):
            if task == "sms":
                s = sms_split(sms_rows, seed)
            elif task == "clinc-oos":
                s = clinc_split(clinc, clinc_train, news_eval, seed)
            else:
                s = news_splits(*news, news_eval, seed)[task]
            if not sum(s["val_gold"]) or not sum(s["test_gold"]):
                raise SystemExit(
                    f"{task}: no anomalies left for validation or test (CoNLL valid has too few docs "
                    "beyond the normal ones); lower --news-eval"
                )
            check_outlier_texts(oe_texts, s, task)
            log(
                f"== {task}, split {seed}: {len(s['train'])} normal training docs, validation {len(s['val'])} "
                f"({sum(s['val_gold'])} anomalous), test {len(s['test'])} ({sum(s['test_gold'])} anomalous)"
            )
            ckpts = checkpoints_for(
                s["train_key"],
                s["train"],
                cache_dir,
                data_dir,
                checkpoint,
                pretrain_steps,
                pretrain_batch_tokens,
                seed,
                chosen_objectives,
            )
            features = {
                k: v for k, v in features.items() if k[0] == s["train_key"]
            }  # the news tasks share theirs
            for ckpt_name, ckpt in ckpts.items():
                key = (s["train_key"], ckpt_name)
                if key not in features:
                    log(f"  encoding {len(s['train'])} training docs ({ckpt_name})")
                    features[key] = {"train": encoder_features(ckpt, s["train"], seed)}
                    features[key]["keys"] = {"train": text_keys(s["train"])}  # pooling = "idf"
                    if replaced_tokens:
                        log(f"  encoding corrupted copies of the training docs ({ckpt_name})")
                        features[key]["corrupted"] = corrupted_features(
                            ckpt, s["train"], seed, encoder_features
                        )
                    if oe_texts:
                        log(f"  encoding {len(oe_texts)} outlier-exposure texts ({ckpt_name})")
                        features[key]["outliers"] = encoder_features(ckpt, oe_texts, seed)
                        features[key]["keys"]["outliers"] = text_keys(oe_texts)
                log(
                    f"  encoding {len(s['val']) + len(s['test'])} validation + test docs ({ckpt_name})"
                )
                memo = (
                    features[key].setdefault("memo", {})
                    if s["train_key"] != f"sms-ham-seed{seed}"
                    else None
                )
                if memo is not None and len(memo) > 20000:
                    memo.clear()
                X, T = encoder_features(ckpt, s["val"] + s["test"], seed, memo)
                n_val = len(s["val"])
                features[key]["val"] = (X[:n_val], T[:n_val])
                features[key]["test"] = (X[n_val:], T[n_val:])
                features[key]["keys"].update(val=text_keys(s["val"]), test=text_keys(s["test"]))
            run = {
                "task": task,
                "split": seed,
                "n_train": len(s["train"]),
                "n_val": len(s["val"]),
                "n_test": len(s["test"]),
                "families": {},
            }
            words = {part: [bdata.n_words(t) for t in s[part]] for part in ("val", "test")}
            ours_grid = OURS_GRID + (RTD_GRID if replaced_tokens else [])
            candidates = {"ours": [(cfg, ckpt_name) for ckpt_name in ckpts for cfg in ours_grid]}
            if oe_texts:
                candidates["ours_oe"] = candidates["ours"]
            candidates.update({family: grid(list(ckpts)) for family, grid in ANCHOR_GRIDS.items()})
            for family, configs in candidates.items():
                if not configs:  # e.g. pyod not installed: the result's settings say so
                    continue
                scored = []
                for cfg, ckpt_name in configs:
                    feats = features.get((s["train_key"], ckpt_name))
                    if family in OURS:
                        val_s, test_s = ours_scores(cfg, feats, family == "ours_oe")
                    else:
                        val_s, test_s = ANCHOR_GRIDS[family].score(cfg, s, feats)
                    name = cfg["name"] + (f" @{ckpt_name}" if ckpt_name else "")
                    scored.append((metrics(s["val_gold"], val_s, words["val"]), name, test_s))
                run["families"][family] = chosen_on_validation(
                    scored, s["test_gold"], words["test"]
                )
                name, val_m = run["families"][family]["chosen"], run["families"][family]["val"]
                log(
                    f"  {family:9s} chose {name:40s} val AUC {val_m['roc_auc']:.3f}  test AUC "
                    f"{run['families'][family]['test']['roc_auc']:.3f}"
                )
                rows_of = {}
                if family in OURS and len(ckpts) > 1:
                    # one row per checkpoint (objective): its own validation choice, on test
                    rows_of = {
                        f"{family} @{c}": [x for x in scored if x[1].endswith(f" @{c}")]
                        for c in ckpts
                    }
                if family == "ours" and replaced_tokens:  # the replaced_tokens detector alone
                    rtd_names = tuple(f"{c['name']} @" for c in RTD_GRID)
                    rows_of[RTD_ROW] = [x for x in scored if x[1].startswith(rtd_names)]
                if rows_of:
                    for row, mine in rows_of.items():
                        run["families"][row] = chosen_on_validation(
                            mine, s["test_gold"], words["test"]
                        )
            runs.append(run)
            if (
                output is not None
            ):  # a partial result after every split: a run cut off keeps what it measured
                write_json(
                    output,
                    summarize(
                        runs,
                        [t for t in wanted if any(r["task"] == t for r in runs)],
                        len({r["split"] for r in runs}),
                        checkpoint,
                        pretrain_steps,
                        pretrain_batch_tokens,
                        chosen_objectives,
                        oe_setting,
                        replaced_tokens,
                    ),
                )
    result = summarize(
        runs,
        wanted,
        splits,
        checkpoint,
        pretrain_steps,
        pretrain_batch_tokens,
        chosen_objectives,
        oe_setting,
        replaced_tokens,
    )
    result["total_seconds"] = round(time.perf_counter() - t_start, 1)
    print(
        "\n" + table(result["columns"], [[r[c] for c in result["columns"]] for r in result["rows"]])
    )
    write_json(output, result)
    return result


def _mean_range(values: Sequence[Optional[float]]) -> Tuple[Optional[float], str]:
    vals = [v for v in values if v is not None]
    if not vals:
        return None, "-"
    return statistics.mean(vals), f"{min(vals):.3f}-{max(vals):.3f}"


def summarize(
    runs: List[Dict[str, Any]],
    tasks: Sequence[str],
    splits: int,
    checkpoint: Optional[Path],
    pretrain_steps: int,
    pretrain_batch_tokens: int,
    objectives: Sequence[str] = ("mlm",),
    outlier_exposure: Optional[Dict[str, Any]] = None,
    replaced_tokens: bool = False,
) -> Dict[str, Any]:
    # ours, ours_oe, then per checkpoint (objective) "ours @pretrained"..., then the anchors
    seen = dict.fromkeys(f for r in runs for f in r["families"])
    families = [f for f in OURS if f in seen]
    families += [f for f in seen if f.split(" @")[0] in OURS and f not in OURS]
    families += list(ANCHOR_GRIDS)
    columns = [
        "task",
        "family",
        "splits",
        "test ROC AUC (mean)",
        "range",
        "AP (mean)",
        "|Spearman| (mean)",
        "chosen on validation",
    ]
    rows, summary = [], []
    for task in tasks:
        task_runs = [r for r in runs if r["task"] == task]
        best_anchor = None
        for family in families:
            tests = [r["families"][family]["test"] for r in task_runs if family in r["families"]]
            if not tests:
                continue
            auc, span = _mean_range([m["roc_auc"] for m in tests])
            ap, _ = _mean_range([m["average_precision"] for m in tests])
            rho, _ = _mean_range([m["abs_spearman_words"] for m in tests])
            chosen = sorted({r["families"][family]["chosen"] for r in task_runs})
            rows.append(
                {
                    "task": task,
                    "family": family,
                    "splits": len(tests),
                    "test ROC AUC (mean)": auc,
                    "range": span,
                    "AP (mean)": ap,
                    "|Spearman| (mean)": rho,
                    "chosen on validation": "; ".join(chosen),
                }
            )
            if (
                family.split(" @")[0] not in OURS
                and auc is not None
                and (best_anchor is None or auc > best_anchor[1])
            ):
                best_anchor = (family, auc, span, [m["roc_auc"] for m in tests])
        for family, label in OURS.items():
            ours = next((r for r in rows if r["task"] == task and r["family"] == family), None)
            if not best_anchor or ours is None or ours["test ROC AUC (mean)"] is None:
                continue
            mine = [r["families"][family]["test"]["roc_auc"] for r in task_runs]
            # above / below only when the ranges over the splits do not overlap
            verdict = (
                "above"
                if min(mine) > max(best_anchor[3])
                else "below"
                if max(mine) < min(best_anchor[3])
                else "level with"
            )
            summary.append(
                {
                    "claim": f"one-class {task}: {label} {verdict} the best anchor"
                    + (" (ranges overlap)" if verdict == "level with" else ""),
                    "figure": f"ROC AUC {ours['test ROC AUC (mean)']:.3f}",
                    "range": ours["range"],
                    "baseline": f"{best_anchor[0]} {best_anchor[1]:.3f} ({best_anchor[2]})",
                    "split": f"design chosen on validation, reported on test, {len(task_runs)} random splits",
                    "caveat": "small 4 x 128 encoder, random-init"
                    + (
                        f" or pretrained ({'/'.join(objectives)}) {pretrain_steps} x {pretrain_batch_tokens} pieces (chosen on validation)"
                        if pretrain_steps
                        else ""
                    ),
                }
            )
    ckpt = (
        f"given checkpoint {checkpoint}"
        if checkpoint is not None
        else "small 4 x 128 random-init, BPE 8k trained on each task's normal training docs only; also after pretrain "
        f"{pretrain_steps} steps x {pretrain_batch_tokens} pieces on the same docs, objective "
        + " / ".join(f"{o} ({OBJECTIVE_CHECKPOINTS[o]})" for o in objectives)
    )
    return record(
        "one_class",
        command_line("python -m benchmarks one-class"),
        {
            "chooses": "validation split (20% SMS / half of the CoNLL valid docs + disjoint SMS / "
            "half of the CLINC150 val + out-of-scope utterances)",
            "reports": "test split (the other 20% / half), touched once per family and split",
            "checkpoint": ckpt,
            "seeds": splits,
        },
        columns,
        rows,
        summary,
        machine=machine_info("cpu"),
        settings={
            "tasks": list(tasks),
            "splits": splits,
            "pretrain_steps": pretrain_steps,
            "pretrain_batch_tokens": pretrain_batch_tokens,
            "objectives": list(objectives),
            "outlier_exposure": outlier_exposure,
            "replaced_tokens": replaced_tokens,
            "grids": {
                "ours": [c["name"] for c in OURS_GRID + (RTD_GRID if replaced_tokens else [])],
                **({"ours_oe": [c["name"] for c in OURS_GRID]} if outlier_exposure else {}),
                **{f: ANCHOR_GRIDS[f].describe() for f in ANCHOR_GRIDS},
            },
        },
        runs=runs,
    )


_D = defaults(run_one_class)


@app.command("one-class")
def one_class_cli(
    # fmt: off
    checkpoint: Checkpoint = _D["checkpoint"],
    cache_dir: CacheDir = _D["cache_dir"],
    data_dir: DataDir = _D["data_dir"],
    output: Output = _D["output"],
    threads: Threads = _D["threads"],
    tasks: str = typer.Option(
        _D["tasks"],
        "--tasks",
        help="Comma-separated: sms, news-vs-sms1, news-vs-sms3, news-mixed, clinc-oos",
    ),
    splits: int = typer.Option(
        _D["splits"], "--splits", help="Random splits (seeds 0..N-1); mean and range reported"
    ),
    news_eval: int = typer.Option(
        _D["news_eval"],
        "--news-eval",
        help="Normal (and anomalous) docs per validation and per test set of the news tasks "
        "(normal docs of clinc-oos)",
    ),
    clinc_train: int = typer.Option(
        _D["clinc_train"], "--clinc-train", help="In-scope CLINC150 training utterances (clinc-oos)"
    ),
    pretrain_steps: int = typer.Option(
        _D["pretrain_steps"],
        "--pretrain-steps",
        help="`pretrain` steps of the second checkpoint per training set (0: random-init only)",
    ),
    pretrain_batch_tokens: int = typer.Option(
        _D["pretrain_batch_tokens"], "--pretrain-batch-tokens", help="Pieces per pretrain step"
    ),
    objectives: str = typer.Option(
        _D["objectives"],
        "--objectives",
        help="Comma-separated pretrain objectives, one pretrained checkpoint each: mlm "
        "(named 'pretrained'), mlm+contrastive ('contrastive'), rtd ('rtd-pretrained'), "
        "mlm+rtd ('mlm-rtd')",
    ),
    outlier_exposure: Optional[Path] = typer.Option(
        _D["outlier_exposure"],
        "--outlier-exposure",
        help="A file of out-of-domain texts, one per line (e.g. clinc150/wiki_sents.txt): adds "
        "the family ours_oe, ours with the component's outlier_exposure setting; never the "
        "tasks' anomaly source",
    ),
    outlier_exposure_n: int = typer.Option(
        _D["outlier_exposure_n"],
        "--outlier-exposure-n",
        help="Outlier-exposure texts read (a seeded sample)",
    ),
    replaced_tokens: bool = typer.Option(
        _D["replaced_tokens"],
        "--replaced-tokens",
        help="Add the replaced_tokens detector (a head fitted on corrupted copies of the "
        "normal training docs) to ours' grid, and its own row",
    ),
    # fmt: on
) -> None:
    """One-class anomaly detection, clean protocol: design chosen on validation, reported on test, ours vs anchors."""
    run_one_class(
        checkpoint=checkpoint,
        cache_dir=cache_dir,
        data_dir=data_dir,
        output=output,
        threads=threads,
        tasks=tasks,
        splits=splits,
        news_eval=news_eval,
        pretrain_steps=pretrain_steps,
        pretrain_batch_tokens=pretrain_batch_tokens,
        objectives=objectives,
        clinc_train=clinc_train,
        outlier_exposure=outlier_exposure,
        outlier_exposure_n=outlier_exposure_n,
        replaced_tokens=replaced_tokens,
    )
