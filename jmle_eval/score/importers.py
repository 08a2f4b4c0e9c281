"""Result files of other JMLE benchmarks → our prediction folders, graded by the normal scorer.

* JMLE2026-Bench (naoto-iwase/JMLE2026-Bench ``results/*.json``:
  ``{metadata, summary, results: [{question_id, raw_response, reasoning?, error, …}]}``)
  → ``predictions/jmle2026/jmle2026bench-<file stem>/``; parsed leniently by default.
* IgakuQA baselines (jungokasai/IgakuQA ``baseline_results/{exam}-{block}_{system}.jsonl``:
  ``{problem_id, prediction, explanation}``) → ``predictions/igakuqa/igakuqa_<system>/``,
  one run per system; parsed in ``extracted`` mode by default, which is what
  IgakuQA's exact-match grader did and what reproduces the published numbers.

The raw text is kept (``answer_text``; JMLE2026-Bench ``reasoning`` → ``reasoning_text``);
their own grading is not imported, only recorded in run.json ``source`` for
comparison. Importing twice gives the same files. Source files are recorded by
base name or a path relative to the import folder, never an absolute path.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jmle_eval.datasets.text import normalise_id
from jmle_eval.errors import UserError
from jmle_eval.io import dump_json
from jmle_eval.io import write_file as write_atomic
from jmle_eval.schema import ANSWER_MARKER
from jmle_eval.score.parse import PARSE_MODES

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_IGAKUQA_FILE = re.compile(r"^(\d{3})-([A-F])_(.+)\.jsonl$")


def sanitize(name: str) -> str:
    """Return ``name`` as a safe run-name part: ``openai/gpt-5.2`` → ``openai_gpt-5.2``."""
    return _UNSAFE.sub("_", name).strip("_") or "run"


def _expand(spec: Any, what: str) -> list[Path]:
    """Return the files named by a path, a glob, a folder or a list of them (sorted, unique)."""
    items = spec if isinstance(spec, list | tuple) else [spec]
    found: list[Path] = []
    for item in map(str, items):
        if glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item))
        elif Path(item).is_dir():
            matches = sorted(Path(item).glob("*.json"))
        else:
            matches = [Path(item)] if Path(item).is_file() else []
        if not matches:
            raise UserError(f"{what}: '{item}' matches no file. Give a result file, a folder or a glob of them.")
        found += matches
    return sorted(set(found))


def _load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UserError(f"{what}: {path} cannot be read as JSON ({exc}). Pass an unmodified result file.") from exc


def _text_or_none(value: Any) -> str | None:
    """Return ``value`` as text for a prediction record's text field (a number becomes its digits)."""
    return None if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _fingerprint(payload: Any) -> str:
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
    return "import-" + hashlib.sha256(blob).hexdigest()[:16]


def _write_run(run_dir: Path, info: dict[str, Any], predictions: Sequence[dict[str, Any]]) -> None:
    """Write run.json and one file per question; remove prediction files the import no longer has."""
    old = run_dir / "run.json"
    if old.is_file():
        try:
            provider = json.loads(old.read_bytes()).get("provider")
        except (OSError, ValueError, AttributeError):
            provider = None
        if provider != "import":
            raise UserError(
                f"{run_dir} holds a run that was not imported (run.json provider '{provider}'); "
                "the import would overwrite it. Move that folder away or rename it first."
            )
    write_atomic(old, dump_json(info))
    keep = {f"{p['question_id']}.json" for p in predictions}
    for stale in run_dir.glob("*.json"):
        if stale.name != "run.json" and stale.name not in keep:
            stale.unlink()
    for record in predictions:
        path = run_dir / f"{record['question_id']}.json"
        text = dump_json(record)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)


def _run_info(run: str, dataset: str, fingerprint: str, **fields: Any) -> dict[str, Any]:
    """Return the run.json of an imported run, with the data set's version today (graded with today's key)."""
    return {
        "format": 1,
        "run": run,
        "dataset": dataset,
        "dataset_version": _dataset_version(dataset),
        "fingerprint": fingerprint,
        "provider": "import",
        "config": {"prompt": {"answer_marker": ANSWER_MARKER}},
        **fields,
    }


def _dataset_version(name: str) -> str | None:
    from jmle_eval.config import load_card
    from jmle_eval.datasets import dataset_version

    try:
        return dataset_version(load_card(name))
    except (UserError, KeyError):
        return None


def _model(run: str, model_id: Any, display_name: Any, vision: bool, effort: Any) -> dict[str, Any]:
    """Return run.json's ``model`` of an imported run (no price: their cost is not known)."""
    price = {"input": None, "output": None, "source": None}
    return dict(name=run, id=model_id, display_name=display_name, vision=vision, reasoning_effort=effort, price=price)


def _prediction(qid: str, answer: Any, model: Any, fingerprint: str, source: str, **fields: Any) -> dict[str, Any]:
    """Return an imported prediction record: the raw answer text, no usage, no latency."""
    return {
        "question_id": qid,
        "status": "ok",
        "answer_text": answer,
        "reasoning_text": None,
        "finish_reason": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0},
        "latency_s": None,
        "attempts": 1,
        "error": None,
        "model": model,
        "fingerprint": fingerprint,
        "created_at": None,
        "source": source,
        **fields,
    }


def _bench_records(doc: Mapping[str, Any], fingerprint: str, source: str) -> list[dict[str, Any]]:
    """Return the prediction records of one JMLE2026-Bench result file."""
    meta = doc.get("metadata") or {}
    records = []
    for r in doc["results"]:
        failed = bool(r.get("error"))
        records.append(
            _prediction(
                normalise_id(str(r["question_id"])),
                _text_or_none(r.get("raw_response")),
                _text_or_none(meta.get("model")),
                fingerprint,
                source,
                status="error" if failed else "ok",
                reasoning_text=_text_or_none(r.get("reasoning")),
                error=str(r["error"]) if failed else None,
                created_at=_text_or_none(meta.get("timestamp")),
            )
        )
    return records


def _import_bench_file(path: Path, predictions_dir: Path, mode: str) -> tuple[str, str]:
    """Import one JMLE2026-Bench result file as ``predictions/jmle2026/jmle2026bench-<stem>/``."""
    doc = _load_json(path, "import.jmle2026_bench")
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list) or "metadata" not in doc:
        raise UserError(
            f"import.jmle2026_bench: {path} is not a JMLE2026-Bench result file "
            "(expected {metadata, summary, results: [...]})."
        )
    meta = doc.get("metadata") or {}
    run = f"jmle2026bench-{sanitize(path.stem)}"
    settings = {k: meta.get(k) for k in ("model", "image_mode", "extra_body", "base_url")}
    fingerprint = _fingerprint({"source": "jmle2026_bench", **settings})
    extra = meta.get("extra_body") or {}
    effort = extra.get("reasoning_effort") if isinstance(extra, dict) else None
    vision = meta.get("image_mode") == "vision"
    info = _run_info(
        run,
        "jmle2026",
        fingerprint,
        fingerprint_inputs=settings,
        model=_model(run, meta.get("model"), meta.get("display_name") or meta.get("model"), vision, effort),
        image_mode=meta.get("image_mode") or "blind",
        prompt_version="jmle2026-bench",
        parse_mode=mode,
        created_at=meta.get("timestamp"),
        source={"format": "jmle2026_bench", "file": path.name, "summary": doc.get("summary")},
    )
    _write_run(predictions_dir / "jmle2026" / run, info, _bench_records(doc, fingerprint, path.name))
    return "jmle2026", run


def import_jmle2026_bench(spec: Any, predictions_dir: Path, parse_mode: str | None = None) -> list[tuple[str, str]]:
    """Import JMLE2026-Bench result files; return the (dataset, run) pairs written."""
    mode = parse_mode or "lenient"
    return [_import_bench_file(path, predictions_dir, mode) for path in _expand(spec, "import.jmle2026_bench")]


def find_igakuqa_files(folder: Path) -> dict[str, list[Path]]:
    """Return the IgakuQA baseline files under ``folder`` grouped by system name."""
    systems: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(folder.rglob("*.jsonl")):
        m = _IGAKUQA_FILE.match(path.name)
        if m:
            systems[m.group(3)].append(path)
    return dict(systems)


def _igakuqa_records(root: Path, files: Sequence[Path], system: str, fingerprint: str) -> list[dict[str, Any]]:
    """Return one system's prediction records from its baseline files, in question-id order."""
    records: dict[str, dict[str, Any]] = {}
    for path in files:
        rel = path.relative_to(root).as_posix()
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                qid = normalise_id(str(row["problem_id"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise UserError(
                    f"import.igakuqa_baseline: {path} line {lineno} is not a baseline record ({exc})."
                ) from exc
            prediction = row.get("prediction")
            record = _prediction(qid, prediction, system, fingerprint, f"{rel}:{lineno}")
            if row.get("explanation") not in (None, prediction):
                record["explanation"] = row["explanation"]
            records[qid] = record
    return [records[q] for q in sorted(records)]


def _import_igakuqa_system(root: Path, files: Sequence[Path], system: str, predictions_dir: Path, mode: str) -> str:
    """Import one IgakuQA system's baseline files as ``predictions/igakuqa/igakuqa_<system>/``; return the run."""
    run = f"igakuqa_{sanitize(system)}"
    digests = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    fingerprint = _fingerprint({"source": "igakuqa_baseline", "system": system})
    info = _run_info(
        run,
        "igakuqa",
        fingerprint,
        fingerprint_inputs={"system": system},
        model=_model(run, system, f"IgakuQA {system}", False, None),
        image_mode="blind",
        prompt_version="igakuqa-baseline",
        parse_mode=mode,
        created_at=None,
        source={"format": "igakuqa_baseline", "system": system, "files": digests},
    )
    _write_run(predictions_dir / "igakuqa" / run, info, _igakuqa_records(root, files, system, fingerprint))
    return run


def import_igakuqa_baseline(
    folder: str | Path, systems: Sequence[str] | None, predictions_dir: Path, parse_mode: str | None = None
) -> list[tuple[str, str]]:
    """Import IgakuQA baseline results, one run per system; return the (dataset, run) pairs written."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"import.igakuqa_baseline: {root} is not a folder. Point it at IgakuQA's baseline_results/.")
    found = find_igakuqa_files(root)
    if not found:
        raise UserError(f"import.igakuqa_baseline: no {{exam}}-{{block}}_{{system}}.jsonl files under {root}.")
    wanted = list(systems) if systems else sorted(found)
    unknown = [s for s in wanted if s not in found]
    if unknown:
        raise UserError(
            f"import.system: no files for {', '.join(unknown)} under {root}; found: {', '.join(sorted(found))}."
        )
    mode = parse_mode or "extracted"
    return [("igakuqa", _import_igakuqa_system(root, found[s], s, predictions_dir, mode)) for s in wanted]


def run_imports(settings: Mapping[str, Any], predictions_dir: Path) -> list[tuple[str, str]]:
    """Run the imports the ``import.*`` settings ask for; return the (dataset, run) pairs written."""
    mode = settings.get("parse")
    if mode is not None and mode not in PARSE_MODES:
        raise UserError(f"import.parse={mode!r} is not one of {', '.join(PARSE_MODES)} (or null for the default).")
    written = []
    if settings.get("jmle2026_bench"):
        written += import_jmle2026_bench(settings["jmle2026_bench"], predictions_dir, mode)
    if settings.get("igakuqa_baseline"):
        system = settings.get("system")
        systems = [str(s) for s in system] if isinstance(system, list | tuple) else [str(system)] if system else None
        written += import_igakuqa_baseline(settings["igakuqa_baseline"], systems, predictions_dir, mode)
    elif settings.get("system"):
        raise UserError("import.system only applies with import.igakuqa_baseline=<folder>.")
    return written
