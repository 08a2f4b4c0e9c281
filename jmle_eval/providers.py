"""What a model and provider card say about the endpoint: the model id to send, the key, who starts the server.

Shared by the predict stage (which sends requests) and serving (which launches
the server those requests go to), so the two can never disagree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any


def served_id(model: Mapping[str, Any], provider: Mapping[str, Any]) -> str:
    """Return the model name the provider's server expects: ``model.provider_ids.<provider>`` or ``model.id``."""
    ids = model.get("provider_ids") or {}
    return str(ids.get(provider.get("name")) or model["id"])


def env_api_key(provider: Mapping[str, Any]) -> str | None:
    """Return the value of the provider's ``api_key_env`` variable, or None when unset or empty."""
    env = provider.get("api_key_env")
    return (os.environ.get(str(env)) or None) if env else None


def launches(server: Mapping[str, Any] | None, provider: Mapping[str, Any]) -> bool:
    """Return whether a run starts its own server (``server.launch`` or the provider's ``always_launch``)."""
    return bool((server or {}).get("launch")) or bool(provider.get("always_launch"))
