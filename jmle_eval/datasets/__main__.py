"""Inspect a data set: ``python -m jmle_eval.datasets {stats|show|export} [overrides…]``.

python -m jmle_eval.datasets stats dataset=igakuqa
python -m jmle_eval.datasets stats dataset=medxpertqa_sampled   # by subset and attribute, options, images
python -m jmle_eval.datasets show 120A-16                 # as the model sees it (image_mode=blind)
python -m jmle_eval.datasets show 120A-16 image_mode=vision
python -m jmle_eval.datasets show test-00000 dataset=medqa   # other sets: name the data set
python -m jmle_eval.datasets export dataset=igakuqa out=data/export/igakuqa   # Hugging Face datasets (parquet)
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

from jmle_eval.config import compose, load_questions, to_plain
from jmle_eval.errors import UserError
from jmle_eval.schema import ImageMode, Question

USAGE = __doc__ or ""


def _table(title: str, counts: Counter, total: int) -> str:
    width = max([12, *(len(str(key)) for key in counts)])
    rows = [f"{title}"] + [f"  {key!s:<{width}} {n:>5}  {100 * n / total:5.1f} %" for key, n in sorted(counts.items())]
    return "\n".join(rows)


def choice_stats(questions: list[Question]) -> str:
    """Return counts of a set without exams: by subset and each attribute, options, type and image need."""
    n = len(questions)
    needing = [q for q in questions if q.requires_image]
    names = sorted({key for q in questions for key in q.attributes}, key=lambda k: (k != "subset", k))
    lines = [
        f"{questions[0].dataset}: {n} questions, {sum(q.points for q in questions)} points, {len(needing)} need an "
        f"image ({sum(bool(q.images) for q in needing)} with image files, {sum(len(q.images) for q in questions)} "
        "image references)",
        *(_table(name, Counter(q.attributes.get(name, "(none)") for q in questions), n) for name in names),
        _table("options", Counter(len(q.choices) for q in questions), n),
        _table("type", Counter(q.type if q.type != "multi" else f"multi-{q.select}" for q in questions), n),
        _table("image", Counter("requires image" if q.requires_image else "text only" for q in questions), n),
    ]
    return "\n".join(lines)


def stats(questions: list[Question]) -> str:
    """Return counts per exam, block, section, type, image need, points and serial groups."""
    if questions[0].exam is None:
        return choice_stats(questions)
    n = len(questions)
    images = sum(len(q.images) for q in questions)
    lines = [
        f"{questions[0].dataset}: {n} questions, {sum(q.points for q in questions)} points, "
        f"{sum(q.points == 0 for q in questions)} excluded (0 points), {images} image references "
        f"({len({i for q in questions for i in q.images})} files)",
        _table("exam (year)", Counter(f"{q.exam} ({q.year})" for q in questions), n),
        _table("block", Counter(f"{q.exam}{q.block}" for q in questions), n),
        _table("section", Counter(q.section for q in questions), n),
        _table("type", Counter(q.type if q.type != "multi" else f"multi-{q.select}" for q in questions), n),
        _table("image", Counter("requires image" if q.requires_image else "text only" for q in questions), n),
        _table("points", Counter(q.points for q in questions), n),
        f"serial (shared case): {sum(q.case_id is not None for q in questions)} questions in "
        f"{len({q.case_id for q in questions if q.case_id})} groups",
        f"alternate answers: {sum(len(q.accepted_answers) > 1 for q in questions)}; "
        f"all credited: {sum(q.all_credited for q in questions)}; "
        f"kinki labelled: {sum(bool(q.kinki) for q in questions)}; "
        f"human accuracy known: {sum(q.human_accuracy is not None for q in questions)}",
    ]
    return "\n".join(lines)


def show(question: Question, image_mode: str, prompt: Mapping[str, Any] | None = None, language: str = "ja") -> str:
    """Return one question as the model sees it (the run's prompt settings), followed by its key and metadata."""
    from jmle_eval.predict.prompts import answer_marker, build_messages

    mode = image_mode if image_mode in ("blind", "vision", "skip") else "blind"
    prompt = prompt or {}
    version, marker = str(prompt.get("version") or "v1"), answer_marker(prompt, language)
    answer_format = str(prompt.get("answer_format") or "text")  # the model card's default: SmolLM2 asks for JSON
    shown: ImageMode = "vision" if mode == "vision" else "blind"
    messages = build_messages(question, shown, version, marker, language, answer_format)
    user = messages[1]["content"]
    text = user if isinstance(user, str) else user[0]["text"]
    meta = [
        f"--- system ---\n{messages[0]['content']}",
        f"--- user ---\n{text}",
        "--- key ---",
        f"accepted: {' or '.join(','.join(a) for a in question.accepted_answers)}"
        + ("  (all candidates credited)" if question.all_credited else ""),
        (
            f"exam {question.exam} ({question.year}), block {question.block}, number {question.number}, "
            f"section {question.section}, "
            if question.exam is not None
            else ""
        )
        + f"type {question.type}, select {question.select}, points {question.points}",
    ]
    if question.attributes:
        meta.append(", ".join(f"{key}: {value}" for key, value in sorted(question.attributes.items())))
    if question.requires_image and not question.images:
        meta.append("image: needed, no file (dataset.images_dir=<folder> supplies them)")
    if question.images:
        meta.append(f"images: {', '.join(question.images)}")
    if question.kinki:
        meta.append(f"kinki (unofficial): {','.join(question.kinki)}")
    if question.human_accuracy is not None:
        meta.append(f"human accuracy: {question.human_accuracy} %")
    if question.category:
        meta.append(f"category: {question.category}")
    for note in question.notes:
        meta.append(f"note: {note}")
    return "\n".join(meta)


def export(questions: list[Question], out: str) -> str:
    """Write the normalised questions as a Hugging Face ``datasets`` folder; return its path."""
    from datasets import Dataset

    rows = [q.model_dump(mode="json") for q in questions]
    for row in rows:  # Arrow needs one type per column: tuples → "letter\ttext" strings, attributes likewise
        row["choices"] = [f"{letter}\t{text}" for letter, text in row["choices"]]
        row["attributes"] = [f"{key}\t{value}" for key, value in sorted(row["attributes"].items())]
    Dataset.from_list(rows).save_to_disk(out)
    return out


def _card_for_exam(exam: str) -> str:
    """Return the name of the data set card whose exams include ``exam`` (e.g. '120')."""
    from omegaconf import DictConfig, OmegaConf

    from jmle_eval.config import CONF_DIR

    for path in sorted((CONF_DIR / "dataset").glob("*.yaml")):
        card = OmegaConf.load(path)
        if isinstance(card, DictConfig) and exam in (card.get("exams") or {}):
            return path.stem
    raise UserError(f"No data set card in conf/dataset has exam {exam}; pass dataset=<name> explicitly.")


def _jmle_id(qid: str, *, strict: bool = True) -> str:
    """Return a JMLE id in ``120A-1`` form; not one: raise UserError (strict), else return it unchanged."""
    from jmle_eval.datasets.text import normalise_id

    try:
        return normalise_id(qid)
    except ValueError as exc:
        if not strict:
            return qid
        raise UserError(f"{exc}; for a question of another data set pass dataset=<name>.") from exc


def _agent(command: str, target: str, cfg: dict[str, Any]) -> int:
    """Print an agent set's task counts (stats) or one task's first message (show)."""
    from jmle_eval.agent.plan import task_types
    from jmle_eval.agent.tasks import first_message, load_functions, load_tasks, task_stats
    from jmle_eval.datasets import folder

    local = folder(cfg["dataset"], cfg["paths"]["data"])
    tasks = load_tasks(local, task_types(cfg["dataset"]))
    if command == "stats":
        print(task_stats(tasks))
    elif command == "show":
        task = next((t for t in tasks if t.id == target), None)
        if task is None:
            raise UserError(f"No task {target} in data set '{cfg['dataset']['name']}' (ids look like task3_12).")
        print(first_message(task, load_functions(local), str(cfg["fhir"]["base_url"])))
        print(f"--- key ---\ntype {task.type} ({task.kind}), patient {task.mrn}, reference {task.sol}")
    else:
        raise UserError("export is for question sets; MedAgentBench's task file is JSON already.")
    return 0


def main(argv: list[str]) -> int:
    """Run one inspection command; return the exit code."""
    if not argv or argv[0] not in ("stats", "show", "export"):
        print(USAGE, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    target = ""
    if command == "show":
        if not rest or "=" in rest[0]:
            raise UserError("show needs a question id, e.g. `python -m jmle_eval.datasets show 120A-16`.")
        target, rest = rest[0], rest[1:]
    out = next((a.split("=", 1)[1] for a in rest if a.startswith("out=")), None)
    rest = [a for a in rest if not a.startswith("out=")]
    if target and not any(a.startswith("dataset=") for a in rest):
        target = _jmle_id(target)
        rest = [f"dataset={_card_for_exam(target[:3])}", *rest]
    cfg = compose(rest)
    if cfg.dataset.get("grader") == "agent":  # MedAgentBench: tasks, not questions
        return _agent(command, target, to_plain(cfg))
    questions = load_questions(cfg)
    if command == "stats":
        print(stats(questions))
    elif command == "show":
        found = [q for q in questions if q.id in (target, _jmle_id(target, strict=False))]
        if not found:
            raise UserError(f"No question {target} in data set '{cfg.dataset.name}' (with its current filters).")
        from jmle_eval.predict.prompts import language_of

        prompt, card = to_plain(cfg.prompt), to_plain(cfg.dataset)
        print(show(found[0], str(cfg.image_mode), prompt, language_of(prompt, card)))
    else:
        if not out:
            raise UserError("export needs out=<folder>, e.g. out=data/export/igakuqa.")
        print(f"wrote {export(questions, out)} ({len(questions)} questions)")
    return 0


if __name__ == "__main__":
    from jmle_eval.cli import run_module

    run_module(main)
