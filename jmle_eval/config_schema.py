"""The schema of ``conf/``: every key, its type and its default, as dataclasses in Hydra's ConfigStore.

A YAML states only what differs from these defaults. An unknown key or a value
of the wrong type fails when the config is composed, not halfway through a
run: Hydra merges each YAML and each override into these typed nodes. Free-form
parts stay open dicts (``model.extra_body``, ``provider.request_extra``, the
exam rules of a data set card); everything else is closed.

``model.params`` values are typed ``Any`` on purpose: a float field would turn
``temperature=1`` into ``1.0`` and so change the fingerprint of runs made
before, which could then not be resumed. :func:`check_values` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

from jmle_eval.config_cards import (
    NUMBER_PARAMS,
    WHOLE_PARAMS,
    EngineSettings,
    Model,
    Params,
    Price,
    Provider,
    Serve,
)
from jmle_eval.errors import UserError

__all__ = [
    "NUMBER_PARAMS", "WHOLE_PARAMS", "EngineSettings", "Model", "Params", "Price", "Provider", "Serve",
    "check_values", "register",
]  # fmt: skip


@dataclass
class Dataset:
    """A data set card: ``conf/dataset/<name>.yaml``. Exam rules and sources are free-form (their loaders check)."""

    name: str = MISSING
    loader: str = MISSING
    grader: str = "exam"  # exam (JMLE points, sections, pass/fail) | choice (letter-set match) | judge (LLM rubric)
    rubric: str | None = None  # grader judge: the rubric whose judgments are the grade of record (conf/rubric/)
    language: str | None = None  # the questions' language, which picks the prompt template; null: ja
    title: str | None = None
    license: str | None = None
    citation: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    verify: bool = True
    download: bool = True
    years: Any = None
    blocks: Any = None
    exams: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    breakdowns: list[str] = field(default_factory=list)  # Question.attributes the leaderboard breaks accuracy down by
    subsets: dict[str, Any] = field(default_factory=dict)  # subset name -> its source file(s) (MedXpertQA: text, mm)
    subset: str | None = None  # which of the card's subsets to load; null: all
    images_dir: str | None = None  # local copy of image files the source names but does not ship
    fields: dict[str, Any] = field(default_factory=dict)  # custom: part -> field of the file (id, question, ...)
    format: str | None = None  # custom: jsonl | csv | hf (a Hugging Face datasets folder); null: from the name
    include_no_context: bool = False  # nejm: keep the cases whose text alone carries no clinical context
    sample: int | None = None  # any set: random.Random(seed).sample(sorted ids, sample), kept in data set order
    seed: int = 0
    task_types: Any = None  # agent sets (MedAgentBench): the task types to run, e.g. [1, 3]; null: all
    max_rounds: int = 8  # agent sets: model replies per episode


@dataclass
class Prompt:
    version: str = "v1"
    answer_marker: str | None = None  # the final-answer line; null: the template's (ja 【回答】, en "Answer: ")
    language: str | None = None  # template language (ja, en); null: the data set card's language, else ja
    answer_format: str = "text"  # text: a final-answer line | json: {"answer": ...} under the question's schema


@dataclass
class Paths:
    data: str = "data"
    predictions: str = "predictions"
    judgments: str = "judgments"
    scored: str = "scored"
    leaderboard: str = "leaderboard"


@dataclass
class Run:
    """``run.*`` of conf/config.yaml (which documents each key)."""

    name: str = MISSING  # conf/config.yaml: the model name plus the answer-changing overrides
    dir: str = MISSING  # conf/config.yaml: predictions/<dataset>/<run name>
    limit: int | None = None
    shard: str | None = None
    ids: Any = None
    retry_errors: bool = True
    progress: Any = "auto"  # auto | true | false
    log_every_s: float = 30.0
    max_rejected: int = 3
    fail_on_errors: bool = False
    fsync: bool = True
    dry_run: bool = False  # print the questions, tokens and cost a run would have; send and write nothing
    repeats: int = 1  # k samples per question, files <id>.r<i>.json; k > 1 is in the run name and fingerprint
    name_ignore: list[str] = field(default_factory=list)
    name_aliases: dict[str, str] = field(default_factory=dict)


@dataclass
class Server(EngineSettings):
    """``server.*`` of conf/config.yaml, which points the engine settings at ``model.serve.*``."""

    launch: bool = False
    executable: Any = None
    host: str = "127.0.0.1"
    port: int | None = None
    distributed_backend: str | None = None
    health_timeout_s: float = 1800.0
    stop_grace_s: float = 30.0
    log: str = MISSING  # conf/config.yaml: one log per process under the run folder


@dataclass
class Fhir:
    """``fhir.*``: the FHIR server of agent data sets (MedAgentBench), read by predict.py and score.py."""

    base_url: str = "http://localhost:8080/fhir/"  # upstream's address of the docker image
    launch: bool = False  # true: start it for the run (command below) and stop it after
    command: Any = None  # argv; null: docker run --rm -p <port>:8080 jyxsu6/medagentbench (port from base_url)
    health_timeout_s: float = 900.0  # the image loads 100 patients before it answers
    stop_grace_s: float = 30.0
    log: str | None = None  # the launched server's log; null: <run dir>/logs/fhir-<pid>.log


@dataclass
class PredictConfig:
    """conf/config.yaml: what predict.py composes."""

    dataset: Dataset = field(default_factory=Dataset)
    model: Model = field(default_factory=Model)
    provider: Provider = field(default_factory=Provider)
    image_mode: str = "auto"  # auto | skip | blind | vision
    prompt: Prompt = field(default_factory=Prompt)
    paths: Paths = field(default_factory=Paths)
    run: Run = field(default_factory=Run)
    server: Server = field(default_factory=Server)
    fhir: Fhir = field(default_factory=Fhir)


@dataclass
class Import:
    jmle2026_bench: Any = None  # a path, a glob or a list of them
    igakuqa_baseline: Any = None
    system: Any = None  # a name or a list of names
    parse: str | None = None  # lenient | extracted


@dataclass
class Bootstrap:
    samples: int = 2000
    seed: int = 0


@dataclass
class ScoreConfig:
    """conf/score.yaml: what score.py composes. ``import_`` is the key ``import`` (a Python keyword)."""

    dataset: Dataset | None = None
    runs: Any = None
    compare: Any = None
    paths: Paths = field(default_factory=Paths)
    import_: Import = field(default_factory=Import)
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    plots: bool = True
    report: bool = False
    fhir: Fhir = field(default_factory=Fhir)


@dataclass
class Rubric:
    """A judge rubric: ``conf/rubric/<name>.yaml`` (the prompt text is data, its hash part of the fingerprint)."""

    name: str = MISSING
    version: str = MISSING
    kind: str = MISSING  # choice (option letters) | verdict (correct/incorrect) | score (0-10)
    description: str | None = None
    applies_to: str = "any"  # choice: only multiple-choice questions | any
    max_response_chars: int = 8000  # longer replies are cut to their last this many characters
    system: str = MISSING
    user: str = MISSING  # $question_id $question $choices $select $reference $response


@dataclass
class JudgeSettings:
    reread_attempts: int = 3  # replies an item may get before an unreadable one is recorded as an error
    structured_output: str = "auto"  # auto: provider.structured_output | json_schema | json_object | none


@dataclass
class JudgeConfig:
    """conf/judge.yaml: what judge.py composes (the judge is a model card + a provider card + a rubric)."""

    dataset: Dataset = field(default_factory=Dataset)
    model: Model = field(default_factory=Model)
    provider: Provider = field(default_factory=Provider)
    rubric: Rubric = field(default_factory=Rubric)
    runs: Any = None  # prediction runs to judge; null: every run of the data set
    judge: JudgeSettings = field(default_factory=JudgeSettings)
    paths: Paths = field(default_factory=Paths)
    run: Run = field(default_factory=Run)
    server: Server = field(default_factory=Server)


ROOTS: dict[str, type] = {"config": PredictConfig, "score": ScoreConfig, "judge": JudgeConfig}
SCHEMA_NAMES = {"config": "predict_schema", "score": "score_schema", "judge": "judge_schema"}


def _key(name: str) -> str:
    return name.rstrip("_")  # import_ -> import


def _score_node() -> DictConfig:
    """Return score.yaml's schema as a plain root holding ScoreConfig's typed nodes, ``import_`` named ``import``."""
    typed = OmegaConf.structured(ScoreConfig)
    return OmegaConf.create({_key(name): typed._get_node(name) for name in typed})


def register(config_name: str | None = None) -> None:
    """Store the schema of ``config_name`` (default: both) in Hydra's ConfigStore, once; conf/*.yaml name them.

    Each costs ~10-20 ms (OmegaConf builds a typed node per field), so an entry point registers only its own.
    """
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for name in [config_name] if config_name else list(ROOTS):
        schema = SCHEMA_NAMES[name]
        if f"{schema}.yaml" not in store.repo:
            store.store(name=schema, node=_score_node() if name == "score" else ROOTS[name])


def check_values(cfg: Any) -> None:
    """Raise UserError when a known ``model.params`` value has the wrong type (they are ``Any`` in the schema)."""
    params = OmegaConf.select(cfg, "model.params", default=None) if OmegaConf.is_config(cfg) else None
    if params is None:
        return
    for name in (*NUMBER_PARAMS, *WHOLE_PARAMS):
        value = params.get(name)
        whole = name in WHOLE_PARAMS
        ok = isinstance(value, int) if whole else isinstance(value, int | float)
        if value is not None and (isinstance(value, bool) or not ok):
            kind = "a whole number" if whole else "a number"
            raise UserError(f"model.params.{name} must be {kind} or null (got {value!r}).")
