"""Study: one-class detectors on pooled ModernBERT doc embeddings vs TF-IDF kNN anchors.

`--what tokens` runs the token-level study that chose `token_knn` / `doc_and_token_knn`
(aggregation mean vs 90th percentile, token neighbours 1/3/10, token bank 20k/60k, sum vs
max of the two robust z-scores; the z statistics from the last 10% of the training docs).

Not a test and not the final benchmark: a script to choose the embedding and the default
detector for `anomaly_scorer` (mode = "one_class"), issue 11. Every system starts from the
same random-init checkpoint family (no pretrained weights exist offline).

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/one_class_study.py [--cache /tmp/oc]
"""

import argparse
import random
import sys
import time
from pathlib import Path

import numpy

from benchmarks import data as bdata
from spacy_modernbert.anomaly.curves import average_precision, roc_auc


def sms_protocol(data_dir):
    rows = bdata.read_sms(Path(data_dir) / bdata.SMS)
    rows = list(rows)
    random.Random(0).shuffle(rows)
    n_train = int(0.8 * len(rows))
    train = [t for y, t in rows[:n_train] if y == 0]
    test = rows[n_train:]
    return train, [t for _, t in test], [y for y, _ in test]


def conll_docs(path, per_doc=3):
    sents = [" ".join(w) for w, _ in bdata.read_conll(path)]
    return [" ".join(sents[i : i + per_doc]) for i in range(0, len(sents) - per_doc + 1, per_doc)]


def tfidf_knn(train, test, k=10, **vec):
    from sklearn.feature_extraction.text import TfidfVectorizer

    v = TfidfVectorizer(**vec).fit(train)
    A, B = v.transform(train), v.transform(test)
    sims = (B @ A.T).toarray()
    top = -numpy.sort(-sims, axis=1)[:, :k]
    return 1.0 - top.mean(axis=1)


def embed(nlp, texts, batch_size=64):
    from spacy_modernbert.anomaly.model import pooled_docs as _pooled

    pipe = nlp.get_pipe("anomaly_scorer")
    out = []
    for i in range(0, len(texts), 256):
        docs = list(
            nlp.get_pipe("transformer").pipe(
                (nlp.make_doc(t) for t in texts[i : i + 256]), batch_size=batch_size
            )
        )
        out.append(
            numpy.asarray(pipe.model.ops.to_numpy(_pooled(pipe.model, docs)), dtype="float64")
        )
        print(f"  embedded {i + len(docs)}/{len(texts)}", file=sys.stderr, flush=True)
    return numpy.concatenate(out)


def normalize(X, mean):
    Z = X - mean
    return Z / numpy.maximum(numpy.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


def knn_scores(bank, Q, k=10):
    sims = Q @ bank.T
    top = -numpy.sort(-sims, axis=1)[:, :k]
    return 1.0 - top.mean(axis=1)


def maha_scores(bank, Q):
    from sklearn.covariance import LedoitWolf

    lw = LedoitWolf().fit(bank)
    return lw.mahalanobis(Q)


def report(name, gold, scores, words=None, normal_mask=None):
    from scipy.stats import spearmanr

    line = f"{name:40s} AUC {roc_auc(gold, scores):.3f}  AP {average_precision(gold, scores):.3f}"
    if words is not None:
        rho = spearmanr(
            numpy.asarray(scores)[normal_mask], numpy.asarray(words)[normal_mask]
        ).correlation
        line += f"  rho(len) {rho:+.2f}"
    print(line, flush=True)


def token_vectors(nlp, texts):
    """Each text's token vectors (float32, one array per doc) as the anomaly_scorer's listener sees them."""
    t2v = nlp.get_pipe("anomaly_scorer").model.get_ref("tok2vec")
    out = []
    for i in range(0, len(texts), 256):
        docs = list(
            nlp.get_pipe("transformer").pipe(
                (nlp.make_doc(t) for t in texts[i : i + 256]), batch_size=64
            )
        )
        out += [numpy.asarray(x, dtype="float32") for x in t2v.predict(docs)]
    return out


def token_study(name, nlp, train, test, gold, words, normal_mask):
    """Token-level kNN variants (see the module docstring), on one task."""
    cut = int(0.9 * len(train))
    fit_t, cal_t, test_t = (
        token_vectors(nlp, train[:cut]),
        token_vectors(nlp, train[cut:]),
        token_vectors(nlp, test),
    )
    flat = numpy.concatenate([x for x in fit_t if len(x)])
    doc_bank = normalize(numpy.stack([x.mean(0) for x in fit_t]), 0.0)

    def doc_scores(docs):
        Q = normalize(
            numpy.stack([x.mean(0) if len(x) else numpy.zeros(doc_bank.shape[1]) for x in docs]),
            0.0,
        )
        return knn_scores(doc_bank, Q, 10)

    def tok_scores(docs, bank, k, agg):
        out = []
        for x in docs:
            if not len(x):
                out.append(1.0)
                continue
            sims = normalize(x, 0.0) @ bank.T
            d = 1.0 - numpy.partition(sims, -k, axis=1)[:, -k:].mean(axis=1)
            out.append(d.mean() if agg == "mean" else numpy.quantile(d, 0.9))
        return numpy.asarray(out)

    def z(s, cal):
        med = numpy.median(cal)
        return (s - med) / max(1.4826 * numpy.median(numpy.abs(cal - med)), 1e-12)

    sd, cd = doc_scores(test_t), doc_scores(cal_t)
    report(f"{name} doc knn10", gold, sd, words, normal_mask)
    for size in (20000, 60000):
        keep = numpy.sort(
            numpy.random.RandomState(0).choice(len(flat), min(size, len(flat)), replace=False)
        )
        bank = normalize(flat[keep], 0.0)
        for k in (1, 3, 10) if size == 20000 else (3,):
            for agg in ("mean", "p90"):
                st, ct = tok_scores(test_t, bank, k, agg), tok_scores(cal_t, bank, k, agg)
                report(f"{name} token bank {size} k{k} {agg}", gold, st, words, normal_mask)
                report(
                    f"{name}   + doc knn: sum of z", gold, z(sd, cd) + z(st, ct), words, normal_mask
                )
                if agg == "mean":
                    report(
                        f"{name}   + doc knn: max of z",
                        gold,
                        numpy.maximum(z(sd, cd), z(st, ct)),
                        words,
                        normal_mask,
                    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(bdata.DEFAULT_DATA_DIR))
    ap.add_argument("--cache", default="/tmp/oc_study")
    ap.add_argument("--shape", default="small")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--what", default="sms,news")
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    ckpt = (
        Path(args.checkpoint)
        if args.checkpoint
        else bdata.ensure_checkpoint(cache / f"ckpt-{args.shape}", args.shape, Path(args.data_dir))
    )
    import spacy
    import torch
    from spacy.training import Example

    from benchmarks.systems import build_pipeline

    torch.set_num_threads(1)
    spacy.util.fix_random_seed(0)
    nlp = build_pipeline("ours", ckpt, components=("anomaly_scorer",))
    nlp.get_pipe("anomaly_scorer").cfg["mode"] = "supervised"
    nlp.initialize(
        lambda: [
            Example.from_dict(nlp.make_doc("a b c"), {"cats": {"ANOMALY": 0.0}}),
            Example.from_dict(nlp.make_doc("d e"), {"cats": {"ANOMALY": 1.0}}),
        ]
    )
    tasks = []
    if "sms" in args.what or args.what == "tokens":
        train, test, gold = sms_protocol(args.data_dir)
        print(f"SMS one-class: {len(train)} ham train, {len(test)} test ({sum(gold)} spam)")
        tasks.append(("sms", train, test, gold))
    if "news" in args.what or args.what == "tokens":
        news = conll_docs(Path(args.data_dir) / bdata.CONLL_TRAIN)
        valid = conll_docs(Path(args.data_dir) / bdata.CONLL_VALID)
        sms = [t for _, t in bdata.read_sms(Path(args.data_dir) / bdata.SMS)]
        rng = random.Random(0)
        rng.shuffle(sms)
        normal = valid[:500]
        single = sms[:500]
        grouped = [" ".join(sms[500 + 3 * i : 503 + 3 * i]) for i in range(500)]
        tasks.append(("news-vs-sms1", news, normal + single, [0] * len(normal) + [1] * len(single)))
        tasks.append(
            ("news-vs-sms3", news, normal + grouped, [0] * len(normal) + [1] * len(grouped))
        )
    for name, train, test, gold in tasks:
        words = [bdata.n_words(t) for t in test]
        normal_mask = numpy.asarray(gold) == 0
        print(f"== {name}")
        if "tokens" in args.what:
            token_study(name, nlp, train, test, gold, words, normal_mask)
            continue
        for label, vec in [
            ("tfidf word1 knn10", dict(ngram_range=(1, 1))),
            ("tfidf char_wb3-5 knn10", dict(analyzer="char_wb", ngram_range=(3, 5))),
        ]:
            report(label, gold, tfidf_knn(train, test, **vec), words, normal_mask)
        f = cache / f"{ckpt.name}-{name.split('-')[0]}-train.npy"
        if not f.exists():
            t0 = time.time()
            numpy.save(f, embed(nlp, train))
            print(f"  train embeddings {time.time() - t0:.0f}s", file=sys.stderr)
        ft = cache / f"{ckpt.name}-{name}-test.npy"
        if not ft.exists():
            numpy.save(ft, embed(nlp, test))
        X, Q = numpy.load(f), numpy.load(ft)
        raw_bank = X / numpy.linalg.norm(X, axis=1, keepdims=True)
        raw_q = Q / numpy.maximum(numpy.linalg.norm(Q, axis=1, keepdims=True), 1e-12)
        report("emb mean, cosine knn10", gold, knn_scores(raw_bank, raw_q), words, normal_mask)
        mu = X.mean(axis=0)
        bank, q = normalize(X, mu), normalize(Q, mu)
        for k in (1, 5, 10, 20):
            report(f"emb centered-l2 knn{k}", gold, knn_scores(bank, q, k), words, normal_mask)
        report("emb raw mahalanobis LW", gold, maha_scores(X, Q), words, normal_mask)
        report("emb centered-l2 mahalanobis LW", gold, maha_scores(bank, q), words, normal_mask)
        # whitened knn
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(bank)
        w, V = numpy.linalg.eigh(lw.covariance_)
        W = V / numpy.sqrt(w)
        wb, wq = bank @ W, q @ W
        wb /= numpy.linalg.norm(wb, axis=1, keepdims=True)
        wq /= numpy.linalg.norm(wq, axis=1, keepdims=True)
        report("emb centered-l2 whitened knn10", gold, knn_scores(wb, wq, 10), words, normal_mask)


if __name__ == "__main__":
    main()
