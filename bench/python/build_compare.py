"""KB build, agent-assist against the Python original, taking turns.

For each KB (the sample KB's long chunks, and short untitled records: the
first --articles lines of --records), each round runs `agent-assist kb build
--force` (the whole command: process start, model load, chunking, embedding,
index) and then `pipeline.py --build-only` on exactly the texts agent-assist
embeds (model.encode at --batch plus faiss add; model load not counted).
Wall time and CPU time (user + system, every thread) of both are recorded;
on a machine shared with other work the CPU time is the steadier figure.

Usage: python3 bench/python/build_compare.py --records FILE [--articles 10000]
       [--rounds 3] [--batch 64] [--bin target/release/agent-assist]
Needs bench/python/setup.sh to have run. Prints a JSON report.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def ours(binary, source, cache):
    env = dict(os.environ, AGENT_ASSIST_CACHE_DIR=cache)
    cpu0, t0 = children_cpu(), time.perf_counter()
    subprocess.run([binary, "kb", "build", "--kb", source, "--force", "--json"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0, children_cpu() - cpu0


def python(texts, batch):
    out = subprocess.check_output([VENV_PY, os.path.join(HERE, "pipeline.py"), "--base", "x", "--texts", texts,
                                   "--build-only", "--batch", str(batch)], text=True, stderr=subprocess.DEVNULL)
    b = json.loads(out)["build"]
    return b["seconds"], b["cpu_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "agent-assist"))
    ap.add_argument("--records", required=True, help="JSON Lines file of untitled records")
    ap.add_argument("--articles", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64, help="sentence-transformers batch size")
    args = ap.parse_args()
    if not os.path.exists(VENV_PY):
        sys.exit("run bench/python/setup.sh first")
    work = tempfile.mkdtemp(prefix="agent-assist-build-compare-")
    # The texts agent-assist embeds: exported by `bench kb` for both KBs.
    texts_dir = os.path.join(work, "texts")
    kb = json.loads(subprocess.check_output(
        [args.bin, "bench", "kb", "--articles", str(args.articles), "--records", args.records, "--queries", "5",
         "--export-texts", texts_dir, "--json"], text=True))
    names = [r["name"] for r in kb["runs"]]
    short = os.path.join(work, "short.jsonl")
    with open(args.records) as f, open(short, "w") as out:
        lines = [line for line in f if line.strip()][: args.articles]
        out.writelines(lines)
    sources = {names[0]: os.path.join(ROOT, "kb"), names[1]: short}
    rows = {n: {"ours_s": [], "ours_cpu_s": [], "python_s": [], "python_cpu_s": []} for n in names}
    for i in range(args.rounds):
        for n in names:
            s, c = ours(args.bin, sources[n], os.path.join(work, "cache"))
            rows[n]["ours_s"].append(s)
            rows[n]["ours_cpu_s"].append(c)
            s, c = python(os.path.join(texts_dir, n + ".jsonl"), args.batch)
            rows[n]["python_s"].append(s)
            rows[n]["python_cpu_s"].append(c)
            print(f"round {i + 1} {n}: {json.dumps({k: v[-1] for k, v in rows[n].items()})}", file=sys.stderr)
    report = {}
    for n, r in rows.items():
        report[n] = dict(r)
        report[n].update({k.replace("_s", "_median_s"): median(v) for k, v in r.items()})
        report[n]["wall_ratio"] = median(r["python_s"]) / median(r["ours_s"])
        report[n]["cpu_ratio"] = median(r["python_cpu_s"]) / median(r["ours_cpu_s"])
    print(json.dumps({"settings": vars(args), "builds": report}, indent=2))


if __name__ == "__main__":
    main()
