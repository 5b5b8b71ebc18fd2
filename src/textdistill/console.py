"""The console every command prints its notes and errors to (stderr).

It prints strings as they are. Paths, column names, ids, labels and error messages come from
the user's data and may hold ``[/b]`` or ``:name:``, which rich would read as markup (and fail
on, or swallow) or as emoji codes; so styles are given with ``style=`` or as
:class:`rich.text.Text`, never as markup inside a string.
"""

from __future__ import annotations

from rich.console import Console


def stderr_console() -> Console:
    """A stderr console with markup and emoji codes off."""
    return Console(stderr=True, soft_wrap=True, markup=False, emoji=False)
