"""Everything judge decides before the first request: the rubric, the prediction runs, what is left to judge.

:func:`plans` turns a resolved ``conf/judge.yaml`` into one :class:`JudgePlan`
per prediction run, each a :class:`~jmle_eval.predict.job.Job` that the predict
session runs unchanged: same client, store, lock, writer and exit codes. A judge
run folder ``judgments/<dataset>/<prediction run>/<judge run>/`` has its own
``run.json`` whose fingerprint covers the judge model and its parameters, the
rubric (name, version, kind, prompt hash) and the prediction run; each judgment
records the sha256 of the prediction file it judged, so a re-predicted question
is judged again. It contacts no server, so a bad command fails in a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jmle_eval import datasets, io, providers
from jmle_eval.errors import UserError
from jmle_eval.judge import rubrics
from jmle_eval.judge.rubrics import Rubric
from jmle_eval.predict import store
from jmle_eval.predict.job import Job, prediction_record
from jmle_eval.predict.plan import api_key, model_inputs, model_summary, request_template, select
from jmle_eval.predict.settings import Settings, check_output_folder, read_settings, whole
from jmle_eval.schema import Judgment, Question, judgment_problem
from jmle_eval.score.runs import SELECTION, run_card

if TYPE_CHECKING:
    from jmle_eval.predict.replies import Reply

__all__ = ["JudgeItem", "JudgePlan", "plans"]


@dataclass(frozen=True)
class JudgeItem:
    """One prediction to judge: its question, its reply text and the sha256 of its file."""

    id: str
    question: Question
    response: str
    prediction_sha256: str


@dataclass
class JudgePlan(Job):
    """One judge run over one prediction run."""

    what = ("prediction", "judged")

    rubric: Rubric | None = None
    prediction_run: str = ""
    structured: str = "none"
    reread_attempts: int = 3
    digests: dict[str, str] = field(default_factory=dict)
    """question id → sha256 of its prediction file now (a judgment of an older file is stale)."""

    @property
    def _rubric(self) -> Rubric:
        assert self.rubric is not None
        return self.rubric

    def _current(self, qid: str, record: Mapping[str, Any]) -> bool:
        return record.get("prediction_sha256") == self.digests.get(qid)

    def done_ids(self) -> set[str]:
        """Return the ids with a judgment of the prediction file as it is now (an error too, without retry)."""
        return store.finished_ids(
            self.run_dir, retry_errors=self.settings.retry_errors, check=judgment_problem, current=self._current
        )

    def request(self, item: JudgeItem) -> bytes:
        """Return the request body: the judge model's template, the rubric's messages, the reply schema."""
        body = {**self.body_template, "messages": rubrics.messages(self._rubric, item.question, item.response)}
        if self.structured != "none":
            body["response_format"] = rubrics.response_format(self._rubric, self.structured)
        return json.dumps(body, ensure_ascii=False).encode()

    def unreadable(self, item: JudgeItem, reply: Reply) -> str | None:
        """Return why the judge's reply cannot be read as the rubric's object (it is asked again), or None."""
        return rubrics.read_reply(reply.answer_text, self._rubric, item.question)[1]

    def to_record(self, item: JudgeItem, reply: Reply) -> Judgment:
        """Return the judgment file: the judge's reply as a prediction, plus the rubric and the validated grade."""
        fields = prediction_record(self, item.id, reply).model_dump(exclude_unset=True)
        judgment = None
        if fields["status"] == "ok":
            judgment, problem = rubrics.read_reply(fields.get("answer_text"), self._rubric, item.question)
            if judgment is None:
                fields["status"] = "error"
                fields["error"] = f"unreadable judge reply after {fields.get('attempts', 0)} attempt(s): {problem}"
        fields.update(
            rubric=self._rubric.name,
            kind=self._rubric.kind,
            prediction_sha256=item.prediction_sha256,
            judgment=judgment,
        )
        return Judgment.model_validate(fields)


def _structured(setting: Any, provider: Mapping[str, Any]) -> str:
    """Return how the request asks for the reply schema (``rubrics.FORMATS``), from the judge and provider settings."""
    name = "judge.structured_output"
    if setting == "auto":
        setting, name = provider.get("structured_output", "json_schema"), "provider.structured_output"
    if setting not in rubrics.FORMATS:
        raise UserError(f"{name}={setting!r} is not one of {', '.join(rubrics.FORMATS)} (judge: also auto).")
    return str(setting)


def _repeated(run_dir: Path) -> bool:
    """Return whether a prediction run is a ``run.repeats`` run (an unreadable header counts as not)."""
    try:
        return ((store.read_header(run_dir) or {}).get("repeats") or 1) > 1
    except UserError:
        return False


def prediction_runs(cfg: Mapping[str, Any]) -> list[Path]:
    """Return the prediction run folders to judge (``runs`` or every one); raise UserError when there are none."""
    name = cfg["dataset"]["name"]
    root = Path(str(cfg["paths"]["predictions"])) / name
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []
    if not found:
        raise UserError(
            f"There are no predictions to judge: {root} holds no run folders. Run predict.py dataset={name} "
            "first, or point paths.predictions at the folder that holds <dataset>/<run>/."
        )
    wanted = cfg.get("runs")
    if wanted is None:  # every run that judge.py can judge: a repeats run's samples are not judged (yet)
        return [p for p in found if not _repeated(p)] or found
    wanted = [str(r) for r in (wanted if isinstance(wanted, list) else [wanted])]
    unknown = [r for r in wanted if r not in {p.name for p in found}]
    if unknown or not wanted:
        raise UserError(
            f"runs={wanted} names no prediction run of {name} ({', '.join(unknown) or 'empty list'}). "
            f"Available runs: {', '.join(p.name for p in found)}."
        )
    return [p for p in found if p.name in wanted]


def _items(
    pred_dir: Path, questions: list[Question], rubric: Rubric, settings: Settings
) -> tuple[list[JudgeItem], dict[str, str]]:
    """Return the answered predictions of a run that the rubric can judge (run.ids/limit/shard applied)."""
    digests: dict[str, str] = {}
    records = store.read_predictions(pred_dir, digests=digests)
    answered = [
        q
        for q in questions
        if q.id in records
        and records[q.id].get("status") == "ok"
        and (records[q.id].get("answer_text") or "").strip()
        and rubric.applies(q)
    ]
    chosen = select(answered, "blind", ids=settings.ids, limit=settings.limit, shard=settings.shard)
    items = [JudgeItem(q.id, q, records[q.id]["answer_text"], digests[q.id]) for q in chosen]
    return items, digests


def _header(cfg: Mapping[str, Any], inputs: dict[str, Any], prediction_run: str, secrets: list[str]) -> dict[str, Any]:
    """Return the judge run's ``run.json``: what judged what, and the fingerprint of everything that changes it."""
    rubric = cfg["rubric"]
    return {
        "format": store.FORMAT,
        "stage": "judge",
        "run": str(cfg["run"]["name"]),
        "dataset": cfg["dataset"]["name"],
        "prediction_run": prediction_run,
        "prediction_fingerprint": inputs["prediction.fingerprint"],
        "rubric": {
            "name": rubric["name"],
            "version": rubric["version"],
            "kind": rubric["kind"],
            "prompt_hash": inputs["rubric.prompt_hash"],
        },
        "fingerprint": store.fingerprint(inputs),
        "fingerprint_inputs": inputs,
        "model": model_summary(cfg["model"], inputs["model.id"]),
        "provider": cfg["provider"]["name"],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": io.scrub(dict(cfg), secrets),
    }


def _plan_run(cfg: Mapping[str, Any], pred_dir: Path, common: dict[str, Any], questions: list[Question]) -> JudgePlan:
    """Return the judge plan of one prediction run; refuse a judge run folder made with other settings."""
    rubric: Rubric = common["rubric"]
    pred_header = store.read_header(pred_dir) or {}
    if (pred_header.get("repeats") or 1) > 1:
        raise UserError(
            f"{pred_dir} is a run.repeats={pred_header['repeats']} run (files <id>.r<i>.json); judge.py judges "
            "one-sample runs only for now. Judge a one-sample run of the model, or name the runs to judge with "
            "runs='[...]' so that this one is left out."
        )
    inputs = {
        **model_inputs(cfg["model"], cfg["provider"]),
        "rubric.name": rubric.name,
        "rubric.version": rubric.version,
        "rubric.kind": rubric.kind,
        "rubric.prompt_hash": rubric.prompt_hash,
        "response_format": common["structured"],
        "dataset.name": cfg["dataset"]["name"],
        "dataset.version": datasets.dataset_version(cfg["dataset"]),
        "prediction.run": pred_dir.name,
        "prediction.fingerprint": pred_header.get("fingerprint"),
    }
    run_dir = Path(str(cfg["paths"]["judgments"])) / cfg["dataset"]["name"] / pred_dir.name / str(cfg["run"]["name"])
    check_output_folder(run_dir)
    header = _header(cfg, inputs, pred_dir.name, common["secrets"])
    store.check_header(run_dir, header)  # refuse a mismatch before contacting a server
    items, digests = _items(pred_dir, questions, rubric, common["settings"])
    job = JudgePlan(
        run_name=f"{pred_dir.name}/{cfg['run']['name']}",
        run_dir=run_dir,
        model=dict(cfg["model"]),
        provider=dict(cfg["provider"]),
        served_id=inputs["model.id"],
        body_template=request_template(cfg["model"], cfg["provider"]),
        header=header,
        api_key=common["key"],
        secrets=common["secrets"],
        settings=common["settings"],
        launch=providers.launches(cfg.get("server"), cfg["provider"]),
        rubric=rubric,
        prediction_run=pred_dir.name,
        structured=common["structured"],
        reread_attempts=common["reread"],
        digests=digests,
    )
    job.selected = len(items)
    done = job.done_ids() if run_dir.is_dir() else set()
    job.todo = [item for item in items if item.id not in done]
    return job


def plans(cfg: Mapping[str, Any]) -> list[JudgePlan]:
    """Return one plan per prediction run to judge; raise UserError for any setting or input a user got wrong."""
    settings = read_settings(cfg)
    rubric = rubrics.load(cfg["rubric"])
    key, secrets = api_key(cfg["provider"])
    judge = cfg.get("judge") or {}
    common = {
        "settings": settings,
        "rubric": rubric,
        "key": key,
        "secrets": secrets,
        "structured": _structured(judge.get("structured_output", "auto"), cfg["provider"]),
        "reread": whole(judge.get("reread_attempts", 3), "judge.reread_attempts", 1, "replies per judgment"),
    }
    runs = prediction_runs(cfg)
    loaded: dict[str, list[Question]] = {}
    jobs = []
    for run in runs:  # each run is judged on the question set it was asked (a sample, a subset: run.json)
        card = run_card(cfg["dataset"], run)
        tag = json.dumps({k: card.get(k) for k in SELECTION}, sort_keys=True)
        if tag not in loaded:
            loaded[tag] = datasets.load(card, data_dir=cfg["paths"]["data"])
        jobs.append(_plan_run({**cfg, "dataset": card}, run, common, loaded[tag]))
    if not any(job.selected for job in jobs):
        what = "answered prediction" if rubric.applies_to == "any" else "answered multiple-choice prediction"
        raise UserError(
            f"There are no predictions to judge: the run(s) {', '.join(r.name for r in runs)} of "
            f"{cfg['dataset']['name']} hold no {what} that rubric={rubric.name} can grade (with run.ids/limit/shard "
            "applied). Run predict.py first (only status ok answers are judged), or pick other runs."
        )
    return jobs
