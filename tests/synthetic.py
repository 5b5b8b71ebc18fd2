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


# -- two-class data: spam among a company's mail, and a two-label multi-label set ---------------
SPAM = [
    "Congratulations, you have won a {prize}! Claim it today at {url}",
    "Your mailbox is almost full, verify your password at {url} within 24 hours",
    "Limited offer: {pct}% off every {thing}, click {url} now",
    "You were selected for a free {prize}, reply with your bank details to receive it",
    "Earn {money} a week working from home, no experience needed, sign up at {url}",
    "Final notice: your parcel is on hold, pay the {money} customs fee at {url}",
]
HAM = [
    "Can we move the {meeting} to {day}? I am out of office on Monday",
    "Please find attached the invoice for order {n}, due at the end of the month",
    "The {thing} delivery for order {n} is scheduled for {day} morning",
    "Reminder: the {meeting} with the supplier starts at 10 on {day}",
    "Thanks for the update on ticket {n}, the customer confirmed the fix",
    "Could you review the contract draft before {day}? Legal has a few comments",
    "Order {n} was returned by the courier, the {thing} address was incomplete",
    "Our quarterly report is ready; the figures for {day} are in the shared folder",
]
PRIZES = ["cruise", "smartphone", "gift card", "laptop", "holiday"]
URLS = ["bit.ly/claim-now", "secure-verify.example", "win-big.example/offer", "account-check.example"]
MEETINGS = ["budget meeting", "design review", "weekly sync", "onboarding call"]
DAYS = ["Tuesday", "Wednesday", "Thursday", "Friday"]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.randint(1000, 99999), thing=rng.choice(THINGS), prize=rng.choice(PRIZES), url=rng.choice(URLS),
        pct=rng.choice([30, 50, 70, 90]), money=f"${rng.randint(2, 9)},000", meeting=rng.choice(MEETINGS), day=rng.choice(DAYS),
    )  # fmt: skip


def two_class(n: int, seed: int, positive_share: float = 0.25) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs, ``spam`` or ``ham``, about ``positive_share`` of them spam
    (imbalanced, as spam is), with openers and sign-offs varied."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = "spam" if rng.random() < positive_share else "ham"
        text = _fill(rng.choice(SPAM if label == "spam" else HAM), rng)
        rows.append((rng.choice(OPENERS) + text + rng.choice(["", ".", "!", " Regards, Sam."]), label))
    return rows


def three_class(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (text, label) pairs of three of the intents: ``delivery``, ``login`` and ``refund``."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(["delivery", "login", "refund"])
        text = rng.choice(INTENTS[label]).format(n=rng.randint(1000, 99999), thing=rng.choice(THINGS))
        rows.append((rng.choice(OPENERS) + text + rng.choice(["", ".", "!", " Thanks."]), label))
    return rows


URGENT = ["this is urgent, the customer is waiting", "please answer today, it is blocking us", "urgent: we need this fixed before noon"]


def two_label(n: int, seed: int) -> list[tuple[str, tuple[str, ...]]]:
    """``n`` (text, labels) pairs over two labels, ``billing`` and ``urgent``: a billing
    question, an urgent other request, or (every third message) an urgent billing question."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        billing = rng.random() < 0.5
        urgent = not billing or i % 3 == 0
        body = _fill(rng.choice(INTENTS["refund"] + ["the invoice for order {n} charged us twice"]) if billing else rng.choice(INTENTS["delivery"] + INTENTS["login"]), rng)
        text = body + (". " + rng.choice(URGENT) if urgent else ".")
        rows.append((rng.choice(OPENERS) + text, tuple(label for label, present in (("billing", billing), ("urgent", urgent)) if present)))
    return rows
