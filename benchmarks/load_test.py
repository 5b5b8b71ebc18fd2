"""Load test of the prediction service: throughput and latency of `textdistill serve` under
concurrent clients.

    python benchmarks/load_test.py MODEL_DIR [MODEL_DIR ...] [--concurrency 1 8 32]
        [--requests 500] [--messages-per-request 1] [--texts FILE.csv] [--threads 2]

For each model: starts the real server (`textdistill serve MODEL_DIR --threads T`, a subprocess
on 127.0.0.1), waits for /health, warms it up, then for each concurrency level C sends
--requests POST /predict requests from C concurrent clients (asyncio + httpx, one keep-alive
connection each), each with K texts taken in turn from --texts (a CSV with a `text` column) or
from the built-in sample emails. Prints a Markdown table: requests/s, messages/s, p50 and p99
latency per request, and errors (non-200 answers or failed connections; the script exits 1
when there are any). The clients run on the same machine and share its cores with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from common import CLI

WARM_UP_REQUESTS = 20


@dataclass
class Row:
    model: str
    concurrency: int
    requests_per_s: float
    messages_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path, help="saved model directories")
    parser.add_argument("--concurrency", nargs="+", type=int, default=[1, 8, 32], help="concurrent clients, one run each")
    parser.add_argument("--requests", type=int, default=500, help="requests per run")
    parser.add_argument("--messages-per-request", type=int, default=1, help="texts per request (K)")
    parser.add_argument("--texts", type=Path, help="CSV file with a `text` column (default: the built-in sample emails)")
    parser.add_argument("--threads", type=int, default=2, help="the server's model threads")
    parser.add_argument("--max-batch", type=int, default=64, help="the server's --max-batch")
    parser.add_argument("--max-wait-ms", type=float, default=0.0, help="the server's --max-wait-ms")
    args = parser.parse_args()
    texts = read_texts(args.texts) if args.texts else sample_texts()
    rows = []
    for model in args.models:
        with serving(model, args) as url:
            asyncio.run(send_load(url, texts, 1, WARM_UP_REQUESTS, args.messages_per_request))
            for concurrency in args.concurrency:
                row = asyncio.run(send_load(url, texts, concurrency, args.requests, args.messages_per_request))
                rows.append(Row(model.name, **row))
                print(f"{model.name}, {concurrency} clients: {row['requests_per_s']:.1f} requests/s, {row['errors']} errors", file=sys.stderr, flush=True)
    print_table(rows, args)
    if any(row.errors for row in rows):
        sys.exit(1)


def read_texts(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if "text" not in (reader.fieldnames or []):
            sys.exit(f"{path} has no `text` column (columns: {', '.join(reader.fieldnames or [])})")
        texts = [row["text"] for row in reader if row["text"] and row["text"].strip()]
    if not texts:
        sys.exit(f"{path} has no non-empty texts")
    return texts


def sample_texts() -> list[str]:
    from textdistill.data.messages import DataSpec, load_messages
    from textdistill.data.sample import write_sample_dataset

    with tempfile.TemporaryDirectory() as directory:
        dataset = write_sample_dataset(directory, seed=0, n_train=10, n_test=400, n_unannotated=10)
        return load_messages(dataset.test, DataSpec(text_columns=("subject", "body"))).texts


class serving:
    """``with serving(model, args) as url``: the real server on a free port, stopped by SIGTERM on exit."""

    def __init__(self, model: Path, args: argparse.Namespace) -> None:
        self.model = model
        self.args = args

    def __enter__(self) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [
            *CLI, "serve", str(self.model), "--port", str(port), "--threads", str(self.args.threads),
            "--max-batch", str(self.args.max_batch), "--max-wait-ms", str(self.args.max_wait_ms),
            "--max-messages", str(max(256, self.args.messages_per_request)), "--oversize", "truncate",
        ]  # fmt: skip
        print("$ " + " ".join(command), file=sys.stderr, flush=True)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    return url
            except httpx.TransportError:
                time.sleep(0.2)
        self.__exit__()
        self.log.seek(0)
        sys.exit(f"the server for {self.model} did not start:\n{self.log.read().decode(errors='replace')}")

    def __exit__(self, *exc_info) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)


async def send_load(url: str, texts: list[str], concurrency: int, n_requests: int, k: int) -> dict:
    """Send ``n_requests`` requests of ``k`` texts from ``concurrency`` clients; their rates, latency and errors."""
    bodies = [
        json.dumps({"messages": [{"id": j, "text": texts[(i * k + j) % len(texts)]} for j in range(k)]}).encode()
        for i in range(n_requests)
    ]
    todo = iter(bodies)
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:

        async def client_loop() -> None:
            nonlocal errors
            for body in todo:  # one iterator shared by every client: each request is sent once
                start = time.perf_counter()
                try:
                    response = await client.post("/predict", content=body, headers={"content-type": "application/json"})
                    ok = response.status_code == 200 and len(response.json()["results"]) == k
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append((time.perf_counter() - start) * 1000)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    p50, p99 = np.percentile(latencies, [50, 99]) if latencies else (float("nan"), float("nan"))
    return {
        "concurrency": concurrency,
        "requests_per_s": len(latencies) / wall,
        "messages_per_s": len(latencies) * k / wall,
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "errors": errors,
    }


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"\n{args.requests} requests of {args.messages_per_request} messages per run; server: --threads {args.threads} "
        f"--max-batch {args.max_batch} --max-wait-ms {args.max_wait_ms}\n"
    )
    print("| model | concurrency | requests/s | messages/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r.model} | {r.concurrency} | {r.requests_per_s:,.1f} | {r.messages_per_s:,.1f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} |")


if __name__ == "__main__":
    main()
