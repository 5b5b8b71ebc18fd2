"""`python -m textdistill ARGS` run in the test's own process: the same entry point
(:func:`textdistill.cli.main`, which turns a TextdistillError into its message and exit code 2),
the same arguments, output and exit code, without a new interpreter's seconds of imports.

For tests about what a command prints, writes and exits with. Tests about the process itself
(a fresh interpreter without torch, Ray started by the command, signals, memory) start a real one.
An exception that escapes ``main`` is raised in the test, where a real process would print its
traceback and exit 1.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path


def run_cli(*args, cwd: Path | str | None = None) -> subprocess.CompletedProcess:
    """Run ``textdistill ARGS`` (each argument turned into a string) in this process, in ``cwd``
    if given; the answer is what ``subprocess.run(..., capture_output=True, text=True)`` gives."""
    from textdistill.cli import main

    argv = ["textdistill", *map(str, args)]
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(stdout))
        stack.enter_context(contextlib.redirect_stderr(stderr))
        saved_argv, sys.argv = sys.argv, argv
        stack.callback(setattr, sys, "argv", saved_argv)
        try:
            main()
        except SystemExit as exit:
            returncode = _exit_status(exit.code, stderr)
    return subprocess.CompletedProcess(argv, returncode, stdout.getvalue(), stderr.getvalue())


def _exit_status(code, stderr: io.StringIO) -> int:
    """The status ``sys.exit(code)`` gives a process: None is 0, a message is printed and is 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=stderr)
    return 1
