"""Model servers a run can launch: vLLM, SGLang and the embedded llama.cpp.

``launch`` renders the serve command from config and runs it for the length of a
run (:func:`server_for`, :func:`running`); ``process`` starts, health-checks and
stops the process group. ``python -m jmle_eval.serving print|serve`` is the CLI.
"""

from jmle_eval.serving.launch import (
    ENGINES,
    api_key,
    build_command,
    display_command,
    engine,
    launches,
    prepare,
    running,
    served_name,
    server_for,
)

__all__ = [
    "ENGINES",
    "api_key",
    "build_command",
    "display_command",
    "engine",
    "launches",
    "prepare",
    "running",
    "served_name",
    "server_for",
]
