#!/usr/bin/env python3
"""Compares inputs for the auto-push decision on call windows.

Reads `bench replay --dump` files (one JSON line per search) for the
calibration calls and for the checks, fits a logistic model per candidate
input set on the calibration calls' windows (label: the call expects the
search's best article), and prints for each: the leave-one-call-out log-loss
on the calibration calls (the selection criterion), the probability target
at which 85 % of the calibration calls' automatic pushes are relevant, and
what that target gives on the checks (each call's article pushed at most
once, best article only). Standard library only.

    agent-assist bench replay --calls tests/fixtures/calibration-calls --dump cal.jsonl
    agent-assist bench replay --dump checks.jsonl
    scripts/call-window-candidates.py cal.jsonl tests/fixtures/calibration-calls checks.jsonl assets/conversations
"""
import glob
import json
import math
import sys


def load(dump, calls_dir):
    expected = {}
    for f in glob.glob(calls_dir + "/*.json"):
        d = json.load(open(f))
        expected[d["id"]] = set(d["expected_articles"])
    rows, prev, votes = [], {}, {}
    for line in open(dump):
        r = json.loads(line)
        c, h = r["conversation_id"], r["hits"]
        if not h:
            continue
        top = h[0]
        art = top["article_id"]
        rows.append(dict(
            call=c, art=art, rel=art in expected[c], score=top["score"],
            agree=float(prev.get(c) == art), votes=float(min(votes.get((c, art), 0), 3)),
            lead=top["score"] - (h[1]["score"] if len(h) > 1 else top["score"]),
            margin=top.get("dense", 0.0) - max((x.get("dense", 0.0) for x in h[1:]), default=0.0),
        ))
        prev[c] = art
        votes[(c, art)] = votes.get((c, art), 0) + 1
    return rows, expected


def fit(X, y, iters=30, ridge=1e-4):
    d = len(X[0]) + 1
    w = [0.0] * d
    pos = sum(y)
    hi, lo = (pos + 1) / (pos + 2), 1 / (len(y) - pos + 2)
    for _ in range(iters):
        g = [0.0] * d
        H = [[ridge if i == j else 0.0 for j in range(d)] for i in range(d)]
        for x, t in zip(X, y):
            xx = list(x) + [1.0]
            p = 1 / (1 + math.exp(-sum(a * b for a, b in zip(w, xx))))
            for i in range(d):
                g[i] += (p - (hi if t else lo)) * xx[i]
                for j in range(d):
                    H[i][j] += p * (1 - p) * xx[i] * xx[j]
        M = [H[i][:] + [g[i]] for i in range(d)]
        for i in range(d):
            piv = max(range(i, d), key=lambda r: abs(M[r][i]))
            M[i], M[piv] = M[piv], M[i]
            for r in range(d):
                if r != i:
                    f = M[r][i] / M[i][i]
                    for c in range(i, d + 1):
                        M[r][c] -= f * M[i][c]
        w = [a - M[i][d] / M[i][i] for i, a in enumerate(w)]
    return w


def prob(w, x):
    return 1 / (1 + math.exp(-sum(a * b for a, b in zip(w, list(x) + [1.0]))))


def pushes(rows, expected, rule):
    pushed, right, calls = set(), 0, set()
    for f in rows:
        if rule(f) and (f["call"], f["art"]) not in pushed:
            pushed.add((f["call"], f["art"]))
            if f["rel"]:
                right += 1
                calls.add(f["call"])
    return len(pushed), right, len(calls), sum(1 for v in expected.values() if v)


CANDIDATES = {
    "score": ["score"],
    "score+agree": ["score", "agree"],
    "score+votes": ["score", "votes"],
    "score+lead": ["score", "lead"],
    "score+agree+margin": ["score", "agree", "margin"],
    "score+agree+lead": ["score", "agree", "lead"],
    "score+votes+margin": ["score", "votes", "margin"],
    "score+votes+lead": ["score", "votes", "lead"],
    "score+agree+votes+lead": ["score", "agree", "votes", "lead"],
}


def main():
    cal, cal_exp = load(sys.argv[1], sys.argv[2])
    checks, checks_exp = load(sys.argv[3], sys.argv[4])
    calls = sorted({f["call"] for f in cal})
    print("inputs                    LOCO log-loss  target  cal pushes (calls)      checks pushes (calls)")
    for name, keys in CANDIDATES.items():
        x = lambda f: [f[k] for k in keys]
        ll = n = 0
        for c in calls:
            w = fit([x(f) for f in cal if f["call"] != c], [f["rel"] for f in cal if f["call"] != c], iters=15)
            for f in (f for f in cal if f["call"] == c):
                p = min(max(prob(w, x(f)), 1e-3), 1 - 1e-3)
                ll -= math.log(p) if f["rel"] else math.log(1 - p)
                n += 1
        w = fit([x(f) for f in cal], [f["rel"] for f in cal])
        for k in range(50, 96):
            rule = lambda f, t=k / 100: prob(w, x(f)) >= t
            P, R, C, L = pushes(cal, cal_exp, rule)
            if P >= 5 and R / P >= 0.85:
                P2, R2, C2, L2 = pushes(checks, checks_exp, rule)
                print(f"{name:25s} {ll / n:.4f}        {k / 100:.2f}    {R}/{P} {R / P:.1%} ({C}/{L})    "
                      f"{R2}/{P2} {R2 / max(P2, 1):.1%} ({C2}/{L2})")
                break
        else:
            print(f"{name:25s} {ll / n:.4f}        -       85 % not reached")


if __name__ == "__main__":
    main()
