"""Probes of nearest-record retrieval on an intent set (not part of the
product): do two embedding models together rank better than the default
alone, does a hubness correction (CSLS) help, and does a top answer that
survives dropping a word from the query deserve more trust (test-time
word dropout)? Dense ranking only, float
products, no BM25 and no query expansion, so its figures sit below
`kb eval`'s; only the comparisons between rows mean anything.

Rows: each model alone; their cosines averaged (and weighted 0.7 / 0.3);
the default model with each record's cosine lowered by `lam` times its
mean cosine to its k nearest records (CSLS); the default model with its
decision score lowered by the query's mean cosine to its ten nearest; the
default model with its decision score weighed by how the top record fares
when each of up to four words is dropped from the query in turn.
Each row reports top-1, the AUROC of the decision score (answerable
against out-of-scope), the AUROC of right against wrong top answers among
the answerable, and at 10 % / 5 % out-of-scope pushes the share of
answerable queries pushed and the precision of what is pushed.

Usage (a light venv of its own, no PyTorch):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install onnxruntime tokenizers numpy
    /tmp/venv/bin/python bench/python/two_models.py \\
        --data ../shared/data/clinc150-dev \\
        --models ~/.local/share/agent-assist/models --cache /tmp/retrieval-probes
The second model is installed by `scripts/setup.sh --model
paraphrase-MiniLM-L3-v2`. Vectors are kept in --cache between runs.
"""

import argparse
import json
import os

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

# Each model folder and the graph output holding its last hidden state.
MODELS = {
    "all-MiniLM-L6-v2": "last_hidden_state",
    "paraphrase-MiniLM-L3-v2": "onnx::Shape_422",
}


def embed(folder, output, texts, batch=64):
    """Mean-pooled, unit-length vectors, shortest texts batched together."""
    tok = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    tok.enable_truncation(128)
    so = ort.SessionOptions()
    so.intra_op_num_threads = os.cpu_count() or 1
    sess = ort.InferenceSession(os.path.join(folder, "model.onnx"), so)
    wants_types = any(i.name == "token_type_ids" for i in sess.get_inputs())
    vecs = np.zeros((len(texts), 384), np.float32)
    order = np.argsort([len(t) for t in texts])
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        enc = tok.encode_batch([texts[j] for j in idx])
        width = max(len(e.ids) for e in enc)
        ids = np.array([e.ids + [0] * (width - len(e.ids)) for e in enc], np.int64)
        mask = np.array([e.attention_mask + [0] * (width - len(e.ids)) for e in enc], np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if wants_types:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = sess.run([output], feed)[0]
        m = mask[:, :, None].astype(np.float32)
        v = (hidden * m).sum(1) / m.sum(1)
        vecs[idx] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return vecs


def auroc(pos, neg):
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def report(name, score, predicted, truth):
    answerable = truth >= 0
    right = (predicted == truth) & answerable
    cells = []
    for rate in (0.10, 0.05):
        t = np.quantile(score[~answerable], 1 - rate)
        pushed = score > t
        share = (pushed & answerable).sum() / answerable.sum()
        cells.append("%2.0f%%: %.1f%% / %.3f" % (rate * 100, 100 * share, right[pushed].sum() / max(pushed.sum(), 1)))
    print("%-26s top-1 %.3f  AUROC %.3f  right/wrong %.3f  %s" % (
        name, right[answerable].mean(), auroc(score[answerable], score[~answerable]),
        auroc(score[right], score[answerable & ~right]), "  ".join(cells)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--cache", required=True)
    args = ap.parse_args()
    kb = [json.loads(line) for line in open(os.path.join(args.data, "kb.jsonl"))]
    queries = [json.loads(line) for line in open(os.path.join(args.data, "queries.jsonl"))]
    n = len(kb)
    row = {r["id"]: i for i, r in enumerate(kb)}
    # Evaluation only: a record's intent is the expected set it belongs to.
    intent = np.full(n, -1)
    truth = []
    groups = {}
    for q in queries:
        if not q["expected"]:
            truth.append(-1)
            continue
        g = groups.setdefault(q["expected"][0], len(groups))
        for rid in q["expected"]:
            intent[row[rid]] = g
        truth.append(g)
    truth = np.array(truth)
    texts = [r["content"] for r in kb] + [q["query"] for q in queries]
    os.makedirs(args.cache, exist_ok=True)
    sims = {}
    for name, output in MODELS.items():
        path = os.path.join(args.cache, name + ".npy")
        if not os.path.exists(path):
            np.save(path, embed(os.path.join(args.models, name), output, texts))
        v = np.load(path)
        sims[name] = v[n:] @ v[:n].T
    a, b = sims["all-MiniLM-L6-v2"], sims["paraphrase-MiniLM-L3-v2"]
    for name, s in [("L6 (default)", a), ("L3", b), ("mean of both", (a + b) / 2),
                    ("0.7 L6 + 0.3 L3", 0.7 * a + 0.3 * b)]:
        report(name, s.max(1), intent[s.argmax(1)], truth)
    v = np.load(os.path.join(args.cache, "all-MiniLM-L6-v2.npy"))[:n]
    among = v @ v.T
    np.fill_diagonal(among, -1)
    for k in (5, 10, 20):
        hub = np.sort(among, 1)[:, -k:].mean(1)
        for lam in (0.25, 1.0):
            s = a - lam * hub[None, :]
            report("CSLS k=%d lam=%.2f" % (k, lam), a.max(1), intent[s.argmax(1)], truth)
    density = np.sort(a, 1)[:, -10:].mean(1)
    for w in (0.25, 0.5):
        report("score - %.2f x density" % w, a.max(1) - w * density, intent[a.argmax(1)], truth)
    dropout(args, v, a, intent, truth)


def dropout(args, records, sims, intent, truth):
    """The top record's cosine to each query with one word dropped, and
    that cosine over the best one the shortened query finds."""
    queries = [json.loads(line)["query"] for line in open(os.path.join(args.data, "queries.jsonl"))]
    texts, owner = [], []
    for i, q in enumerate(queries):
        words = q.split()
        if len(words) < 2:
            continue
        for p in sorted(set(np.linspace(0, len(words) - 1, min(4, len(words))).round().astype(int))):
            texts.append(" ".join(words[:p] + words[p + 1:]))
            owner.append(i)
    owner = np.array(owner)
    path = os.path.join(args.cache, "dropout.npy")
    if not os.path.exists(path):
        np.save(path, embed(os.path.join(args.models, "all-MiniLM-L6-v2"), MODELS["all-MiniLM-L6-v2"], texts))
    shortened = np.load(path)
    top, score = sims.argmax(1), sims.max(1)
    kept = np.einsum("ij,ij->i", shortened, records[top[owner]])
    best = (shortened @ records.T).max(1)
    mean, worst_ratio = score.copy(), np.ones(len(score))
    for i in range(len(score)):
        mine = owner == i
        if mine.any():
            mean[i] = kept[mine].mean()
            worst_ratio[i] = (kept[mine] / best[mine]).min()
    report("mean cosine, word dropped", mean, intent[top], truth)
    report("score x worst kept ratio", score * worst_ratio, intent[top], truth)
    report("score - 0.5 (1 - ratio)", score - 0.5 * (1 - worst_ratio), intent[top], truth)


if __name__ == "__main__":
    main()
