"""Config schemas: slim YAMLs compose to the values they had, and every config mistake is one clear paragraph."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from jmle_eval import config
from jmle_eval.config import CONF_DIR, compose, load_card, to_plain
from jmle_eval.errors import UserError
from tests.conftest import REPO, run_python

# Digests of each group's composed values as they were before the schemas (when every YAML spelled out every
# key), normalised so that what readers treat alike compares alike: a null, [] or {} leaf is dropped (the schema
# adds null keys such as model.notice; an API model's serve block is now the default block, not null) and whole
# numbers compare as floats (timeout_s: 120 is now 120.0). A deliberate change of a value changes its digest.
BEFORE = {
    "config": "1f4cc9ebc581ea07",
    "score": "5470e1f184181b52",
    "dataset=igakuqa": "aba3043103d80443",
    "dataset=igakuqa119": "8256209148f881cf",
    "dataset=jmle2026": "c78fee13e94dda63",
    # the English cards (issue 17), as first written
    "dataset=custom": "7e25ffaddc20ad61",
    "dataset=medmcqa": "24060c9d92ef6262",
    "dataset=medqa": "9ed1c7cd7246170e",
    "dataset=medxpertqa": "c7ca1a5d9f35473b",
    "dataset=medxpertqa_sampled": "9000c4b8f279fa6c",
    "dataset=mmlu_medical": "50a94d976c3ab785",
    # the NEJM Image Challenge cards (issue 18), as first written
    "dataset=nejm": "4addae392e104c0c",
    "dataset=nejm_dx": "8f371ef61c146e4a",
    # the MedAgentBench card (issue 21), as first written
    "dataset=medagentbench": "93a0455407ebc608",
    "model=claude_opus_4_6": "c49cb9a4558cfbe3",
    "model=claude_sonnet_4_6": "3a2629f31caa7198",
    "model=gemini_3_1_pro": "b2018b68f622ffed",
    "model=gpt_5_2": "ea2bd40c60f57177",
    "model=gpt_oss_120b": "3e84105ebed5c089",
    "model=gpt_oss_20b": "bbf230e6c761b484",
    "model=gpt_oss_swallow_120b": "0ddc4d65361bd14c",
    "model=medrect_32b": "2c3a924b3c30df83",
    "model=qwen3_32b": "3095cc1a3149bce2",
    "model=qwen3_32b_nothink": "c22a394051770da5",
    "model=qwen3_5_122b_a10b": "bf13ca35b8c301ed",
    "model=qwen3_5_122b_a10b_nothink": "5db344e5787b9eed",
    "model=qwen3_5_27b": "3cf1813c2ed9ad95",
    "model=qwen3_5_27b_nothink": "6ce4fd5e11ca2574",
    "model=qwen3_5_35b_a3b": "15abcb3ba6304aa5",
    "model=qwen3_5_35b_a3b_nothink": "c9e09386c6d02497",
    "model=qwen3_5_397b": "699927e991798909",
    "model=qwen3_swallow_32b": "290b704e16c00443",
    "model=smollm2_135m": "6c5672b03330a001",
    "provider=local": "f167d6b7bd8f91d3",
    "provider=ollama": "bb2216ebdf5ebe9e",
    "provider=openai": "eec80ec37122ee58",
    "provider=openrouter": "d5f8657b3c7744b6",
    "provider=sglang": "331ebb2e61e90fc6",
    "provider=vllm": "e2b6d54707ce3f66",
}


def _norm(value: Any) -> Any:
    if isinstance(value, dict):
        out = {k: _norm(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(_norm(value), sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def _composed(overrides: list[str], config_name: str = "config") -> dict[str, Any]:
    cfg = OmegaConf.to_container(compose(overrides, config_name), resolve=False)
    assert isinstance(cfg, dict)
    return cfg


def _now(name: str) -> str:
    """Return the digest of group option ``name`` (e.g. ``model=qwen3_32b``) composed now, as BEFORE made it.

    Keys added since BEFORE was taken (for the judge stage) are left out: the values that existed must not change.
    """
    if name in ("config", "score"):
        cfg = _composed([], name)
        cfg["paths"].pop("judgments")
        if name == "config":  # null now means the template's marker, which for Japanese is this one
            assert cfg["prompt"]["answer_marker"] is None
            cfg["prompt"]["answer_marker"] = "【回答】"
            # added for cross-lingual runs (issue 19): dataset.language=en names a run <model>-en; nothing else moved
            assert cfg["run"]["name_aliases"].pop("dataset.language") == ""
            assert cfg["run"].pop("dry_run") is False  # issue 19 part 3: run.dry_run, off by default
            assert cfg["run"].pop("repeats") == 1  # issue 19 part 1: one sample per question unless told
            # issue 19 part 4: the answer format (the embedded default model's card says json) and its run-name aliases
            assert cfg["prompt"].pop("answer_format") == "${model.answer_format}"
            assert cfg["run"]["name_aliases"].pop("prompt.answer_format") == ""
            assert cfg["run"]["name_aliases"].pop("model.answer_format") == ""
        fhir = cfg.pop("fhir")  # issue 21: the FHIR server of agent data sets, in both configs
        assert fhir["base_url"] == "http://localhost:8080/fhir/" and fhir["launch"] is False
        return _digest({k: v for k, v in cfg.items() if k not in ("model", "provider", "dataset")})
    group = name.split("=")[0]
    if group == "provider":
        provider = _composed([name])["provider"]
        provider.pop("structured_output")
        return _digest(provider)
    if group == "dataset":
        card = _composed([name])["dataset"]
        grader = {
            "igakuqa": "exam",
            "igakuqa119": "exam",
            "jmle2026": "exam",
            "nejm_dx": "judge",
            "medagentbench": "agent",
        }
        assert card.pop("grader") == grader.get(card["name"], "choice")
        defaults = (("seed", 0), ("include_no_context", False), ("task_types", None), ("max_rounds", 8))
        for key, default in defaults:  # issue 18's and 21's keys, at their defaults
            if card[key] == default:
                card.pop(key)
        return _digest(card)
    cfg = compose([name, "provider=vllm"])
    model = OmegaConf.to_container(cfg.model, resolve=False)
    assert isinstance(model, dict)
    assert model.pop("answer_format") == ("json" if name == "model=smollm2_135m" else "text")  # issue 19 part 4
    model["serve"] = {k: v for k, v in model["serve"].items() if not (k in ("tp", "dp", "pp") and v == 1)}
    server = {k: v for k, v in to_plain(cfg.server).items() if k != "log"}  # resolved: the model's serve keys
    return _digest({"model": model, "server": server})


def test_every_group_option_has_a_known_digest():
    options = {
        f"{p.parent.name}={p.stem}" for g in ("model", "provider", "dataset") for p in CONF_DIR.glob(f"{g}/*.yaml")
    }
    assert options == set(BEFORE) - {"config", "score"}


@pytest.mark.parametrize("name", list(BEFORE))
def test_slim_yamls_compose_to_the_values_they_had(name):
    assert _now(name) == BEFORE[name], f"{name}: composed values changed (digest now {_now(name)})"


def _refused(args: list[str], tmp_path: Path, script: str = "predict.py") -> str:
    """Run ``script args`` writing under tmp_path; assert one ``error:`` line, exit 2, nothing written."""
    extra = [f"paths.predictions={tmp_path / 'predictions'}"]
    if script == "score.py":
        extra += [f"paths.scored={tmp_path / 'scored'}", f"paths.leaderboard={tmp_path / 'leaderboard'}"]
    result = run_python([str(REPO / script), *args, *extra], cwd=tmp_path)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert list(tmp_path.iterdir()) == [], list(tmp_path.rglob("*"))
    return lines[0]


NEAR_MISSES = {
    "provider.timeout=5": "did you mean provider.timeout_s?",
    "model.params.temprature=0.7": "did you mean model.params.temperature?",
    "run.limt=5": "did you mean run.limit?",
    "model.serve.tpp=2": "did you mean model.serve.tp?",
    "concurrency=8": "did you mean model.max_concurrency or provider.max_concurrency?",
}


@pytest.mark.parametrize("override", list(NEAR_MISSES))
def test_a_mistyped_key_is_refused_naming_the_key_it_meant(tmp_path, override):
    message = _refused([override], tmp_path)
    assert f"Unknown setting {override.split('=')[0]} in {override!r}" in message
    assert NEAR_MISSES[override] in message


def test_a_plus_key_the_schema_lacks_is_refused_not_silently_added(tmp_path):
    # Hydra alone accepted both: no temperature sent, timeout_s still 1800, run named qwen3_32b-temprature_0.7
    message = _refused(["model=qwen3_32b", "+model.temprature=0.7", "+provider.timeout=5"], tmp_path)
    assert "model.temprature" in message and "did you mean model.params.temperature?" in message
    assert "'+' adds keys only inside free-form settings" in message
    assert "Unknown setting foo.bar" in _refused(["+foo.bar=1"], tmp_path)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("run.limit=abc", "run.limit must be a whole number (got 'abc')."),
        ("provider.max_concurrency=[1]", "provider.max_concurrency must be a whole number (got [1])."),
        ("run.fsync=maybe", "run.fsync must be true or false (got 'maybe')."),
        ("provider.timeout_s=soon", "provider.timeout_s must be a number (got 'soon')."),
        ("model.params.temperature=hot", "model.params.temperature must be a number or null (got 'hot')."),
        ("model.params.max_tokens=1.5", "model.params.max_tokens must be a whole number or null (got 1.5)."),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_at_compose_time(tmp_path, override, expected):
    assert _refused([override], tmp_path) == f"error: {expected}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run.limit=[1,"], "Cannot read the override 'run.limit=[1,'"),
        (["provider=vlm"], "provider=vlm: there is no conf/provider/vlm.yaml. Did you mean provider=vllm?"),
        (["+model.params.temperature=1"], "model.params.temperature already has a value: set it without the '+'"),
        (["~model.notice"], "Settings of the schema cannot be deleted (~model.notice)"),
        (["-m", "run.limit=1,abc"], "run.limit must be a whole number (got 'abc')."),
        (["provider.request_extra.usage=1"], "To add it, write +provider.request_extra.usage=1."),
    ],
)
def test_hydra_override_errors_become_our_one_paragraph(tmp_path, args, expected):
    assert expected in _refused(args, tmp_path)


def test_score_refuses_a_mistyped_key_and_a_wrong_type(tmp_path):
    assert "did you mean bootstrap.samples?" in _refused(["bootstrap.sample=5"], tmp_path, "score.py")
    assert "plots must be true or false (got 'abc')" in _refused(["plots=abc"], tmp_path, "score.py")
    assert "did you mean import.system?" in _refused(["import.sytem=gpt4"], tmp_path, "score.py")


def test_allowed_additions_and_hydra_flags_still_work():
    assert compose(["+model.params.seed=1"]).model.params.seed == 1  # a typed param, null until set
    assert compose(["+provider.request_extra.top_k=5"]).provider.request_extra.top_k == 5  # a free-form dict
    assert compose(["model=gpt_5_2", "++model.serve={hf_id: org/m}"]).model.serve.hf_id == "org/m"
    shown = run_python(["predict.py", "+model.params.seed=1", "provider.timeout_s=5", "--cfg", "job"])
    assert shown.returncode == 0, shown.stderr
    assert "seed: 1" in shown.stdout and "timeout_s: 5.0" in shown.stdout
    assert run_python(["predict.py", "--help"]).returncode == 0
    hydra = run_python(["predict.py", "hydra/launcher=a100", "hydra.launcher.partition=gpu", "--cfg", "hydra"])
    assert hydra.returncode == 0 and "partition: gpu" in hydra.stdout, hydra.stderr


def test_module_commands_get_the_same_message():
    with pytest.raises(UserError, match=r"did you mean provider\.timeout_s\?"):
        compose(["provider.timeout=5"])
    with pytest.raises(UserError, match=r"did you mean bootstrap\.samples\?"):
        compose(["bootstrap.sample=5"], config_name="score")
    result = run_python(["-m", "jmle_eval.serving", "print", "model.serve.tpp=2"])
    assert result.returncode == 2 and result.stderr.startswith("error: Unknown setting model.serve.tpp"), result.stderr


def test_a_mistyped_key_or_a_wrong_type_in_a_yaml_names_the_file(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "model" / "typo.yaml").write_text("name: typo\nid: org/typo\nparams:\n  temprature: 0.7\n")
    (conf / "provider" / "slow.yaml").write_text("name: slow\ntimeout_s: soon\n")
    monkeypatch.setattr(config, "CONF_DIR", conf)
    with pytest.raises(UserError) as refused:
        compose(["model=typo"])
    assert str(refused.value).startswith(
        "Unknown setting model.params.temprature in conf/model/typo.yaml: did you mean model.params.temperature?"
    )
    with pytest.raises(UserError, match=re.escape("provider.timeout_s must be a number (got 'soon').")):
        compose(["provider=slow"])


def test_a_card_read_on_its_own_gets_the_schema_defaults():
    card = load_card("jmle2026")
    assert card["grader"] == "exam" and card["years"] is None and card["exams"]["120"]["year"] == 2026
