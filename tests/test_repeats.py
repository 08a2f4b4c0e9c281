"""``run.repeats=k``: k samples per question through a loopback server, stored once each, graded together.

The fake server's reply to a question is picked by the request's seed (``model.params.seed=0``:
sample i sends seed i), so each sample's answer is known and the statistics are checked by hand.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.conftest import run_python
from tests.reliability.conftest import predict_overrides, reset_server
from tests.score_fixtures import read_summary

SERVED = "smollm2-135m"
ASKED = ["112A-1", "112A-2", "112A-3", "112A-4"]  # keys e, e, d, e
RUN = "smollm2_135m-seed_0-temperature_0.7-repeats_3"  # the sampling settings and k are in the name
# sample 0, 1, 2 of each question
REPLIES = {
    "112A-1": ["【回答】e", "【回答】e", "【回答】e"],  # right ×3: majority e, agreement 1
    "112A-2": ["【回答】e", "【回答】a", "【回答】a"],  # right, wrong, wrong: majority a (wrong), agreement 2/3
    "112A-3": ["【回答】a", "【回答】d", "【回答】b"],  # a three-way tie: the first given (a, wrong), agreement 1/3
    "112A-4": ["分かりません。", "【回答】e", "考え中"],  # unreadable, right, unreadable: majority e (right)
}
SAMPLING = ["model.params.seed=0", "model.params.temperature=0.7"]


def _predict(server, root: Path, *extra: str):
    reset_server(server, served_name=SERVED, content=REPLIES)
    ids = f"run.ids=[{','.join(ASKED)}]"
    overrides = predict_overrides(server, root / "predictions", "dataset=igakuqa", ids, "run.repeats=3", *extra)
    return run_python(["predict.py", *overrides])


def _score(root: Path):
    paths = [f"paths.{p}={root / p}" for p in ("predictions", "scored", "leaderboard")]
    return run_python(["score.py", "dataset=igakuqa", "plots=false", *paths])


def test_three_repeats_send_three_requests_per_question_store_each_once_and_resume_sends_none(fake_server, tmp_path):
    done = _predict(fake_server, tmp_path, *SAMPLING)
    assert done.returncode == 0, done.stderr
    bodies = fake_server.server.bodies
    assert len(bodies) == 12
    seeds = sorted((b["messages"][1]["content"].split("】")[0], b["seed"]) for b in bodies)
    assert seeds == sorted((f"【問題 {q}", i) for q in ASKED for i in range(3))  # seed 0 + i for sample i
    assert all(b["temperature"] == 0.7 for b in bodies)
    run_dir = tmp_path / "predictions" / "igakuqa" / RUN
    files = sorted(p.name for p in run_dir.glob("*.json") if p.name != "run.json")
    assert files == sorted(f"{q}.r{i}.json" for q in ASKED for i in range(3))
    record = json.loads((run_dir / "112A-2.r1.json").read_bytes())
    assert (record["question_id"], record["repeat"], record["answer_text"]) == ("112A-2", 1, "【回答】a")
    header = json.loads((run_dir / "run.json").read_bytes())
    assert header["repeats"] == 3 and header["fingerprint_inputs"]["run.repeats"] == 3

    again = _predict(fake_server, tmp_path, *SAMPLING)
    assert again.returncode == 0, again.stderr
    assert fake_server.server.bodies == []  # nothing asked again


def test_a_lost_sample_is_asked_again_alone_and_shards_split_by_question(fake_server, tmp_path):
    assert _predict(fake_server, tmp_path, *SAMPLING, "run.shard=0/2").returncode == 0
    run_dir = tmp_path / "predictions" / "igakuqa" / RUN
    assert {p.name.split(".r")[0] for p in run_dir.glob("112A-*.json")} == {"112A-1", "112A-3"}
    assert _predict(fake_server, tmp_path, *SAMPLING, "run.shard=1/2").returncode == 0
    (run_dir / "112A-3.r2.json").unlink()  # a sample lost (or never finished): only it is asked again
    assert _predict(fake_server, tmp_path, *SAMPLING).returncode == 0
    (body,) = fake_server.server.bodies
    assert "【問題 112A-3】" in body["messages"][1]["content"] and body["seed"] == 2


def test_greedy_repeats_are_warned_about_and_a_changed_k_is_refused_by_name(fake_server, tmp_path):
    done = _predict(fake_server, tmp_path, "run.limit=1", "run.ids=null")
    assert done.returncode == 0, done.stderr
    assert "temperature=0: greedy decoding gives the same reply k times" in done.stdout + done.stderr
    assert (tmp_path / "predictions" / "igakuqa" / "smollm2_135m-repeats_3" / "run.json").is_file()
    refused = _predict(fake_server, tmp_path, "run.name=smollm2_135m-repeats_3", "run.repeats=2")
    assert refused.returncode == 2 and "run.repeats: 3 != 2" in refused.stderr and "Traceback" not in refused.stderr


def test_the_samples_are_graded_together_mean_sd_ci_majority_consistency_pass_at_k(fake_server, tmp_path):
    assert _predict(fake_server, tmp_path, *SAMPLING).returncode == 0
    done = _score(tmp_path)
    assert done.returncode == 0, done.stderr
    summary = read_summary(tmp_path, "igakuqa", RUN)
    r = summary["repeats"]
    # per sample: [T,T,F,F] 0.5, [T,F,T,T] 0.75, [T,F,F,F] 0.25
    assert r["accuracy_by_repeat"] == [0.5, 0.75, 0.25]
    assert (r["k"], r["questions"], r["complete"], r["mean"], r["sd"]) == (3, 4, 4, 0.5, 0.25)
    assert (
        r["majority"] == 0.5 and r["pass_at_k"] == 1.0 and r["consistency"] == round((1 + 2 / 3 + 1 / 3 + 1 / 3) / 4, 4)
    )
    low, high = r["ci95"]  # questions' own means 1, 1/3, 1/3, 1/3: the CI resamples these
    assert 0.3333 <= low < 0.5 < high <= 1.0
    pcts = r["score_pct_by_repeat"]  # the exam grader's per-sample parts: 4 questions of 5 exams, none passed
    assert len(pcts) == 3 and pcts[1] > pcts[0] > pcts[2] > 0
    assert r["passes"] == {str(exam): 0 for exam in range(112, 117)}
    assert summary["accuracy"]["all"] == {**summary["accuracy"]["all"], "correct": 2, "n": 4}  # the majority answers
    assert summary["tokens"]["completion"] == 12 * 20  # every sample is paid for (the fake server: 20 a reply)

    lines = {
        json.loads(line)["question_id"]: json.loads(line)
        for line in (tmp_path / "scored" / "igakuqa" / f"{RUN}.jsonl").read_text().splitlines()
    }
    tie = lines["112A-3"]
    assert tie["predicted"] == ["a"] and tie["repeats"]["answers"] == [["a"], ["d"], ["b"]]
    assert tie["repeats"]["correct"] == [False, True, False] and tie["repeats"]["agreement"] == 0.3333
    assert lines["112A-4"]["predicted"] == ["e"] and lines["112A-4"]["correct"] is True
    assert lines["112A-4"]["repeats"]["answers"] == [None, ["e"], None]
    assert "repeats" not in lines["112A-5"]  # a question not asked

    with open(tmp_path / "leaderboard" / "igakuqa.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["repeats"], row["repeat_mean"], row["repeat_sd"], row["pass_at_k"]) == ("3", "0.5", "0.25", "1.0")
    assert "majority of 3 samples" in row["settings"]
    markdown = (tmp_path / "leaderboard" / "igakuqa.md").read_text()
    assert "## Repeated samples" in markdown and "| 3 | 50.0 ± 25.0% [33.3–83.3] | 50.0% | 58.3% | 100.0% |" in markdown


def test_a_one_sample_file_in_a_repeats_run_is_reported_not_graded(fake_server, tmp_path):
    assert _predict(fake_server, tmp_path, *SAMPLING).returncode == 0
    run_dir = tmp_path / "predictions" / "igakuqa" / RUN
    stray = json.loads((run_dir / "112A-1.r0.json").read_bytes())
    del stray["repeat"]
    (run_dir / "112A-1.json").write_text(json.dumps(stray))
    (run_dir / "112A-1.r7.json").write_text(json.dumps({**stray, "repeat": 7}))
    done = _score(tmp_path)
    assert done.returncode == 3
    assert "112A-1.json is not a sample (<id>.r0 … r2) of a question" in done.stderr
    assert "112A-1.r7.json is not a sample" in done.stderr
    assert read_summary(tmp_path, "igakuqa", RUN)["repeats"]["accuracy_by_repeat"] == [0.5, 0.75, 0.25]


def test_a_dry_run_counts_every_sample(tmp_path):
    ids = f"run.ids=[{','.join(ASKED)}]"
    done = run_python(
        [
            "predict.py",
            "dataset=igakuqa",
            ids,
            "run.repeats=3",
            *SAMPLING,
            "run.dry_run=true",
            f"paths.predictions={tmp_path}",
            "provider=vllm",
        ]  # fmt: skip
    )
    assert done.returncode == 0, done.stderr
    assert "12 to ask, 12 selected, 0 done" in done.stdout


def test_equal_numbers_written_differently_are_one_vote(fake_server, tmp_path):
    """116B-50 (key 2.1): 3.0, 2.1, 2.10 — the majority is 2.1 with two votes of three, not a three-way tie."""
    replies = {"116B-50": ["【回答】3.0", "【回答】2.1", "【回答】2.10"]}
    reset_server(fake_server, served_name=SERVED, content=replies)
    overrides = predict_overrides(
        fake_server, tmp_path / "predictions", "dataset=igakuqa", "run.ids=[116B-50]", "run.repeats=3", *SAMPLING
    )
    assert run_python(["predict.py", *overrides]).returncode == 0
    assert _score(tmp_path).returncode == 0
    lines = [json.loads(line) for line in (tmp_path / "scored" / "igakuqa" / f"{RUN}.jsonl").read_text().splitlines()]
    (line,) = [entry for entry in lines if entry["question_id"] == "116B-50"]
    assert line["predicted"] == ["2.1"] and line["correct"] is True
    assert line["repeats"]["answers"] == [["3.0"], ["2.1"], ["2.10"]] and line["repeats"]["agreement"] == 0.6667
