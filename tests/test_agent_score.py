"""Agent runs are scored through the real parts: episodes played by run_episode, task files, the grader and the
loopback FHIR server, then scored lines, summaries, the leaderboard and the heat map.

Two runs of MedAgentBench tasks of types 1, 3 and 4 (plus one type-2 file outside the selection): alpha has a
right and a wrong answer, an invalid action, the round limit, a failed episode, a corrupt file, a file of other
settings and a foreign file; beta was told another FHIR address than the one scoring reads.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from jmle_eval.agent import rules
from jmle_eval.agent.episode import Episode, run_episode
from jmle_eval.agent.fhir import FhirClient, FhirUnavailable
from jmle_eval.agent.records import EpisodeRecord
from jmle_eval.agent.scoring import AgentSummary, print_agent_results, score_agent_dataset
from jmle_eval.agent.tasks import AgentTask, default_root, load_tasks
from jmle_eval.config import load_card
from jmle_eval.predict.replies import Reply
from jmle_eval.score.runs import Skipped
from jmle_eval.testing.fhirdata import DAY, H, observation, stamp
from jmle_eval.testing.fhirserver import FhirServer, running
from jmle_eval.testing.fhirstore import FhirStore
from tests.conftest import DATA_DIR

USAGE = {"prompt_tokens": 100, "completion_tokens": 10}
PRICE = {"input": 1.0, "output": 2.0, "source": "test"}  # USD per million tokens
ELSEWHERE = "http://localhost:8080/fhir/"  # the address beta's agent was given
BOOTSTRAP = {"samples": 500, "seed": 0}
MAGNESIUM = {"S3032536": [(20 * H, 1.4), (3 * DAY, 1.1), (3 * H, 2.1)], "S2863714": [(DAY + 1, 1.2)]}  # task4_1, 4_2


@pytest.fixture(scope="module")
def tasks() -> dict[str, AgentTask]:
    return {t.id: t for t in load_tasks(default_root())}


@pytest.fixture(scope="module")
def base():
    store, ids = FhirStore(), iter(range(1, 100))
    for mrn, points in MAGNESIUM.items():
        for minutes, value in points:
            store.put(observation(str(next(ids)), mrn, "MG", stamp(minutes), value))
    with running(FhirServer(store, max_count=2)) as url:  # two results a page: the grader must follow next links
        yield url


def _play(task: AgentTask, replies: list[str | Reply], base: str) -> Episode:
    async def complete(messages: list[dict[str, Any]]) -> Reply:
        reply = replies[min(sum(m["role"] == "assistant" for m in messages), len(replies) - 1)]
        return reply if isinstance(reply, Reply) else Reply("ok", answer_text=reply, usage=dict(USAGE), latency_s=0.5)

    async def go() -> Episode:
        async with FhirClient(base) as fhir:
            return await run_episode(task, "the first message", complete, fhir.get, max_rounds=3)

    return asyncio.run(go())


def _save(run_dir: Path, task: AgentTask, episode: Episode, fingerprint: str = "fp") -> None:
    status = "error" if episode.outcome == "error" else "ok"
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0, **episode.usage}
    record = EpisodeRecord.model_validate(
        {
            "question_id": task.id,
            "status": status,
            "answer_text": episode.finish_raw,
            "usage": usage,
            "latency_s": episode.latency_s,
            "attempts": episode.rounds,
            "error": episode.error if status == "error" else None,
            "model": "m-1",
            "fingerprint": fingerprint,
            "task_type": task.type,
            "outcome": episode.outcome,
            "episode": episode.to_dict(),
        }
    )
    (run_dir / f"{task.id}.json").write_text(record.model_dump_json(), encoding="utf-8")


def _header(run: str, told: str) -> dict[str, Any]:
    return {"format": 1, "run": run, "dataset": "medagentbench", "dataset_version": "v1", "fingerprint": "fp",
            "fingerprint_inputs": {"fhir.base_url": told, "dataset.max_rounds": 3}, "provider": "fake",
            "model": {"name": run, "id": f"{run}-id", "display_name": run.title(), "vision": False,
                      "reasoning_effort": None, "price": PRICE},
            "image_mode": "blind", "prompt_version": 1, "parse_mode": "lenient"}  # fmt: skip


def _bp(mrn: str | None) -> dict[str, Any]:
    return {"resourceType": "Observation", "category": [{"coding": [dict(rules.BP_CATEGORY)]}], "code": rules.BP_CODE,
            "effectiveDateTime": rules.NOW_TEXT, "status": "final", "valueString": rules.BP_VALUE,
            "subject": {"reference": f"Patient/{mrn}"}}  # fmt: skip


def _post_bp(told: str, task: AgentTask) -> str:
    return f"POST {told}Observation\n{json.dumps(_bp(task.mrn))}"


@pytest.fixture(scope="module")
def predictions(tmp_path_factory, tasks, base) -> Path:
    root = tmp_path_factory.mktemp("agent") / "predictions"
    alpha, beta = root / "medagentbench" / "alpha", root / "medagentbench" / "beta"
    t = tasks
    scripts: dict[str, list[str | Reply]] = {
        "task1_1": [f"FINISH({json.dumps(list(t['task1_1'].sol or ()))})"],  # right
        "task1_2": ['FINISH(["S0000000"])'],  # wrong
        "task1_3": ["The patient's MRN is S1986380."],  # invalid action
        "task3_1": [_post_bp(base, t["task3_1"]), "FINISH([])"],  # right
        "task3_2": [f"GET {base}Observation?patient={t['task3_2'].mrn}&code=BP"],  # round limit
        "task4_1": ["FINISH([2.1])"],  # right: the latest magnesium in 24 h
        "task4_2": ["FINISH([1.2])"],  # wrong: 1.2 is older than 24 h, the answer is -1
        "task4_3": [Reply("error", error="HTTP 500 from the model server")],  # a failed episode
        "task2_1": ["FINISH([63])"],  # a type outside the selection: not counted
    }
    for folder, told in ((alpha, base), (beta, ELSEWHERE)):
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps(_header(folder.name, told)), encoding="utf-8")
    for task_id, replies in scripts.items():
        _save(alpha, t[task_id], _play(t[task_id], replies, base))
    _save(alpha, t["task3_3"], _play(t["task3_3"], [_post_bp(base, t["task3_3"]), "FINISH([])"], base), "other")
    (alpha / "task1_4.json").write_text('{"question_id": "task1_4", "status"', encoding="utf-8")  # torn
    (alpha / "notes.json").write_text("{}", encoding="utf-8")  # foreign
    for task_id in ("task1_1", "task1_2"):
        _save(beta, t[task_id], _play(t[task_id], [f"FINISH({json.dumps(list(t[task_id].sol or ()))})"], base))
    for task_id in ("task3_1", "task3_2"):  # POSTs to the address beta was told, not the one scoring reads
        _save(beta, t[task_id], _play(t[task_id], [_post_bp(ELSEWHERE, t[task_id]), "FINISH([])"], base))
    return root


def _score(predictions: Path, out: Path, base: str, types: list[int] | None) -> tuple[list[AgentSummary], Skipped]:
    card = {**load_card("medagentbench"), "task_types": types}
    paths = {"data": str(DATA_DIR), "predictions": str(predictions)}
    paths |= {"scored": str(out / "scored"), "leaderboard": str(out / "leaderboard")}
    settings = {"paths": paths, "fhir": {"base_url": base}, "plots": True}
    runs = sorted((predictions / "medagentbench").iterdir())
    skipped = Skipped()
    return score_agent_dataset(card, runs, settings, BOOTSTRAP, skipped), skipped


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/fhir/"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_rates_count_every_selected_task_and_match_hand_counts(predictions, base, tmp_path):
    summaries, skipped = _score(predictions, tmp_path, base, [1, 3, 4])
    alpha, beta = sorted(summaries, key=lambda s: s.run)
    assert (alpha.tasks, alpha.answered) == (90, 7)
    assert (alpha.overall.correct, alpha.overall.n) == (3, 90)
    assert (alpha.query.correct, alpha.query.n, alpha.action.correct, alpha.action.n) == (2, 60, 1, 30)
    assert {k: (v.correct, v.n) for k, v in alpha.by_type.items()} == {"1": (1, 30), "3": (1, 30), "4": (1, 30)}
    assert alpha.outcomes == {"finished": 5, "invalid_action": 1, "round_limit": 1, "error": 1, "missing": 82}
    assert alpha.overall.ci95 is not None and alpha.overall.ci95[0] <= 3 / 90 <= alpha.overall.ci95[1]
    assert alpha.rounds_mean == round(10 / 7, 3)
    assert alpha.tokens is not None and (alpha.tokens.prompt, alpha.tokens.completion) == (1000, 100)
    assert alpha.cost_usd == pytest.approx((1000 * 1.0 + 100 * 2.0) / 1e6)
    # beta's POSTs went to the address it was given; they are graded against the one scoring reads
    assert (beta.overall.correct, beta.query.correct, beta.action.correct) == (4, 2, 2)
    assert sorted(Path(p).name for p, _ in skipped.entries) == ["notes.json", "task1_4.json", "task3_3.json"]
    assert any("different fingerprint" in why for _, why in skipped.entries)
    assert len(alpha.skipped_files) == 3 and beta.skipped_files == []


def test_scored_lines_say_what_became_of_each_task(predictions, base, tmp_path):
    _score(predictions, tmp_path, base, [1, 3, 4])
    text = (tmp_path / "scored" / "medagentbench" / "alpha.jsonl").read_text(encoding="utf-8")
    lines = {line["task_id"]: line for line in map(json.loads, text.splitlines())}
    assert len(lines) == 90 and list(lines)[:2] == ["task1_1", "task1_2"]
    assert lines["task1_1"] == {"task_id": "task1_1", "type": 1, "kind": "query", "status": "ok",
                                "outcome": "finished", "correct": True, "reason": lines["task1_1"]["reason"],
                                "rounds": 1, "posts": 0, "prompt_tokens": 100, "completion_tokens": 10}  # fmt: skip
    assert (lines["task3_1"]["kind"], lines["task3_1"]["posts"], lines["task3_1"]["correct"]) == ("action", 1, True)
    assert (lines["task3_2"]["outcome"], lines["task3_2"]["rounds"]) == ("round_limit", 3)
    failed = lines["task4_3"]
    assert (failed["status"], failed["outcome"], failed["correct"]) == ("error", "error", False)
    assert "HTTP 500" in failed["reason"] and "-1" in lines["task4_2"]["reason"]
    assert (lines["task1_4"]["status"], lines["task1_4"]["correct"]) == ("missing", False)  # the torn file
    assert "task2_1" not in lines
    summary = json.loads((tmp_path / "scored" / "medagentbench" / "alpha.summary.json").read_text(encoding="utf-8"))
    assert summary["overall"]["n"] == 90 and summary["bootstrap"] == BOOTSTRAP


def test_leaderboard_ranks_runs_and_draws_the_heat_map(predictions, base, tmp_path, capsys):
    summaries, _ = _score(predictions, tmp_path, base, [1, 3, 4])
    board = tmp_path / "leaderboard"
    rows = list(csv.DictReader(io.StringIO((board / "medagentbench.csv").read_text(encoding="utf-8"))))
    assert list(rows[0]) == ["run", "model", "settings", "tasks", "correct", "overall", "overall_ci_low",
                             "overall_ci_high", "query", "action", *(f"T{t}" for t in range(1, 11)),
                             "invalid_action", "round_limit", "errors", "missing", "completion_tokens",
                             "cost_usd"]  # fmt: skip
    assert [r["run"] for r in rows] == ["beta", "alpha"]  # 4/90 before 3/90
    assert (rows[1]["overall"], rows[1]["T2"], rows[1]["errors"], rows[1]["missing"]) == ("0.0333", "", "1", "82")
    assert "2023-11-13T10:15:00+00:00" in (board / "medagentbench.md").read_text(encoding="utf-8")
    assert (board / "medagentbench.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    print_agent_results(summaries)
    shown = capsys.readouterr().out
    assert "alpha" in shown and "3/90" in shown


def test_scoring_twice_gives_the_same_bytes(predictions, base, tmp_path):
    _score(predictions, tmp_path / "a", base, [1, 3, 4])
    _score(predictions, tmp_path / "b", base, [1, 3, 4])
    first, second = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert "leaderboard/medagentbench.png" in first and len(first) == 8
    assert first == second


def test_a_fhir_server_that_is_down_stops_scoring_with_what_to_do(predictions, tmp_path):
    with pytest.raises(FhirUnavailable) as caught:
        _score(predictions, tmp_path, _closed_port_url(), [1, 3, 4])
    message = str(caught.value)
    assert "docker run -p 8080:8080 jyxsu6/medagentbench" in message and "fhir.base_url" in message
    assert not (tmp_path / "leaderboard").exists()


def test_transcript_types_alone_need_no_fhir_server(predictions, tmp_path):
    summaries, _ = _score(predictions, tmp_path, _closed_port_url(), [1, 3, 8])
    alpha = next(s for s in summaries if s.run == "alpha")
    assert (alpha.overall.correct, alpha.overall.n, sorted(alpha.by_type)) == (2, 90, ["1", "3", "8"])
    assert (tmp_path / "leaderboard" / "medagentbench.csv").is_file()
