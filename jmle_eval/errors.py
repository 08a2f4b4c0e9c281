"""The one exception type for mistakes a user can fix."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or setup, with a message that says how to fix it.

    Entry points print the message as one paragraph and exit non-zero, without a
    traceback: a traceback is for bugs, not for a mistyped path.
    """

    exit_code = 2
    keep_output = False
    """True once the run sent requests or wrote answers: its log folder is then kept, not cleaned up."""


def quiet_interrupts() -> None:
    """Make Ctrl-C before a command's work starts (imports, config composition) end with one line, not a traceback.

    Entry points call this first. Python still exits by SIGINT (status 130), as
    a shell expects of an interrupted command; other exceptions are untouched.
    """
    import sys

    def hook(kind: type[BaseException], value: BaseException, tb: object) -> None:
        if issubclass(kind, KeyboardInterrupt):
            print("interrupted: nothing was started; run the same command again.", file=sys.stderr)
            return
        sys.__excepthook__(kind, value, tb)  # type: ignore[arg-type]

    sys.excepthook = hook
