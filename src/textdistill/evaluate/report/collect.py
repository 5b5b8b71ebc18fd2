"""Find and validate the evaluation JSON files a report is built from."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

REQUIRED_KEYS = ("name", "macro_f1", "latency_ms_p50", "per_label")
_HINT = "What to do: write one with `textdistill evaluate ... --json`."


def collect_evaluations(paths: Sequence[str | Path]) -> list[dict]:
    """Load evaluations from JSON files, run directories (``evaluations/*.json``) or folders of ``*.json``.

    Files are read in the order given, each directory's files sorted by name; a file reached
    twice is read once. Models sharing a name get the name of their run (or a number) appended.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    looked: list[str] = []
    for path in map(Path, paths):
        found, where = _evaluation_files(path)
        looked.append(where)
        for file in found:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                files.append(file)
    if not files:
        raise ValueError(f"no evaluation JSON files found in {', '.join(looked) or '(no paths given)'}\n  {_HINT}")
    evaluations = [_load(f) for f in files]
    _disambiguate(evaluations, [_run_name(f) for f in files])
    return evaluations


def _evaluation_files(path: Path) -> tuple[list[Path], str]:
    """The evaluation files at ``path`` and a description of where they were looked for."""
    if path.is_file():
        return [path], str(path)
    if path.is_dir():
        folder = path / "evaluations" if (path / "evaluations").is_dir() else path
        return sorted(folder.glob("*.json")), str(folder / "*.json")
    raise ValueError(f"{path}: no such file or directory\n  {_HINT}")


def _load(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: cannot read evaluation JSON ({exc})\n  {_HINT}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected one JSON object per evaluated model, got {type(data).__name__}\n  {_HINT}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"{file}: not a textdistill evaluation, missing keys: {', '.join(missing)}\n  {_HINT}")
    return {**data, "name": str(data["name"])}


def _run_name(file: Path) -> str:
    """The run a file belongs to: the folder holding ``evaluations/``, else the file's own folder."""
    folder = file.resolve().parent
    return folder.parent.name if folder.name == "evaluations" else folder.name


def _disambiguate(evaluations: list[dict], runs: list[str]) -> None:
    """Append the run name to names that occur more than once, then a number if still not unique."""
    counts = Counter(ev["name"] for ev in evaluations)
    taken: set[str] = set()
    for ev, run in zip(evaluations, runs):
        base = f"{ev['name']} ({run})" if counts[ev["name"]] > 1 and run else ev["name"]
        name, number = base, 2
        while name in taken:
            name, number = f"{base} ({number})", number + 1
        taken.add(name)
        ev["name"] = name
