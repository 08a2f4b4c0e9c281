"""The predict stage in-process against a real loopback server: selection, faults, resume, run header, configs."""

from __future__ import annotations

import glob
import hashlib
import json
import re
import urllib.request
from pathlib import Path

import pytest

from jmle_eval.config import CONF_DIR, compose, to_plain
from jmle_eval.errors import UserError
from jmle_eval.predict import plan, prompts, runner, settings, store

SERVED = "smollm2-135m"  # model=smollm2_135m's id: the fake server serves that name


def overrides(server, tmp_path: Path, *extra: str) -> list[str]:
    """Return the overrides that point predict at the fake server and a temporary predictions folder."""
    return [
        "provider=vllm",
        f"provider.base_url={server.base_url}",
        "provider.backoff_s=0.01",
        "provider.backoff_max_s=0.05",
        "provider.connect_timeout_s=2",
        f"paths.predictions={tmp_path / 'predictions'}",
        *extra,
    ]


def reset(server, **update) -> None:
    """Clear the server's counters (over HTTP: the fixture's configure() only updates settings)."""
    data = json.dumps({"reset": True, **update}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}/_config", data=data, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


def predict(server, tmp_path: Path, *extra: str) -> tuple[plan.Plan, runner.Outcome | None]:
    """Run the predict stage in-process; return its plan and outcome."""
    server.configure(served_name=SERVED)
    return runner.run(compose(overrides(server, tmp_path, *extra)))


def test_all_questions_end_ok_under_30_percent_transient_faults(fake_server, tmp_path):
    fake_server.configure(fault=["429", "500", "503", "reset", "malformed", "empty-choices"], fault_rate=0.3,
                          fault_attempts=2, retry_after=0)  # fmt: skip
    job, out = predict(fake_server, tmp_path, "run.limit=60", "provider.max_concurrency=16")
    records = store.read_predictions(job.run_dir)
    assert out is not None and (out.asked, out.ok, out.errors) == (60, 60, 0)
    assert len(records) == 60 and all(r["status"] == "ok" for r in records.values())
    retried = [r for r in records.values() if r["attempts"] == 3]
    assert 8 <= len(retried) <= 30
    assert fake_server.stats()["total"] == 60 + 2 * len(retried)


def test_resume_skips_answered_questions_and_retries_errors(fake_server, tmp_path):
    fake_server.configure(faults={"120A-3": "500"})
    job, out = predict(fake_server, tmp_path, "run.limit=20", "provider.max_attempts=2")
    assert (out.ok, out.errors) == (19, 1)
    assert store.read_predictions(job.run_dir)["120A-3"]["error"].startswith("HTTP 500")
    reset(fake_server, faults={})
    _, out = predict(fake_server, tmp_path, "run.limit=30")
    assert (out.asked, out.ok) == (11, 11)  # 10 new + the errored one
    assert fake_server.stats()["requests"].get("120A-3") == 1 and fake_server.stats()["total"] == 11
    _, out = predict(fake_server, tmp_path, "run.limit=30")
    assert out is None and fake_server.stats()["total"] == 11
    totals = store.totals(job.run_dir)
    assert (totals["answered"], totals["errors"], totals["completion_tokens"]) == (30, 0, 30 * 20)


def test_errors_are_kept_when_retry_errors_is_false(fake_server, tmp_path):
    fake_server.configure(faults={"120A-1": "500"})
    predict(fake_server, tmp_path, "run.limit=2", "provider.max_attempts=1")
    reset(fake_server, faults={})
    _, out = predict(fake_server, tmp_path, "run.limit=2", "run.retry_errors=false")
    assert out is None and fake_server.stats()["total"] == 0


def test_cut_off_replies_are_kept_as_ok_with_finish_reason_length(fake_server, tmp_path):
    fake_server.configure(fault="length", fault_rate=1.0, fault_attempts=99)
    job, out = predict(fake_server, tmp_path, "run.limit=3")
    records = store.read_predictions(job.run_dir).values()
    assert all(r["status"] == "ok" and r["finish_reason"] == "length" and r["attempts"] == 1 for r in records)
    assert all(r["answer_text"] is None and r["reasoning_text"] == "考え中…" for r in records)


def test_run_json_holds_the_contract_keys_and_no_secret(fake_server, tmp_path, monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "sk-run-json-secret")
    fake_server.configure(api_key="sk-run-json-secret")
    job, out = predict(fake_server, tmp_path, "run.limit=2", "+model.price.input=1.0", "model.price.output=2.0")
    header = json.loads((job.run_dir / "run.json").read_text())
    for key in ("format", "run", "dataset", "dataset_version", "fingerprint", "fingerprint_inputs", "model", "provider",
                "image_mode", "prompt_version", "parse_mode", "created_at", "config"):  # fmt: skip
        assert key in header, key
    assert header["model"]["id"] == SERVED and header["provider"] == "vllm" and header["image_mode"] == "blind"
    assert header["fingerprint"] == store.fingerprint(header["fingerprint_inputs"])
    assert header["config"]["provider"]["api_key_env"] == "VLLM_API_KEY"
    assert "sk-run-json-secret" not in (job.run_dir / "run.json").read_text()
    record = store.read_predictions(job.run_dir)["120A-1"]
    assert record["cost_usd"] == pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6)
    assert record["fingerprint"] == header["fingerprint"] and record["model"] == SERVED


def test_request_body_carries_params_extras_and_reasoning_effort(fake_server, tmp_path):
    fake_server.configure(served_name="openai/gpt-oss-120b")
    runner.run(compose(overrides(fake_server, tmp_path, "model=gpt_oss_120b", "model.reasoning_effort=high",
                                 "model.params.max_tokens=50", "run.limit=1")))  # fmt: skip
    (body,) = fake_server.server.bodies
    assert body["model"] == "openai/gpt-oss-120b" and body["reasoning_effort"] == "high" and body["max_tokens"] == 50
    assert "temperature" not in body and body["messages"][0]["role"] == "system"


def test_changed_answer_setting_is_refused_before_any_request(fake_server, tmp_path):
    job, _ = predict(fake_server, tmp_path, "run.limit=2")
    reset(fake_server)
    with pytest.raises(UserError, match=r"model\.params\.temperature: 0\.0 != 0\.5"):
        predict(fake_server, tmp_path, "run.limit=2", f"run.name={job.run_name}", "model.params.temperature=0.5")
    assert fake_server.stats()["total"] == 0


def test_model_missing_from_server_is_refused_listing_served_names(fake_server, tmp_path):
    with pytest.raises(UserError, match=r"serves \['smollm2-135m'\], not 'other'"):
        predict(fake_server, tmp_path, "run.limit=1", "model.id=other")
    assert not list((tmp_path / "predictions").rglob("run.json"))


def test_too_many_rejected_requests_stop_the_run(fake_server, tmp_path):
    fake_server.configure(fault="400", fault_rate=1.0, fault_attempts=99)
    with pytest.raises(UserError, match="refused by the server as sent"):
        predict(fake_server, tmp_path, "run.limit=50", "provider.max_concurrency=2", "run.max_rejected=3")
    assert fake_server.stats()["total"] < 10


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("provider.max_concurrency=0", "provider.max_concurrency must be a whole number >= 1"),
        ("run.shard=4/4", "is not 'k/n' with 0 <= k < n"),
        ("run.shard=x", "is not 'k/n'"),
        ("run.limit=0", "run.limit must be a whole number >= 1"),
        ("image_mode=colour", "image_mode='colour' is not one of"),
        ("image_mode=vision", "vision: false"),
        ("run.ids=[120Z-1]", "120Z-1'] are not among the"),
        ("run.ids=[120A-999]", "not among the"),
        ("provider.timeout_s=0", "provider.timeout_s must be"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(tmp_path, setting, message):
    cfg = to_plain(compose([f"paths.predictions={tmp_path}", "provider=vllm", setting]))
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")):
        plan.plan(cfg)


def test_missing_api_key_names_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    cfg = to_plain(compose([f"paths.predictions={tmp_path}", "model=gpt_5_2", "provider=openrouter"]))
    with pytest.raises(UserError, match=r"set the environment variable OPENROUTER_API_KEY"):
        plan.plan(cfg)


def test_selection_applies_ids_then_limit_then_shard():
    questions = plan.datasets.load(to_plain(compose([]))["dataset"], data_dir="data")
    picked = plan.select(questions, "blind", limit=20, shard=(2, 4))
    assert [q.id for q in picked] == ["120A-3", "120A-7", "120A-11", "120A-15", "120A-19"]
    assert len(plan.select(questions, "skip")) == sum(not q.requires_image for q in questions)
    assert [q.id for q in plan.select(questions, "blind", ids=["120b30", "120A-2"])] == ["120A-2", "120B-30"]
    assert settings.parse_shard("1/3") == (1, 3) and settings.parse_shard(None) is None


# Pinned on the code before the templates moved to files: the hash is part of every existing run's
# fingerprint, so a different value would refuse to resume every run made with prompt.version=v1.
V1_TEMPLATE_HASH = "a748a0e713eb"
V1_MESSAGES_SHA256 = {
    "blind": "928391a8c3abed9947a1fb76c50301eed888c2f326412e942a39a3c713dcca31",
    "vision": "f142e5d4ea526a3eef47ec151ecf40c53c869f7d59c8aeafd70d970d4b9beee7",
}


def test_v1_prompt_hash_and_messages_stay_byte_identical_so_old_runs_resume():
    assert prompts.template_hash("v1") == V1_TEMPLATE_HASH
    questions = plan.datasets.load(to_plain(compose([]))["dataset"], data_dir="data")
    for mode, expected in V1_MESSAGES_SHA256.items():
        digest = hashlib.sha256()
        for question in questions:
            digest.update(json.dumps(prompts.build_messages(question, mode), ensure_ascii=False).encode())
        assert digest.hexdigest() == expected, mode
    first = prompts.render_text(next(q for q in questions if q.id == "120A-1"), "blind")
    assert first.startswith("【問題 120A-1】\n\n胃癌に伴う") and first.endswith(
        "\n\n選択肢から1つ選んでください。\n\n考えた過程を書いてもかまいませんが、最後の行には必ず次の形式で"
        "解答だけを書いてください。\n【回答】a"
    )


EN_TEMPLATE = """\
system: You are a physician answering a medical licensing exam.
header: "[Question {id}]"
case: "[Case] {case}"
choose_one: Choose one option.
choose_n: Choose {n} options.
numeric: Answer with the number only.
blind: The image of this question is not shown.
vision: The image of this question is attached.
answer_line: "End with this line: {marker}{example}"
choice: "{letter}. {text}"
"""


@pytest.fixture
def english_template(tmp_path, monkeypatch):
    """Add an English v1 template next to a copy of the real ones (as a file, the way a language is added)."""
    import shutil

    folder = tmp_path / "templates"
    shutil.copytree(prompts.TEMPLATE_DIR, folder)
    (folder / "en").mkdir(exist_ok=True)  # replaces the shipped English template with this test one
    (folder / "en" / "v1.yaml").write_text(EN_TEMPLATE, encoding="utf-8")
    monkeypatch.setattr(prompts, "TEMPLATE_DIR", folder)
    prompts.template.cache_clear()
    yield folder
    prompts.template.cache_clear()


def test_a_language_is_a_template_file_and_the_card_or_prompt_language_picks_it(english_template, tmp_path):
    assert prompts.languages() == ["en", "ja"] and prompts.template_hash("v1") == V1_TEMPLATE_HASH
    cfg = to_plain(compose([f"paths.predictions={tmp_path / 'predictions'}"]))
    cfg["prompt"]["language"] = "en"  # an English prompt around Japanese questions (the card picks it for English sets)
    job = plan.plan(cfg)
    inputs = job.header["fingerprint_inputs"]
    assert (job.prompt_language, inputs["prompt.language"]) == ("en", "en")
    assert inputs["prompt.template_hash"] == prompts.template_hash("v1", "en") != V1_TEMPLATE_HASH
    question = next(q for q in job.todo or [] if q.id == "120A-1")
    system, user = prompts.build_messages(question, "blind", job.prompt_version, job.answer_marker, "en")
    assert system["content"].startswith("You are a physician") and user["content"].startswith("[Question 120A-1]")
    assert "\na. 緊急手術\n" in user["content"] and user["content"].endswith("End with this line: 【回答】a")
    cfg["prompt"]["language"] = "ja"  # the run's prompt.language wins over the card's
    japanese = plan.plan(cfg, load=False)
    assert japanese.prompt_language == "ja" and "prompt.language" not in japanese.header["fingerprint_inputs"]


def test_an_unknown_or_malformed_prompt_template_is_refused_naming_what_exists(english_template):
    with pytest.raises(UserError, match="Unknown prompt.language 'fr'. Languages with templates: en, ja"):
        prompts.template("v1", "fr")
    with pytest.raises(UserError, match="Unknown prompt.version 'v9' for language 'ja'. Available versions: v1"):
        prompts.template("v9")
    with pytest.raises(UserError, match="Unknown prompt.version '../ja/v1'"):
        prompts.template("../ja/v1", "en")
    (english_template / "en" / "v2.yaml").write_text("system: only this\nfooter: x\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"malformed: missing text \['header', .*unknown keys \['footer'\]"):
        prompts.template("v2", "en")


MODELS = sorted(Path(p).stem for p in glob.glob(str(CONF_DIR / "model" / "*.yaml")))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_composes_into_a_request(model):
    cfg = to_plain(compose([f"model={model}", "provider=vllm"]))
    body = plan.request_template(cfg["model"], cfg["provider"])
    assert body["model"] == cfg["model"]["id"] and None not in body.values()
    assert cfg["model"]["display_name"] and cfg["model"]["name"] == model
    price = cfg["model"]["price"]
    assert (price["input"] is None) == (price["output"] is None) == (price["source"] is None)


def test_leaderboard_models_are_all_configured():
    expected = {"gpt_5_2", "gemini_3_1_pro", "claude_opus_4_6", "claude_sonnet_4_6", "qwen3_5_397b", "gpt_oss_20b",
                "gpt_oss_120b", "qwen3_5_27b", "qwen3_5_27b_nothink", "qwen3_5_35b_a3b", "qwen3_5_35b_a3b_nothink",
                "qwen3_5_122b_a10b", "qwen3_5_122b_a10b_nothink", "qwen3_32b", "qwen3_32b_nothink",
                "gpt_oss_swallow_120b", "qwen3_swallow_32b", "medrect_32b"}  # fmt: skip
    assert expected <= set(MODELS)


def test_nothink_variant_inherits_its_base_and_sends_qwen_sampling():
    base = to_plain(compose(["model=qwen3_32b", "provider=vllm"]))["model"]
    cfg = to_plain(compose(["model=qwen3_32b_nothink", "provider=vllm"]))["model"]
    assert cfg["serve"] == base["serve"] and cfg["id"] == base["id"] and cfg["name"] == "qwen3_32b_nothink"
    body = plan.request_template(cfg, {"name": "vllm"})
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert (body["temperature"], body["top_p"], body["top_k"], body["presence_penalty"]) == (0.7, 0.8, 20, 1.5)


def test_openrouter_gets_vendor_id_reasoning_object_and_usage_accounting():
    cfg = to_plain(compose(["model=qwen3_5_397b", "provider=openrouter"]))
    body = plan.request_template(cfg["model"], cfg["provider"])
    assert body["model"] == "qwen/qwen3.5-397b-a17b" and body["usage"] == {"include": True}
    assert body["provider"] == {"order": ["Alibaba"], "allow_fallbacks": False}
    cfg = to_plain(compose(["model=gpt_oss_120b", "provider=openrouter", "model.reasoning_effort=low"]))
    body = plan.request_template(cfg["model"], cfg["provider"])
    assert body["reasoning"] == {"effort": "low"} and cfg["model"]["display_name"] == "gpt-oss-120b (low)"


def test_hard_401_mid_run_stops_fast_and_keeps_finished_answers(fake_server, tmp_path):
    fake_server.configure(faults={"120A-6": "401"}, latency=0.02)
    with pytest.raises(UserError, match=r"HTTP 401 .*injected 401.*VLLM_API_KEY"):
        predict(fake_server, tmp_path, "run.limit=200", "provider.max_concurrency=2")
    assert fake_server.stats()["total"] < 12
    kept = store.read_predictions(tmp_path / "predictions" / "jmle2026" / "smollm2_135m")
    assert 3 <= len(kept) < 12 and all(r["status"] == "ok" for r in kept.values())


def test_vision_mode_sends_the_question_images(fake_server, tmp_path):
    fake_server.configure(served_name="Qwen/Qwen3.5-27B")
    job, out = runner.run(
        compose(overrides(fake_server, tmp_path, "model=qwen3_5_27b", "image_mode=vision", "run.ids=[120A-16,120A-1]"))
    )
    assert (out.ok, job.header["image_mode"]) == (2, "vision")
    by_id = {
        json.dumps(b["messages"], ensure_ascii=False).count("【問題 120A-16】"): b for b in fake_server.server.bodies
    }
    parts = by_id[1]["messages"][1]["content"]
    assert parts[0]["type"] == "text" and parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


# The prediction file layout, key by key and in order (DESIGN.md "Record formats"): files written before and
# after predict built its records through schema.Prediction must read the same.
PREDICTION_KEYS = [
    "question_id", "status", "answer_text", "reasoning_text", "finish_reason", "usage", "latency_s", "attempts",
    "error", "model", "fingerprint", "created_at",
]  # fmt: skip


def test_prediction_files_keep_their_json_layout_key_by_key(fake_server, tmp_path):
    fake_server.configure(faults={"120A-2": "400"})
    job, _ = predict(fake_server, tmp_path, "run.limit=2", "+model.price.input=1.5", "+model.price.output=6")
    ok = json.loads((job.run_dir / "120A-1.json").read_bytes())
    assert list(ok) == [*PREDICTION_KEYS, "cost_usd"]
    assert {k: v for k, v in ok.items() if k not in ("latency_s", "created_at")} == {
        "question_id": "120A-1", "status": "ok", "answer_text": "考察…\n【回答】a", "reasoning_text": "考え中…",
        "finish_reason": "stop", "usage": {"prompt_tokens": 100, "completion_tokens": 20, "reasoning_tokens": 5},
        "attempts": 1, "error": None, "model": SERVED, "fingerprint": job.header["fingerprint"],
        "cost_usd": 0.00027,
    }  # fmt: skip
    assert isinstance(ok["latency_s"], float) and ok["created_at"].endswith("+00:00")
    refused = json.loads((job.run_dir / "120A-2.json").read_bytes())
    assert list(refused) == [*PREDICTION_KEYS, "cost_usd"]
    assert (refused["status"], refused["answer_text"], refused["usage"], refused["attempts"], refused["cost_usd"]) == (
        "error", None, {"prompt_tokens": 0, "completion_tokens": 0, "reasoning_tokens": 0}, 1, 0.0,
    )  # fmt: skip
    assert refused["error"].startswith("HTTP 400")


def test_a_reply_that_is_not_a_valid_prediction_is_stored_as_an_error_to_retry(fake_server, tmp_path):
    from jmle_eval.predict.replies import Reply

    job = plan.plan(to_plain(compose(overrides(fake_server, tmp_path))), load=False)
    record = runner.record(job, "120A-1", Reply("ok", answer_text="【回答】a", latency_s=float("nan"), attempts=1))
    stored = json.loads(store.encode_record(record.model_dump(exclude_unset=True)))
    assert list(stored) == ["question_id", "status", "usage", "latency_s", "attempts", "error", "model",
                            "fingerprint", "created_at"]  # fmt: skip
    assert (stored["status"], stored["usage"], stored["latency_s"]) == ("error", {}, None)
    assert stored["error"].startswith("reply not storable: latency_s:")


def test_progress_bar_renders_final_counts_on_stderr_and_summary_counts_this_call(fake_server, tmp_path, capsys):
    job, out = predict(fake_server, tmp_path, "run.limit=4", "run.progress=true")
    assert (out.asked, out.ok) == (4, 4)
    bar = capsys.readouterr().err.strip().splitlines()[-1]  # rich leaves the final bar when it stops
    assert re.fullmatch(r"smollm2_135m ━+ 4/4 0 errors +[\d,]+ tok/s \d+:\d\d:\d\d", bar), bar
    line = runner.summary_line(job.run_name, job.selected, store.totals(job.run_dir), out, job.run_dir)
    assert line.startswith("smollm2_135m: answered 4, errors 0 (4 selected) | this call asked 4: 4 ok, 0 errors")
    assert "tokens 400 in, 80 out (20 reasoning)" in line and "cost n/a" in line


EXPERIMENTS = sorted(Path(p).stem for p in glob.glob(str(CONF_DIR / "experiment" / "*.yaml")))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_leaderboard_experiment_composes_with_its_published_settings(experiment):
    cfg = to_plain(compose([f"+experiment={experiment}"]))
    assert cfg["dataset"]["name"] == "jmle2026" and cfg["run"]["name"].startswith(cfg["model"]["name"])
    body = plan.request_template(cfg["model"], cfg["provider"])
    assert body["model"] and None not in body.values()
    # the experiment's image mode is what image_mode=auto would choose, so plain runs land in the same folder
    assert (cfg["image_mode"] == "vision") == bool(cfg["model"]["vision"])


def test_experiments_cover_the_leaderboard_with_distinct_run_names():
    names = [to_plain(compose([f"+experiment={e}"]))["run"]["name"] for e in EXPERIMENTS]
    assert len(EXPERIMENTS) >= 19 and len(set(names)) == len(names)
    effort = to_plain(compose(["+experiment=jmle2026_gpt_oss_120b_high"]))
    assert (effort["model"]["reasoning_effort"], effort["provider"]["max_concurrency"]) == ("high", 32)
    assert effort["run"]["name"] == "gpt_oss_120b-effort_high"
