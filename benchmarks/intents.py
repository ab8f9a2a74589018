"""`python -m benchmarks intents`: in-scope accuracy and out-of-scope detection on CLINC150.

Three systems on the same data, each from the same random-init checkpoint (no pretrained
weights exist offline; its tokenizer is trained on the training text only):

* ours: `configs/intents_cpu.cfg` (transformer + exclusive textcat + anomaly_scorer with
  IntentConfidenceDetector.v1), trained as `spacy train` trains it; out-of-scope scores:
  max_prob and energy (temperatures below), read from the textcat's doc.cats;
* hf: `ModernBertForSequenceClassification` in a plain PyTorch loop (AdamW, linear warmup
  and decay, grad clip 1.0); out-of-scope scores: max-softmax and Mahalanobis (class means,
  one tied Ledoit-Wolf covariance of the classifier head's features, Lee et al. 2018);
* tfidf: TF-IDF of character n-grams + logistic regression (scikit-learn); max-probability.

Data: per seed, `--per-intent` training docs per intent from CLINC150 train (and the same
fraction of its out-of-scope docs), after `--carve-dev` docs per intent (and `--carve-oos`
out-of-scope docs) were carved from train into dev. Both neural systems see the out-of-scope
training docs with a flat target (ours: the all-zero textcat target; hf: cross-entropy to
the uniform distribution), tfidf does not (logistic regression has no such target).
Chooses on dev (the learning rate on seed 0 by in-scope accuracy; each system's out-of-scope
score by dev AUROC; the threshold by best F1 on dev); reports on val (3,000 in-scope + 100
out-of-scope), which chose nothing.
"""

import math
import random
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy

from . import data as bdata
from ._app import CacheDir, DataDir, Output, Threads, app, defaults
from .accuracy import WARMUP_FRACTION, ScheduledAdamW, spacy_optimizer
from .report import log, write_json
from .results import command_line, record

CLINC = Path("clinc150") / "clinc150_train_val.json"
LABEL = "ANOMALY"
RATES = (5e-4, 1e-3, 2e-3)
ENERGY_TEMPERATURES = (0.25, 0.5, 1.0, 2.0)
TFIDF_C = (1.0, 10.0, 100.0)
Item = Tuple[str, Optional[str]]


# ------------------------------------------------------------------------------------ data


def load_splits(
    data_dir: Path, carve_dev: int, carve_oos: int, per_intent: int, seed: int
) -> Dict[str, List[Item]]:
    """train (per_intent per intent), dev (carved from train), val (untouched)."""
    from spacy_modernbert.data.from_clinc import per_intent as take
    from spacy_modernbert.data.from_clinc import read_clinc

    splits = read_clinc(data_dir / CLINC)
    dev, rest = take(splits["train"], carve_dev, 0, out_of_scope=carve_oos)  # fixed dev
    train, _ = take(rest, per_intent, seed + 1)
    # read_clinc names CLINC150's val split "dev"; here it is the report split, val
    return {"train": train, "dev": dev, "val": splits["dev"], "pool": rest}


def intents_of(items: Sequence[Item]) -> List[str]:
    return sorted({i for _, i in items if i})


def checkpoint_for(cache_dir: Path, texts: Sequence[str], hidden: int, layers: int) -> Path:
    """The random-init checkpoint every system starts from (tokenizer: the training text)."""
    from spacy_modernbert.tiny import create_tiny_checkpoint

    out = cache_dir / f"intents-modernbert-{layers}x{hidden}"
    if (out / "config.json").exists():
        return out
    cache_dir.mkdir(parents=True, exist_ok=True)
    text_file = cache_dir / "intents-train-text.txt"
    text_file.write_text("\n".join(texts) + "\n", encoding="utf8")
    return create_tiny_checkpoint(
        out,
        [text_file],
        vocab_size=4096,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 3 // 2,
        local_attention=16,
    )


# --------------------------------------------------------------------------- metrics


def best_f1_threshold(gold: Sequence[int], scores: Sequence[float]) -> float:
    from spacy_modernbert.anomaly.calibration import best_f1_threshold as best

    return float(best(gold, scores).threshold)


def report(
    gold_intents: Sequence[Optional[str]],
    predicted: Sequence[str],
    scores: Dict[str, Tuple[Sequence[float], Sequence[float]]],
    dev_gold: Sequence[Optional[str]],
) -> Dict[str, Any]:
    """Val figures: in-scope accuracy; for the out-of-scope score that won on dev (AUROC), its
    val AUROC, AUPR and P/R/F1 at the best-F1 threshold of dev. `scores`: name -> (dev, val)."""
    from spacy_modernbert.anomaly.curves import average_precision, prf_at_threshold, roc_auc

    in_scope = [(g, p) for g, p in zip(gold_intents, predicted) if g is not None]
    acc = sum(g == p for g, p in in_scope) / len(in_scope)
    dev_y = [int(g is None) for g in dev_gold]
    val_y = [int(g is None) for g in gold_intents]
    dev_auc = {name: roc_auc(dev_y, dev) for name, (dev, _) in scores.items()}
    chosen = max(dev_auc, key=lambda k: dev_auc[k])
    dev_scores, val_scores = scores[chosen]
    threshold = best_f1_threshold(dev_y, dev_scores)
    p, r, f = prf_at_threshold(val_y, val_scores, threshold)
    return {
        "intent_acc": acc,
        "oos_score": chosen,
        "dev_auroc": dev_auc,
        "val_auroc_all": {name: roc_auc(val_y, val) for name, (_, val) in scores.items()},
        "oos_auroc": roc_auc(val_y, val_scores),
        "oos_aupr": average_precision(val_y, val_scores),
        "oos_precision": p,
        "oos_recall": r,
        "oos_f1": f,
    }


def confidence_scores(P: numpy.ndarray) -> Dict[str, numpy.ndarray]:
    """max_prob and energy over log-probabilities (IntentConfidenceDetector.v1's raw scores)."""
    from spacy_modernbert.anomaly.intent_confidence import IntentConfidenceDetector

    out = {}
    P = -numpy.sort(-P, axis=1)
    state = {"mean_probs": P.mean(axis=0), "temperature": numpy.asarray(1.0)}
    out["max_prob"] = IntentConfidenceDetector("max_prob").raw_scores(state, P)
    for t in ENERGY_TEMPERATURES:
        state["temperature"] = numpy.asarray(t)
        out[f"energy_T{t:g}"] = IntentConfidenceDetector("energy", t).raw_scores(state, P)
    return out


def paired(dev: Dict[str, Any], val: Dict[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    return {k: (list(map(float, dev[k])), list(map(float, val[k]))) for k in dev}


# ------------------------------------------------------------------------------- ours


def _words(items: Sequence[Item]) -> int:
    return sum(len(t.split()) for t, _ in items)


def train_ours(
    checkpoint: Path,
    splits: Dict[str, List[Item]],
    intents: List[str],
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    evaluate: Sequence[str] = ("dev", "val"),
) -> Dict[str, Any]:
    import spacy
    import srsly
    from spacy.training import Example

    from .systems import spacy_train_update

    root = Path(__file__).resolve().parents[1]
    spacy.util.fix_random_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        labels = Path(tmp) / "intents.json"
        srsly.write_json(labels, intents)
        config = spacy.util.load_config(
            root / "configs" / "intents_cpu.cfg",
            overrides={"paths.base_model": str(checkpoint), "paths.intents": str(labels)},
            interpolate=False,
        )
        nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
        examples = []
        for text, intent in splits["train"]:
            cats = {LABEL: 1.0} if intent is None else {intent: 1.0, LABEL: 0.0}
            examples.append(Example.from_dict(nlp.make_doc(text), {"cats": cats}))
        total = epochs * math.ceil(len(examples) / batch_size)
        optimizer = spacy_optimizer(lr, total)
        nlp.initialize(lambda: examples, sgd=optimizer)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        losses: Dict[str, float] = {}
        order = list(examples)
        rng.shuffle(order)
        for start in range(0, len(order), batch_size):
            spacy_train_update(nlp, order[start : start + batch_size], optimizer, losses=losses)
            optimizer.step_schedules()
        log(f"  ours epoch {epoch + 1}/{epochs}: textcat loss {losses.get('textcat', 0):.3f}")
    seconds = time.perf_counter() - t0
    out: Dict[str, Any] = {
        "train_seconds": seconds,
        "train_words": epochs * _words(splits["train"]),
    }
    for name in evaluate:
        docs = list(nlp.pipe((t for t, _ in splits[name]), batch_size=256))
        P = numpy.asarray([[doc.cats[i] for i in intents] for doc in docs])
        out[name] = {
            "predicted": [intents[j] for j in P.argmax(axis=1)],
            "scores": {
                **confidence_scores(P),
                "component": numpy.asarray([doc._.anomaly_score for doc in docs]),
            },
        }
    return out


# --------------------------------------------------------------------------------- hf


def train_hf(
    checkpoint: Path,
    splits: Dict[str, List[Item]],
    intents: List[str],
    lr: float,
    epochs: int,
    batch_size: int,
    seed: int,
    evaluate: Sequence[str] = ("dev", "val"),
) -> Dict[str, Any]:
    import torch
    from sklearn.covariance import LedoitWolf
    from transformers import AutoTokenizer, ModernBertForSequenceClassification

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), use_fast=True)
    model = ModernBertForSequenceClassification.from_pretrained(
        str(checkpoint),
        num_labels=len(intents),
        attn_implementation="sdpa",
        reference_compile=False,
    )
    index = {name: i for i, name in enumerate(intents)}

    def encode(texts: Sequence[str]):
        enc = tokenizer(
            [" " + t for t in texts],
            padding=True,
            truncation=True,
            max_length=128,
            return_tensors="pt",
        )
        return enc["input_ids"], enc["attention_mask"]

    train = splits["train"]
    total = epochs * math.ceil(len(train) / batch_size)
    optimizer = ScheduledAdamW(model, lr, total, warmup=WARMUP_FRACTION)
    rng = random.Random(seed)
    model.train()
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = list(train)
        rng.shuffle(order)
        running = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids, mask = encode([t for t, _ in batch])
            logp = model(input_ids=ids, attention_mask=mask).logits.log_softmax(-1)
            terms = [
                -logp[k].mean() if intent is None else -logp[k, index[intent]]
                for k, (_, intent) in enumerate(batch)
            ]  # out-of-scope: cross-entropy to the uniform distribution (outlier exposure)
            loss = torch.stack(terms).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            running += loss.item()
        log(f"  hf epoch {epoch + 1}/{epochs}: loss {running:.1f}")
    seconds = time.perf_counter() - t0
    model.eval()

    def features_and_probs(texts: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray]:
        feats, probs = [], []
        with torch.inference_mode():
            for start in range(0, len(texts), 256):
                ids, mask = encode(texts[start : start + 256])
                hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
                if model.config.classifier_pooling == "mean":
                    m = mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * m).sum(1) / m.sum(1)
                else:
                    pooled = hidden[:, 0]
                head = model.head(pooled)
                feats.append(head.float().numpy())
                probs.append(model.classifier(head).softmax(-1).float().numpy())
        return numpy.concatenate(feats), numpy.concatenate(probs)

    in_scope = [(t, i) for t, i in train if i is not None]
    F, _ = features_and_probs([t for t, _ in in_scope])
    y = numpy.asarray([index[i] for _, i in in_scope])
    means = numpy.stack([F[y == c].mean(axis=0) for c in range(len(intents))])
    precision = LedoitWolf().fit(F - means[y]).precision_

    def mahalanobis(X: numpy.ndarray) -> numpy.ndarray:
        best = numpy.full(len(X), numpy.inf)
        for mu in means:
            D = X - mu
            best = numpy.minimum(best, numpy.einsum("ij,jk,ik->i", D, precision, D))
        return best

    out: Dict[str, Any] = {"train_seconds": seconds, "train_words": epochs * _words(train)}
    for name in evaluate:
        X, P = features_and_probs([t for t, _ in splits[name]])
        out[name] = {
            "predicted": [intents[j] for j in P.argmax(axis=1)],
            "scores": {"max_softmax": -P.max(axis=1), "mahalanobis": mahalanobis(X)},
        }
    return out


# ------------------------------------------------------------------------------ tfidf


def tfidf_logreg(
    splits: Dict[str, List[Item]], intents: List[str], C: float, evaluate=("dev", "val")
) -> Dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    train = [(t, i) for t, i in splits["train"] if i is not None]
    t0 = time.perf_counter()
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=1)
    X = vec.fit_transform([t for t, _ in train])
    clf = LogisticRegression(C=C, max_iter=2000).fit(X, [i for _, i in train])
    out: Dict[str, Any] = {"train_seconds": time.perf_counter() - t0}
    for name in evaluate:
        P = clf.predict_proba(vec.transform([t for t, _ in splits[name]]))
        out[name] = {
            "predicted": [clf.classes_[j] for j in P.argmax(axis=1)],
            "scores": {"max_prob": -P.max(axis=1)},
        }
    return out


# ------------------------------------------------------------------------------- main


def _dev_acc(run: Dict[str, Any], dev: Sequence[Item]) -> float:
    pairs = [(i, p) for (_, i), p in zip(dev, run["dev"]["predicted"]) if i is not None]
    return sum(i == p for i, p in pairs) / len(pairs)


def _sweep(name: str, values: Sequence[float], train: Callable[[float], Dict[str, Any]], dev):
    points = []
    for value in values:
        log(f"{name}: sweep {value:g}")
        run = train(value)
        points.append((_dev_acc(run, dev), value, run))
        log(f"  dev in-scope accuracy {points[-1][0]:.4f}")
    best = max(points, key=lambda p: p[0])
    return best[1], best[2], [{"value": v, "dev_intent_acc": a} for a, v, _ in points]


def _summary(values: Sequence[float]) -> Dict[str, float]:
    arr = numpy.asarray(values, dtype="float64")
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std()),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def run_intents(
    data_dir: Path = bdata.DEFAULT_DATA_DIR,
    cache_dir: Path = Path(".cache/benchmarks"),
    output: Optional[Path] = None,
    per_intent: int = 20,
    carve_dev: int = 5,
    carve_oos: int = 30,
    seeds: int = 3,
    epochs: int = 8,
    batch_size: int = 32,
    hidden: int = 128,
    layers: int = 4,
    rates: Sequence[float] = RATES,
    threads: int = 1,
) -> Dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    base = load_splits(data_dir, carve_dev, carve_oos, per_intent, 0)
    intents = intents_of(base["train"])
    checkpoint = checkpoint_for(cache_dir, [t for t, _ in base["pool"]], hidden, layers)
    chosen: Dict[str, Any] = {}
    sweeps: Dict[str, Any] = {}
    runs: Dict[str, List[Dict[str, Any]]] = {"ours": [], "hf": [], "tfidf": []}
    for seed in range(seeds):
        splits = (
            base if seed == 0 else load_splits(data_dir, carve_dev, carve_oos, per_intent, seed)
        )
        dev = splits["dev"]
        systems = {
            "ours": partial(
                train_ours,
                checkpoint,
                splits,
                intents,
                epochs=epochs,
                batch_size=batch_size,
                seed=seed,
            ),
            "hf": partial(
                train_hf,
                checkpoint,
                splits,
                intents,
                epochs=epochs,
                batch_size=batch_size,
                seed=seed,
            ),
            "tfidf": partial(tfidf_logreg, splits, intents),
        }
        for name, train in systems.items():
            if seed == 0:
                values = TFIDF_C if name == "tfidf" else rates
                chosen[name], run, sweeps[name] = _sweep(name, values, train, dev)
            else:
                log(f"{name}: seed {seed}, {chosen[name]:g}")
                run = train(chosen[name])
            scores = paired(run["dev"]["scores"], run["val"]["scores"])
            figures = report(
                [i for _, i in splits["val"]],
                run["val"]["predicted"],
                scores,
                [i for _, i in dev],
            )
            figures.update({k: run[k] for k in ("train_seconds", "train_words") if k in run})
            log(
                f"  {name} seed {seed}: acc {figures['intent_acc']:.4f}, oos AUROC {figures['oos_auroc']:.4f} "
                f"({figures['oos_score']}), recall {figures['oos_recall']:.3f}"
            )
            runs[name].append(figures)
    rows = []
    labels = {
        "ours": "ours (transformer + textcat + anomaly_scorer)",
        "hf": "HF ModernBertForSequenceClassification",
        "tfidf": "TF-IDF (char 2-5) + logistic regression",
    }
    for name, figures in runs.items():
        picks = sorted({f["oos_score"] for f in figures})
        rows.append(
            {
                "system": labels[name],
                "setting (dev)": ("C" if name == "tfidf" else "lr") + f" {chosen[name]:g}",
                "in-scope acc": _summary([f["intent_acc"] for f in figures]),
                "OOS AUROC": _summary([f["oos_auroc"] for f in figures]),
                "OOS AUPR": _summary([f["oos_aupr"] for f in figures]),
                "OOS recall": _summary([f["oos_recall"] for f in figures]),
                "OOS precision": _summary([f["oos_precision"] for f in figures]),
                "OOS score (dev)": ", ".join(picks),
            }
        )
    speed = [
        (o["train_words"] / o["train_seconds"]) / (h["train_words"] / h["train_seconds"])
        for o, h in zip(runs["ours"], runs["hf"])
    ]
    acc = {n: numpy.mean([f["intent_acc"] for f in runs[n]]) for n in runs}
    auc = {n: numpy.mean([f["oos_auroc"] for f in runs[n]]) for n in runs}
    checkpoint_note = (
        f"random-init {layers}x{hidden} ModernBERT, same for all; no pretrained weights"
    )
    summary = [
        {
            "claim": "CLINC150 in-scope accuracy, ours vs HF sequence classification",
            "figure": f"{acc['ours']:.3f} vs {acc['hf']:.3f}",
            "range": f"ours {min(f['intent_acc'] for f in runs['ours']):.3f}-{max(f['intent_acc'] for f in runs['ours']):.3f}",
            "baseline": f"HF (tuned rate); TF-IDF + LR {acc['tfidf']:.3f}",
            "split": "val (chosen on dev carved from train)",
            "caveat": f"{per_intent}/intent, {checkpoint_note}",
        },
        {
            "claim": "CLINC150 out-of-scope AUROC, ours vs HF's best score",
            "figure": f"{auc['ours']:.3f} vs {auc['hf']:.3f}",
            "range": f"ours {min(f['oos_auroc'] for f in runs['ours']):.3f}-{max(f['oos_auroc'] for f in runs['ours']):.3f}",
            "baseline": f"HF max-softmax / Mahalanobis (dev's pick); TF-IDF + LR {auc['tfidf']:.3f}",
            "split": "val (score and threshold chosen on dev)",
            "caveat": checkpoint_note,
        },
    ]
    result = record(
        "intents",
        command_line("python -m benchmarks intents"),
        {
            "chooses": f"dev: {carve_dev}/intent + {carve_oos} out-of-scope carved from CLINC150 train (rate on seed 0 by in-scope accuracy; out-of-scope score by AUROC; threshold by best F1)",
            "reports": "val (3,000 in-scope + 100 out-of-scope), which chose nothing",
            "checkpoint": checkpoint_note
            + "; tokenizer trained on the training text (train minus dev)",
            "seeds": f"{seeds} (each: its own {per_intent}/intent training sample and initialization)",
        },
        [
            "system",
            "setting (dev)",
            "in-scope acc",
            "OOS AUROC",
            "OOS AUPR",
            "OOS recall",
            "OOS precision",
            "OOS score (dev)",
        ],
        rows,
        summary,
        runs=runs,
        sweeps=sweeps,
        training_words_per_second_ratio={
            "ours_over_hf": _summary(speed),
            "note": "training words/s, ours / HF, per seed; measured on a shared, loaded CPU",
        },
        budget={
            "epochs": epochs,
            "batch_size": batch_size,
            "per_intent": per_intent,
            "threads": threads,
        },
    )
    write_json(output, result)
    return result


_D = defaults(run_intents)


@app.command("intents")
def intents_cli(
    data_dir: DataDir = _D["data_dir"],
    cache_dir: CacheDir = _D["cache_dir"],
    output: Output = Path("benchmarks/results/intents.json"),
    per_intent: int = _D["per_intent"],
    carve_dev: int = _D["carve_dev"],
    carve_oos: int = _D["carve_oos"],
    seeds: int = _D["seeds"],
    epochs: int = _D["epochs"],
    batch_size: int = _D["batch_size"],
    threads: Threads = _D["threads"],
) -> None:
    """CLINC150 intents + out-of-scope: ours vs HF sequence classification vs TF-IDF + LR."""
    run_intents(
        data_dir=data_dir,
        cache_dir=cache_dir,
        output=output,
        per_intent=per_intent,
        carve_dev=carve_dev,
        carve_oos=carve_oos,
        seeds=seeds,
        epochs=epochs,
        batch_size=batch_size,
        threads=threads,
    )
