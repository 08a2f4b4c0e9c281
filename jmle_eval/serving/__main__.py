"""``python -m jmle_eval.serving print|serve [overrides]``: show or run the model server a config describes."""

from __future__ import annotations

import sys

from jmle_eval.errors import UserError
from jmle_eval.serving.launch import display_command, running


def main(argv: list[str] | None = None) -> None:
    """CLI: ``print`` the serve command, or ``serve`` (launch, wait until ready, hold until Ctrl-C/SIGTERM)."""
    from jmle_eval.cli import fail
    from jmle_eval.config import compose

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("print", "serve"):
        fail(
            "usage: python -m jmle_eval.serving print|serve [Hydra overrides], e.g. "
            "`python -m jmle_eval.serving print model=qwen3_32b provider=vllm server.tp=4`."
        )
    try:
        cfg = compose(args[1:])
        if args[0] == "print":
            print(display_command(cfg))
            return
        with running(cfg) as process:
            print(
                f"{process.engine} server ready at {process.base_url} (model {process.served_name}); Ctrl-C stops it."
            )
            sys.stdout.flush()
            process.hold()
    except UserError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        print("server stopped.", file=sys.stderr)


main()
