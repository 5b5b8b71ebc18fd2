"""Template messages for tests: a few intents, varied with openers, order numbers and products; and files of them."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from textdistill.data.messages import MessageSet

INTENTS = {
    "refund": ["I want my money back for order {n}", "please refund the {thing} I returned", "refund request for the broken {thing}"],
    "delivery": ["where is my parcel {n}", "the {thing} has not arrived yet", "delivery of order {n} is late again"],
    "login": ["I cannot log in to my account", "password reset link for {thing} does not work", "locked out after the update"],
    "cancel": ["cancel my membership please", "stop the subscription before {n}", "I no longer want the {thing} plan"],
    "praise": ["thanks, the {thing} is great", "lovely service, order {n} was perfect", "very happy with the new {thing}"],
}
THINGS = ["kettle", "lamp", "blender", "jacket", "phone case", "toaster", "rug", "backpack"]
OPENERS = ["", "Hi, ", "Hello team. ", "Good morning! ", "hey "]


def synthetic(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs from the intent templates."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(INTENTS))
        text = rng.choice(INTENTS[label]).format(n=rng.randint(1000, 99999), thing=rng.choice(THINGS))
        rows.append((rng.choice(OPENERS) + text + rng.choice(["", ".", "!", " Thanks."]), label))
    return rows


def requests(n: int, seed: int) -> list[str]:
    """``n`` messages of one or two requests each (every third has two), for multi-label models."""
    first, second = synthetic(n, seed=seed), synthetic(n, seed=seed + 100)
    return [a if i % 3 else a + " Also, " + b for i, ((a, _), (b, _)) in enumerate(zip(first, second))]


def message_set(texts: list[str], prefix: str = "m") -> MessageSet:
    n = len(texts)
    return MessageSet(list(texts), [f"{prefix}{i}" for i in range(n)], [None] * n, list(range(1, n + 1)), "synthetic", None)


def write_messages(path: Path, texts: list[str], ids: list[str] | None = None) -> Path:
    """``texts`` (and ``ids``, as column ``id``) as a CSV, JSONL or Parquet file, by ``path``'s suffix."""
    columns = {"text": texts} if ids is None else {"id": ids, "text": texts}
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    else:
        pq.write_table(pa.table(columns), path)
    return path
