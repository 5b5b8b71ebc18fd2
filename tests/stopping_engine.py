"""An engine for the resuming tests: the local one, stopped (as if killed) after a few writes."""

from __future__ import annotations

from textdistill.engines import LocalEngine


class StopsAfter:
    """Runs :meth:`LocalEngine.run_files` and raises KeyboardInterrupt after writing ``n`` chunks."""

    def __init__(self, n: int) -> None:
        self.n = n

    def run_files(self, model_dir, reader, files, batch_size, write, description):
        written = []

        def write_then_stop(chunk, logits):
            write(chunk, logits)
            written.append(chunk)
            if len(written) == self.n:
                raise KeyboardInterrupt

        LocalEngine().run_files(model_dir, reader, files, batch_size, write_then_stop, description)
