"""Progress bars for long loops, silenced globally by ``--quiet``.

On a terminal a live bar; elsewhere (a log file, CI) a plain line every 30 seconds, so long
background jobs still show how far they are.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from textdistill.console import stderr_console

T = TypeVar("T")

LOG_EVERY_SECONDS = 30.0

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` showing progress on stderr unless quiet."""
    if _quiet:
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    console = stderr_console()
    if not console.is_terminal:
        yield from _logged(items, description, total, console)
        return
    columns = (
        TextColumn("{task.description}", style="progress.description", markup=False),  # descriptions may name files
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    # A slow refresh: the bar's thread must not steal time from the loops being measured.
    with Progress(*columns, transient=True, console=console, refresh_per_second=2) as progress:
        task = progress.add_task(description, total=total)
        for item in items:
            yield item
            progress.advance(task)


def _logged(items: Iterable[T], description: str, total: int | None, console: Console) -> Iterator[T]:
    started = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= LOG_EVERY_SECONDS:
            last = now
            of = f"/{total}" if total else ""
            rate = done / (now - started)
            left = f", about {(total - done) / rate / 60:.1f} min left" if total and rate > 0 else ""
            console.print(f"{description}: {done}{of} ({(now - started) / 60:.1f} min{left})", highlight=False)
