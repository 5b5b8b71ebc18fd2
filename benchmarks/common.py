"""Helpers the benchmark scripts share: running the CLI, and the texts a teacher labels."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "textdistill"]


def run(command: list[str]) -> None:
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def finished(transfer: Path) -> bool:
    manifest = transfer / "manifest.json"
    return manifest.exists() and json.loads(manifest.read_text())["finished"]


def transfer_texts(train: Path, out: Path) -> Path:
    """Train minus the seeded validation split (10 %, seed 0) that teachers and students hold
    out, as a one-column CSV of texts for `textdistill label`."""
    from textdistill.data.messages import DataSpec, load_messages
    from textdistill.data.split import train_validation_split

    path = out / "transfer_texts.csv"
    if not path.exists():
        kept, _ = train_validation_split(load_messages(train, DataSpec()).annotated(), 0.1, 0)
        out.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text"])
            writer.writerows([t] for t in kept.texts)
    return path
