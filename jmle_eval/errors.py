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
    """Make Ctrl-C before a command's work starts (imports, config composition) end at once with one line.

    Entry points call this first, and :func:`restore_interrupts` when their task
    starts (from then on Ctrl-C cancels the work cleanly and keeps what is done).
    Until then nothing has been written, so exiting at once is safe; letting the
    KeyboardInterrupt run through Hydra's or OmegaConf's internals instead gave a
    traceback or an unrelated error with exit code 1.
    """
    import os
    import signal
    import sys

    def stop(signum: int, frame: object) -> None:
        sys.stderr.write("interrupted: nothing was started; run the same command again.\n")
        sys.stderr.flush()
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, stop)


def restore_interrupts() -> None:
    """Give Ctrl-C back to Python (KeyboardInterrupt), as a command's task starts its work."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)
