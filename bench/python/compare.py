"""Runs agent-assist and the Python original side by side, in one run.

1. KB build on the same texts, for both shapes of KB: the sample KB's long
   chunks and 10,000 short untitled records (generated, or the first records
   of --records FILE), exported by `agent-assist bench kb --export-texts`.
   With --rounds N the two implementations take turns N times and the
   medians are compared. --build-only stops there.
2. Event->push latency and peak RSS: each pipeline in turn against a fresh
   simulator playing the same calls at the same speed for the same time.
   agent-assist runs as its headless console in auto mode (debounce 0, every
   search's best article pushed); the Python original pushes the top 3 for
   every cumulative transcript event, as its design does.

Usage: python3 bench/python/compare.py [--bin target/release/agent-assist]
       [--seconds 60] [--speed 2] [--concurrency 2] [--build-only]
       [--rounds 1] [--articles 10000] [--records FILE] [--batch 64]
Needs bench/python/setup.sh to have run. Prints a JSON report.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV_PY = os.path.join(HERE, ".venv", "bin", "python")

BENCH_POLICY = """
[policy]
mode = "auto"
debounce = 0
show = -1.0
push = -1.0
auto = -1.0
top_k = 1
cooldown = 0
max_pushes_per_minute = 1000000
"""


def start_sim(binary, speed, concurrency):
    p = subprocess.Popen([binary, "sim", "--speed", str(speed), "--concurrency", str(concurrency), "--loop"],
                         stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    return p, ready["base_url"], ready["queue_id"]


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def run_ours(binary, base, queue, seconds, workdir):
    cfg = os.path.join(workdir, "bench.toml")
    with open(cfg, "w") as f:
        f.write(BENCH_POLICY)
    env = dict(os.environ, GENESYS_API_BASE=base, GENESYS_CLIENT_ID="bench", GENESYS_CLIENT_SECRET="bench",
               AGENT_ASSIST_CONFIG_DIR=os.path.join(workdir, "config"))
    p = subprocess.Popen([binary, "--config", cfg, "console", "--headless", "--queue", queue,
                          "--exit-after", f"{seconds}s"], stdout=subprocess.PIPE, text=True, env=env)
    peak = 0.0
    lines = []
    import threading

    def read():
        for line in p.stdout:
            lines.append(line)

    t = threading.Thread(target=read)
    t.start()
    while p.poll() is None:
        hwm = vm_hwm_mib(p.pid)
        if hwm:
            peak = max(peak, hwm)
        time.sleep(0.2)
    t.join()
    summary = json.loads(lines[-1])
    lat = summary["latency"]
    return {
        "event_to_push_ms": {"n": lat["event_to_push"]["count"], "p50": lat["event_to_push"]["p50_ms"],
                             "p99": lat["event_to_push"]["p99_ms"]},
        "event_to_ack_ms": {"p50": lat["end_to_end"]["p50_ms"], "p99": lat["end_to_end"]["p99_ms"]},
        "peak_rss_mib": peak,
    }


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def build_round(args, work):
    """One build of each KB by each implementation, agent-assist first."""
    texts_dir = os.path.join(work, "texts")
    cmd = [args.bin, "bench", "kb", "--articles", str(args.articles), "--queries", "20",
           "--export-texts", texts_dir, "--json"]
    if args.records:
        cmd += ["--records", args.records]
    kb = json.loads(subprocess.check_output(cmd, text=True))
    out = {}
    for run in kb["runs"]:
        texts = os.path.join(texts_dir, run["name"] + ".jsonl")
        py = json.loads(subprocess.check_output([VENV_PY, os.path.join(HERE, "pipeline.py"), "--base", "x",
                                                 "--texts", texts, "--build-only", "--batch", str(args.batch)],
                                                text=True))["build"]
        out[run["name"]] = {"texts": run["texts"], "agent_assist_s": run["build_s"], "python_s": py["seconds"],
                            "agent_assist_cpu_s": run.get("build_cpu_s"), "python_cpu_s": py.get("cpu_s")}
    return out


def build_report(rounds):
    report = {}
    for name in rounds[0]:
        ours = [r[name]["agent_assist_s"] for r in rounds]
        py = [r[name]["python_s"] for r in rounds]
        texts = rounds[0][name]["texts"]
        report[name] = {
            "texts": texts,
            "agent_assist_s": ours, "python_s": py,
            "agent_assist_median_s": median(ours), "python_median_s": median(py),
            "agent_assist_texts_per_s": texts / median(ours), "python_texts_per_s": texts / median(py),
            "speedup": median(py) / median(ours),
        }
        ours_cpu = [r[name]["agent_assist_cpu_s"] for r in rounds if r[name]["agent_assist_cpu_s"] is not None]
        py_cpu = [r[name]["python_cpu_s"] for r in rounds if r[name]["python_cpu_s"] is not None]
        if ours_cpu and py_cpu:
            report[name].update({"agent_assist_cpu_s": ours_cpu, "python_cpu_s": py_cpu,
                                 "cpu_ratio": median(py_cpu) / median(ours_cpu)})
    return report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "agent-assist"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--speed", type=float, default=2)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--build-only", action="store_true", help="compare the KB builds only")
    ap.add_argument("--rounds", type=int, default=1, help="build rounds, alternating the implementations")
    ap.add_argument("--articles", type=int, default=10000, help="short records in the second KB")
    ap.add_argument("--records", help="JSON Lines file to take the short records from")
    ap.add_argument("--batch", type=int, default=64, help="sentence-transformers batch size in builds")
    args = ap.parse_args()
    if not os.path.exists(VENV_PY):
        sys.exit("run bench/python/setup.sh first")
    work = tempfile.mkdtemp(prefix="agent-assist-compare-")
    rounds = []
    for i in range(max(1, args.rounds)):
        rounds.append(build_round(args, work))
        print(f"round {i + 1}: {json.dumps(rounds[-1])}", file=sys.stderr)
    builds = build_report(rounds)
    if args.build_only:
        print(json.dumps({"settings": vars(args), "build": builds}, indent=2))
        return
    texts = os.path.join(work, "texts", "sample.jsonl")

    sim, base, queue = start_sim(args.bin, args.speed, args.concurrency)
    try:
        ours = run_ours(args.bin, base, queue, args.seconds, work)
    finally:
        sim.terminate()
        sim.wait()
    sim, base, queue = start_sim(args.bin, args.speed, args.concurrency)
    try:
        py = json.loads(subprocess.check_output([VENV_PY, os.path.join(HERE, "pipeline.py"), "--base", base,
                                                 "--texts", texts, "--seconds", str(args.seconds)], text=True))
    finally:
        sim.terminate()
        sim.wait()

    report = {
        "settings": vars(args),
        "build": builds,
        "event_to_push_ms": {"agent_assist": ours["event_to_push_ms"], "python": py["event_to_push_ms"],
                             "p50_ratio": py["event_to_push_ms"]["p50"] / ours["event_to_push_ms"]["p50"],
                             "p99_ratio": py["event_to_push_ms"]["p99"] / ours["event_to_push_ms"]["p99"]},
        "agent_assist_event_to_ack_ms": ours["event_to_ack_ms"],
        "peak_rss_mib": {"agent_assist": ours["peak_rss_mib"], "python": py["peak_rss_mib"],
                         "ratio": py["peak_rss_mib"] / ours["peak_rss_mib"]},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
