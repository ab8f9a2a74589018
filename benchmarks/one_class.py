"""`python -m benchmarks one-class`: one-class anomaly detection (no anomaly labels) vs TF-IDF kNN.

Every detector of `anomaly_scorer` (mode = "one_class": doc_and_token_knn, knn, token_knn,
mahalanobis, svdd) and the TF-IDF kNN anchors run in the same process on the same splits:

* sms: the SMS Spam Collection, all rows shuffled with `random.Random(0)`; the first 80% is
  the training split, of which only the ham is kept (3,861 messages); the last 20% is the
  test set (1,110 messages, 147 spam = anomalous).
* news-vs-sms1 / news-vs-sms3: normal = CoNLL-2003 documents of 3 consecutive sentences;
  trained on CoNLL train only; tested on `--news-test` CoNLL validation documents (normal)
  against as many SMS messages (anomalous), single (sms1) or three per document (sms3).
  The SMS messages are all rows shuffled with `random.Random(0)`.

Ours: transformer (our architecture) + anomaly_scorer in one_class mode, `nlp.initialize`
on the normal training docs (this fits the embedding detectors, and the Deep-SVDD center and
statistics for svdd; no training steps: the embedding detectors give no gradient, and svdd
is measured as initialized). Anchors: TF-IDF (scikit-learn, word 1-grams or char_wb 3-5-grams)
+ mean cosine distance to the k nearest training docs, k in {5, 10, 20} (the best anchor of
that sweep on each test set is what ours must beat). Reported: ROC AUC, average precision,
and |Spearman(score, word count)| among the normal test docs (length dependence).

No pretrained weights exist offline: every system starts from the same random-init
checkpoint family (`--checkpoint`, default a cached small random one);
`--pretrained-checkpoint` adds the same runs on a checkpoint continued by
`python -m spacy_modernbert pretrain` on the normal text (self-supervised, no labels).
"""
import random
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import typer

from spacy_modernbert.anomaly.detectors import DEFAULT_DETECTOR, DETECTORS, detector_config  # no torch import

from . import data as bdata
from ._app import app, defaults
from .report import log, machine_info, table, write_json

LABEL = "ANOMALY"
ANCHOR_KS = (5, 10, 20)
ANCHOR_VECTORIZERS = {
    "tfidf_word1": dict(ngram_range=(1, 1)),
    "tfidf_char_wb3-5": dict(analyzer="char_wb", ngram_range=(3, 5)),
}

Task = Tuple[str, List[str], List[str], List[int]]  # name, normal train texts, test texts, gold


def sms_task(data_dir: Path) -> Task:
    rows = bdata.read_sms(Path(data_dir) / bdata.SMS)
    random.Random(0).shuffle(rows)
    n_train = int(0.8 * len(rows))
    train = [text for label, text in rows[:n_train] if label == 0]
    test = rows[n_train:]
    return "sms", train, [t for _, t in test], [y for y, _ in test]


def conll_docs(path: Path, per_doc: int = 3) -> List[str]:
    sents = [" ".join(words) for words, _ in bdata.read_conll(path)]
    return [" ".join(sents[i:i + per_doc]) for i in range(0, len(sents) - per_doc + 1, per_doc)]


def news_tasks(data_dir: Path, n_test: int) -> List[Task]:
    data_dir = Path(data_dir)
    train = conll_docs(data_dir / bdata.CONLL_TRAIN)
    normal = conll_docs(data_dir / bdata.CONLL_VALID)[:n_test]
    sms = [text for _, text in bdata.read_sms(data_dir / bdata.SMS)]
    random.Random(0).shuffle(sms)
    single = sms[:n_test]
    grouped = [" ".join(sms[n_test + 3 * i: n_test + 3 * i + 3]) for i in range(n_test)]
    gold = [0] * len(normal) + [1] * n_test
    return [("news-vs-sms1", train, normal + single, gold), ("news-vs-sms3", train, normal + grouped, gold)]


def export_training_texts(data_dir: Path, out_dir: Path) -> Dict[str, Any]:
    """The normal training texts of the tasks, one document per line (input for `pretrain`)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, texts in (("sms_ham_train.txt", sms_task(data_dir)[1]), ("news_train.txt", conll_docs(data_dir / bdata.CONLL_TRAIN))):
        path = out_dir / name
        path.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf8")
        written[name] = len(texts)
        log(f"wrote {path} ({len(texts)} documents)")
    return written


def tfidf_knn_scores(train: Sequence[str], test: Sequence[str], ks: Sequence[int], **vectorizer) -> Dict[int, numpy.ndarray]:
    """Mean cosine distance of each test doc to its k nearest training docs (TF-IDF), per k."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(**vectorizer).fit(train)
    A, B = vec.transform(train), vec.transform(test)
    out: Dict[int, List[numpy.ndarray]] = {k: [] for k in ks}
    for start in range(0, B.shape[0], 512):
        sims = (B[start:start + 512] @ A.T).toarray()
        top = -numpy.sort(-sims, axis=1)[:, :max(ks)]
        for k in ks:
            out[k].append(1.0 - top[:, :k].mean(axis=1))
    return {k: numpy.concatenate(v) for k, v in out.items()}


def metrics(gold: Sequence[int], scores: Sequence[float], words: Sequence[int]) -> Dict[str, Any]:
    from scipy.stats import spearmanr

    from spacy_modernbert.anomaly.curves import average_precision, roc_auc

    gold_a, scores_a, words_a = numpy.asarray(gold), numpy.asarray(scores, dtype="float64"), numpy.asarray(words)
    normal = gold_a == 0
    rho = spearmanr(scores_a[normal], words_a[normal]).correlation
    return {
        "roc_auc": roc_auc(gold_a, scores_a),
        "average_precision": average_precision(gold_a, scores_a),
        "spearman_words_normal": None if numpy.isnan(rho) else float(rho),
        "finite_in_unit_interval": bool(numpy.isfinite(scores_a).all() and (scores_a >= 0).all() and (scores_a <= 1).all()),
    }


def one_class_pipeline(checkpoint: Path, detector: str, n_neighbors: int, memory_bank_size: int,
                       token_neighbors: int = 3, token_bank_size: int = 20000):
    import spacy

    import spacy_modernbert  # noqa: F401

    from .systems import listener, ours_transformer

    nlp = spacy.blank("en")
    nlp.add_pipe("transformer", config=ours_transformer(checkpoint))
    nlp.add_pipe("anomaly_scorer", config={
        "mode": "one_class", "detector": detector_config(
            detector, n_neighbors=n_neighbors, memory_bank_size=memory_bank_size,
            token_neighbors=token_neighbors, token_bank_size=token_bank_size),
        "model": {"@architectures": "spacy-modernbert.AnomalyHead.v1", "tok2vec": listener()},
    })
    return nlp


def fit_ours(checkpoint: Path, detector: str, train: List[str], n_neighbors: int, memory_bank_size: int,
             seed: int, token_neighbors: int = 3, token_bank_size: int = 20000) -> Tuple[Any, float]:
    """The one-class pipeline initialized on the (unlabelled = normal) training texts; its fit time."""
    import spacy
    from spacy.training import Example

    spacy.util.fix_random_seed(seed)
    nlp = one_class_pipeline(checkpoint, detector, n_neighbors, memory_bank_size, token_neighbors, token_bank_size)
    examples = [Example(nlp.make_doc(text), nlp.make_doc(text)) for text in train]
    t0 = time.perf_counter()
    nlp.initialize(lambda: examples)
    return nlp, time.perf_counter() - t0


def run_one_class(
    checkpoint: Optional[Path] = None,
    pretrained_checkpoint: Optional[Path] = None,
    cache_dir: Path = Path(".benchmark_cache"),
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    output: Optional[Path] = Path("benchmarks/results/one_class.json"),
    threads: int = 1,
    tasks: str = "sms,news-vs-sms1,news-vs-sms3",
    news_test: int = 500,
    detectors: str = ",".join(DETECTORS),
    n_neighbors: int = 10,
    memory_bank_size: int = 10000,
    token_neighbors: int = 3,
    token_bank_size: int = 20000,
    seed: int = 0,
    export_train_text: Optional[Path] = None,
) -> Dict[str, Any]:
    """Run every detector and the TF-IDF kNN anchors on the one-class tasks; print and return the results.

    export_train_text: only write the normal training texts (`sms_ham_train.txt`,
    `news_train.txt`, one document per line) to this directory, e.g. for `pretrain`, and stop.
    """
    if export_train_text is not None:
        return export_training_texts(Path(data_dir), Path(export_train_text))
    import torch

    torch.set_num_threads(threads)
    data_dir = Path(data_dir)
    if not (data_dir / bdata.SMS).exists():
        raise SystemExit(f"SMS Spam Collection not found under {data_dir}: pass --data-dir")
    if checkpoint is None:
        checkpoint = bdata.ensure_checkpoint(Path(cache_dir) / "modernbert-small-random", "small", data_dir, log=log)
    checkpoints = {"random-init": Path(checkpoint)}
    if pretrained_checkpoint is not None:
        checkpoints["pretrained"] = Path(pretrained_checkpoint)
    wanted = [t.strip() for t in tasks.split(",") if t.strip()]
    all_tasks = [sms_task(data_dir)] if "sms" in wanted else []
    if any(t.startswith("news") for t in wanted):
        all_tasks += [t for t in news_tasks(data_dir, news_test) if t[0] in wanted]
    results: Dict[str, Any] = {
        "machine": machine_info("cpu"),
        "checkpoints": {name: str(path) for name, path in checkpoints.items()},
        "weights": "random init (no pretrained weights offline), the same checkpoint family for every system",
        "settings": {"n_neighbors": n_neighbors, "memory_bank_size": memory_bank_size, "token_neighbors": token_neighbors,
                     "token_bank_size": token_bank_size, "news_test": news_test, "seed": seed},
        "tasks": {},
    }
    fitted: Dict[Tuple[str, str, int], Tuple[Any, float]] = {}
    for name, train, test, gold in all_tasks:
        log(f"== {name}: {len(train)} normal training docs, {len(test)} test docs ({sum(gold)} anomalous)")
        words = [bdata.n_words(t) for t in test]
        systems: Dict[str, Any] = {}
        for anchor, vectorizer in ANCHOR_VECTORIZERS.items():
            for k, scores in tfidf_knn_scores(train, test, ANCHOR_KS, **vectorizer).items():
                systems[f"{anchor}_knn{k}"] = metrics(gold, scores, words)
        for ckpt_name, ckpt in checkpoints.items():
            for detector in [d.strip() for d in detectors.split(",") if d.strip()]:
                key = (ckpt_name, detector, id(train))  # the news tasks share one training set
                if key not in fitted:
                    log(f"  fitting ours {detector} ({ckpt_name})")
                    fitted[key] = fit_ours(ckpt, detector, train, n_neighbors, memory_bank_size, seed, token_neighbors, token_bank_size)
                nlp, fit_seconds = fitted[key]
                t0 = time.perf_counter()
                scores = [doc._.anomaly_score for doc in nlp.pipe(test, batch_size=64)]
                score_seconds = time.perf_counter() - t0  # encoder + detector over the test docs
                systems[f"ours_{detector}_{ckpt_name}"] = {**metrics(gold, scores, words), "fit_seconds": fit_seconds,
                                                           "score_seconds": score_seconds}
        best_anchor = max((v["roc_auc"] or 0.0, k) for k, v in systems.items() if k.startswith("tfidf"))
        results["tasks"][name] = {"n_train": len(train), "n_test": len(test), "n_anomalous": int(sum(gold)),
                                  "best_anchor": best_anchor[1], "systems": systems}
        def cell(value: Optional[float]) -> str:
            return "-" if value is None else f"{value:.3f}"

        rows = [(system, cell(v["roc_auc"]), cell(v["average_precision"]),
                 "-" if v["spearman_words_normal"] is None else f"{abs(v['spearman_words_normal']):.2f}",
                 f"{v['score_seconds']:.1f}" if "score_seconds" in v else "-")
                for system, v in systems.items()]
        print(f"\n{name} ({len(train)} normal training docs; test {len(test)}, {sum(gold)} anomalous)")
        print(table(["system", "ROC AUC", "AP", "|Spearman(score, words)| normal", "score s (test docs)"], rows))
        default = systems.get(f"ours_{DEFAULT_DETECTOR}_random-init")
        if default is not None:
            anchor_auc = systems[best_anchor[1]]["roc_auc"]
            rho = default["spearman_words_normal"]
            holds = (default["roc_auc"] or 0.0) >= anchor_auc and rho is not None and abs(rho) <= 0.3
            results["tasks"][name]["goal"] = {"default": DEFAULT_DETECTOR, "roc_auc": default["roc_auc"],
                                              "best_anchor_roc_auc": anchor_auc, "holds": holds}
            print(f"goal ({name}): default detector {DEFAULT_DETECTOR} (random-init) ROC AUC {cell(default['roc_auc'])} "
                  f"vs best anchor {best_anchor[1]} {cell(anchor_auc)}, |Spearman| "
                  f"{'-' if rho is None else f'{abs(rho):.2f}'} (<= 0.3): {'holds' if holds else 'does NOT hold'}")
    write_json(output, results)
    return results


_D = defaults(run_one_class)


@app.command("one-class")
def one_class_cli(
    # fmt: off
    checkpoint: Optional[Path] = typer.Option(_D["checkpoint"], "--checkpoint", help="Random-init ModernBERT checkpoint (default: a small random one, created in --cache-dir)"),
    pretrained_checkpoint: Optional[Path] = typer.Option(_D["pretrained_checkpoint"], "--pretrained-checkpoint", help="The same checkpoint continued by `python -m spacy_modernbert pretrain` on normal text (adds its runs)"),
    cache_dir: Path = typer.Option(_D["cache_dir"], "--cache-dir", help="Where the generated checkpoint is cached"),
    data_dir: Path = typer.Option(_D["data_dir"], "--data-dir", help="Directory with conll2003/ and sms_spam/ (default: ../shared/data beside the checkout)"),
    output: Path = typer.Option(_D["output"], "--output", "-o", help="JSON results"),
    threads: int = typer.Option(_D["threads"], "--threads", help="torch.set_num_threads"),
    tasks: str = typer.Option(_D["tasks"], "--tasks", help="Comma-separated: sms, news-vs-sms1, news-vs-sms3"),
    news_test: int = typer.Option(_D["news_test"], "--news-test", help="Normal and anomalous test docs per news task"),
    detectors: str = typer.Option(_D["detectors"], "--detectors", help="Comma-separated anomaly_scorer detectors"),
    n_neighbors: int = typer.Option(_D["n_neighbors"], "--n-neighbors", help="anomaly_scorer n_neighbors (knn)"),
    memory_bank_size: int = typer.Option(_D["memory_bank_size"], "--memory-bank-size", help="anomaly_scorer memory_bank_size"),
    token_neighbors: int = typer.Option(_D["token_neighbors"], "--token-neighbors", help="anomaly_scorer token_neighbors (token_knn)"),
    token_bank_size: int = typer.Option(_D["token_bank_size"], "--token-bank-size", help="anomaly_scorer token_bank_size (token_knn)"),
    seed: int = typer.Option(_D["seed"], "--seed"),
    export_train_text: Optional[Path] = typer.Option(_D["export_train_text"], "--export-train-text", help="Only write the normal training texts (one doc per line) to this directory, for `pretrain`"),
    # fmt: on
) -> None:
    """One-class anomaly detection: every anomaly_scorer detector vs TF-IDF kNN (SMS, news vs SMS)."""
    run_one_class(checkpoint=checkpoint, pretrained_checkpoint=pretrained_checkpoint, cache_dir=cache_dir,
                  data_dir=data_dir, output=output, threads=threads, tasks=tasks, news_test=news_test,
                  detectors=detectors, n_neighbors=n_neighbors, memory_bank_size=memory_bank_size,
                  token_neighbors=token_neighbors, token_bank_size=token_bank_size, seed=seed,
                  export_train_text=export_train_text)
