"""Runs agent-assist and the Python original side by side, in one run.

1. KB build throughput on the same texts (the sample KB's chunks, exported
   by `agent-assist bench kb --export-texts`).
2. Event->push latency and peak RSS: each pipeline in turn against a fresh
   simulator playing the same calls at the same speed for the same time.
   agent-assist runs as its headless console in auto mode (debounce 0, every
   search's best article pushed); the Python original pushes the top 3 for
   every cumulative transcript event, as its design does.

Usage: python3 bench/python/compare.py [--bin target/release/agent-assist]
       [--seconds 60] [--speed 2] [--concurrency 2]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "agent-assist"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--speed", type=float, default=2)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    if not os.path.exists(VENV_PY):
        sys.exit("run bench/python/setup.sh first")
    work = tempfile.mkdtemp(prefix="agent-assist-compare-")
    texts = os.path.join(work, "texts.jsonl")

    kb = json.loads(subprocess.check_output([args.bin, "bench", "kb", "--articles", "0", "--queries", "100",
                                             "--export-texts", texts, "--json"], text=True))
    ours_build = kb["runs"][0]
    py_build = json.loads(subprocess.check_output([VENV_PY, os.path.join(HERE, "pipeline.py"), "--base", "x",
                                                   "--texts", texts, "--build-only"], text=True))["build"]

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
        "build_texts_per_s": {"agent_assist": ours_build["texts_per_s"], "python": py_build["texts_per_s"],
                              "ratio": ours_build["texts_per_s"] / py_build["texts_per_s"]},
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
