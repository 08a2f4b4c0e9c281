"""Find a data set's files: a local copy, or a verified download from the pinned upstream commit.

Resolution order for data set ``name`` (its ``folder`` is ``source.folder`` when the card
names one, so that several cards share one upstream copy, else ``name``):

1. ``dataset.path`` (config): a folder holding this data set's files;
2. ``$JMLE_EVAL_DATA_DIR/<folder>/`` (environment): a root laid out like ``shared/datasets``;
3. the download cache ``<cache>/<folder>/<commit>/``, filled from
   ``<base_url>/<repo>/<commit>/<path>`` on first use.

Every file is checked against the hash pinned in ``conf/dataset/<name>.yaml``: its
sha256 (``<path>: <sha256>``), or, where only the upstream git object is known, its
git blob id (``<path>: {git_blob: <sha1>}``, the sha1 of ``blob <size>\0<bytes>``,
which ``git ls-tree <commit>`` lists for every file). Downloads go to a temporary
file that is renamed into place only once its hash matches, so an interrupted or
corrupted download never looks complete. A pin may carry ``if_missing``: the
advice added when that file cannot be found or fetched (e.g. a smaller alternative).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jmle_eval.errors import UserError

ENV_DATA_DIR = "JMLE_EVAL_DATA_DIR"
_CHUNK = 1 << 20


_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "git_blob": re.compile(r"^[0-9a-f]{40}$")}
_LABEL = {"sha256": "sha256", "git_blob": "git blob id"}


@dataclass(frozen=True)
class Pin:
    """The expected hash of one file: ``kind`` sha256 or git_blob, and advice for when it is missing."""

    kind: str
    digest: str
    if_missing: str | None = None

    @property
    def label(self) -> str:
        """Return what the hash is called in messages."""
        return _LABEL[self.kind]


def pin_of(rel: str, spec: Any, where: str = "the data set card") -> Pin:
    """Return the pin of ``source.files.<rel>``: a sha256 string, or ``{sha256|git_blob: <hex>, if_missing: …}``."""
    if isinstance(spec, str):
        spec = {"sha256": spec}
    kinds = [k for k in _HEX if isinstance(spec, Mapping) and k in spec]
    extra = set(spec) - {*_HEX, "if_missing"} if isinstance(spec, Mapping) else set()
    if len(kinds) != 1 or extra or not _HEX[kinds[0]].match(str(spec[kinds[0]])):
        raise UserError(
            f"{where}: source.files.{rel} must be a sha256 (64 hex digits) or {{git_blob: <40 hex digits>}} "
            f"(got {spec!r})."
        )
    note = spec.get("if_missing")
    return Pin(kinds[0], str(spec[kinds[0]]), str(note) if note else None)


@dataclass(frozen=True)
class Source:
    """Where a data set comes from: repo at a pinned commit, and the pinned hash of each file.

    ``folder`` names the data set's folder under ``$JMLE_EVAL_DATA_DIR`` and the download cache
    (default ``name``), so that several cards can read one upstream repository.
    """

    name: str
    repo: str
    commit: str
    files: Mapping[str, Any]
    base_url: str = "https://raw.githubusercontent.com"
    folder: str | None = None

    @property
    def root(self) -> str:
        """Return the folder name of this source's files (the local copy and the cache)."""
        return self.folder or self.name

    def pins(self) -> dict[str, Pin]:
        """Return the pin of every file, checked."""
        return {rel: pin_of(rel, spec, f"Data set '{self.name}'") for rel, spec in self.files.items()}

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


def git_blob_of(path: Path) -> str:
    """Return the git blob id of a file: the hex sha1 of ``blob <size>\0`` followed by its bytes."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def digest_of(path: Path, pin: Pin) -> str:
    """Return the hash of ``path`` of the pin's kind."""
    return sha256_of(path) if pin.kind == "sha256" else git_blob_of(path)


def _advice(pins: Mapping[str, Pin], rels: list[str]) -> str:
    notes = [pins[rel].if_missing for rel in rels if pins[rel].if_missing]
    return "".join(f" {note}" for note in dict.fromkeys(notes))


def resolve(
    source: Source,
    *,
    path: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] = "data",
    verify: bool = True,
    download: bool = True,
) -> Path:
    """Return a folder holding every file of ``source``, verified; download what is missing."""
    pins = source.pins()
    local = Path(path) if path else None
    origin = "dataset.path"
    if local is None and os.environ.get(ENV_DATA_DIR):
        local = Path(os.environ[ENV_DATA_DIR]) / source.root
        origin = f"${ENV_DATA_DIR}"
    if local is not None:
        _check_local(source, pins, local, origin, verify)
        return local
    root = Path(cache_dir) / source.root / source.commit
    for rel, pin in pins.items():
        target = root / rel
        if target.is_file() and (not verify or digest_of(target, pin) == pin.digest):
            continue
        if not download:
            raise UserError(
                f"Data set '{source.name}': {target} is not in the cache and downloads are off. "
                f"Set {ENV_DATA_DIR}=<folder with {source.root}/> or dataset.path=<folder>, "
                f"or allow the download (dataset.download=true).{_advice(pins, [rel])}"
            )
        _download(source, rel, pin, target)
    return root


def _check_local(source: Source, pins: Mapping[str, Pin], folder: Path, origin: str, verify: bool) -> None:
    if not folder.is_dir():
        raise UserError(
            f"Data set '{source.name}': the folder {folder} (from {origin}) does not exist. "
            f"Point {origin} at a folder laid out like shared/datasets/{source.root}/, "
            "or unset it to download the pinned upstream files."
        )
    missing = [rel for rel in pins if not (folder / rel).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise UserError(
            f"Data set '{source.name}': {len(missing)} file(s) missing under {folder} (from {origin}): "
            f"{shown}. Copy the complete data set there (same layout as upstream "
            f"{source.repo}@{source.commit[:7]}, e.g. {source.url(missing[0])}), or unset {origin} to "
            f"download it.{_advice(pins, missing)}"
        )
    if not verify:
        return
    for rel, pin in pins.items():
        got = digest_of(folder / rel, pin)
        if got != pin.digest:
            raise UserError(
                f"Data set '{source.name}': {folder / rel} has {pin.label} {got}, expected {pin.digest} "
                f"(upstream {source.repo}@{source.commit[:7]}). The file is modified or corrupt: "
                "restore it from upstream, or pass dataset.verify=false to use a modified copy knowingly."
            )


def _download(source: Source, rel: str, pin: Pin, target: Path) -> None:
    url = source.url(rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            expected_len = resp.headers.get("Content-Length")
            received = 0
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                received += len(chunk)
            if expected_len is not None and received != int(expected_len):
                raise UserError(
                    f"Download of {url} was cut off after {received} of {expected_len} bytes; "
                    "nothing was kept. Run the command again to retry."
                )
            out.flush()
            os.fsync(out.fileno())
        got = digest_of(tmp, pin)
        if got != pin.digest:
            raise UserError(
                f"Downloaded {url} but its {pin.label} is {got}, expected {pin.digest}; the file was discarded. "
                "Upstream may have changed or the transfer was corrupted: retry, or point "
                f"{ENV_DATA_DIR} at a verified local copy."
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise UserError(
            f"Could not download {url} ({exc}); nothing was kept. Check the network, or use a local "
            f"copy: {ENV_DATA_DIR}=<root holding {source.root}/> or dataset.path=<folder>."
            f"{_advice({rel: pin}, [rel])}"
        ) from exc
    finally:
        if tmp.exists():
            tmp.unlink()
