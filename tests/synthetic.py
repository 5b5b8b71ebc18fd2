"""Template messages for tests: a few intents, varied with openers, order numbers and products."""

from __future__ import annotations

import random

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


def message_set(texts: list[str], prefix: str = "m") -> MessageSet:
    n = len(texts)
    return MessageSet(list(texts), [f"{prefix}{i}" for i in range(n)], [None] * n, list(range(1, n + 1)), "synthetic", None)
