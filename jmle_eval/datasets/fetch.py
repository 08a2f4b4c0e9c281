"""Find a data set's files: a local copy, or a verified download from the pinned upstream commit.

Resolution order for data set ``name``:

1. ``dataset.path`` (config): a folder holding this data set's files;
2. ``$JMLE_EVAL_DATA_DIR/<name>/`` (environment): a root laid out like ``shared/datasets``;
3. the download cache ``<cache>/<name>/<commit>/``, filled from
   ``<base_url>/<repo>/<commit>/<path>`` on first use.

Every file is checked against the sha256 pinned in ``conf/dataset/<name>.yaml``.
Downloads go to a temporary file that is renamed into place only once its hash
matches, so an interrupted or corrupted download never looks complete.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from jmle_eval.errors import UserError

ENV_DATA_DIR = "JMLE_EVAL_DATA_DIR"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Source:
    """Where a data set comes from: repo at a pinned commit, and the sha256 of each file."""

    name: str
    repo: str
    commit: str
    files: Mapping[str, str]
    base_url: str = "https://raw.githubusercontent.com"

    def url(self, path: str) -> str:
        """Return the raw download URL of one file at the pinned commit."""
        return f"{self.base_url.rstrip('/')}/{self.repo}/{self.commit}/{path}"


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(
    source: Source,
    *,
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] = "data",
    verify: bool = True,
    download: bool = True,
) -> Path:
    """Return a folder holding every file of ``source``, verified; download what is missing."""
    local = Path(path) if path else None
    origin = "dataset.path"
    if local is None and os.environ.get(ENV_DATA_DIR):
        local = Path(os.environ[ENV_DATA_DIR]) / source.name
        origin = f"${ENV_DATA_DIR}"
    if local is not None:
        _check_local(source, local, origin, verify)
        return local
    root = Path(cache_dir) / source.name / source.commit
    for rel, sha in source.files.items():
        target = root / rel
        if target.is_file() and (not verify or sha256_of(target) == sha):
            continue
        if not download:
            raise UserError(
                f"Data set '{source.name}': {target} is not in the cache and downloads are off. "
                f"Set {ENV_DATA_DIR}=<folder with {source.name}/> or dataset.path=<folder>, "
                "or allow the download (dataset.download=true)."
            )
        _download(source, rel, sha, target)
    return root


def _check_local(source: Source, folder: Path, origin: str, verify: bool) -> None:
    if not folder.is_dir():
        raise UserError(
            f"Data set '{source.name}': the folder {folder} (from {origin}) does not exist. "
            f"Point {origin} at a folder laid out like shared/datasets/{source.name}/, "
            "or unset it to download the pinned upstream files."
        )
    missing = [rel for rel in source.files if not (folder / rel).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(
            f"Data set '{source.name}': {len(missing)} file(s) missing under {folder} (from {origin}): "
            f"{shown}. Copy the complete data set there (same layout as upstream "
            f"{source.repo}@{source.commit[:7]}), or unset {origin} to download it."
        )
    if not verify:
        return
    for rel, sha in source.files.items():
        got = sha256_of(folder / rel)
        if got != sha:
            raise UserError(
                f"Data set '{source.name}': {folder / rel} has sha256 {got}, expected {sha} "
                f"(upstream {source.repo}@{source.commit[:7]}). The file is modified or corrupt: "
                "restore it from upstream, or pass dataset.verify=false to use a modified copy knowingly."
            )


def _download(source: Source, rel: str, sha: str, target: Path) -> None:
    url = source.url(rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            expected_len = resp.headers.get("Content-Length")
            received = 0
            while chunk := resp.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
            if expected_len is not None and received != int(expected_len):
                raise UserError(
                    f"Download of {url} was cut off after {received} of {expected_len} bytes; "
                    "nothing was kept. Run the command again to retry."
                )
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != sha:
            raise UserError(
                f"Downloaded {url} but its sha256 is {got}, expected {sha}; the file was discarded. "
                "Upstream may have changed or the transfer was corrupted: retry, or point "
                f"{ENV_DATA_DIR} at a verified local copy."
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise UserError(
            f"Could not download {url} ({exc}); nothing was kept. Check the network, or use a local "
            f"copy: {ENV_DATA_DIR}=<root holding {source.name}/> or dataset.path=<folder>."
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
