"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or setup, with a message that says how to fix it.

    Entry points print the message as one paragraph and exit non-zero, without a
    traceback: a traceback is for bugs, not for a mistyped path.
    """

    exit_code = 2
