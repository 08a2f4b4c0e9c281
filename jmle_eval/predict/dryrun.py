"""What a run would ask and what it would cost, without asking: ``run.dry_run=true``.

:func:`main` makes the same plan a real run makes (resume, shard, limit, ids and
image mode all apply), then prints one block: the questions still to ask, the
prompt tokens of the messages predict would send, the completion tokens to
expect and the cost range at the model's list price. It sends no request,
starts no server, needs no API key and leaves no folder behind.

How each figure is found (README "Cost dry run" says the same):

- prompt tokens: the model's own tokenizer where one is on this machine (a
  ``model.serve.weights`` GGUF, read vocabulary-only by llama.cpp); otherwise an
  estimate of ASCII characters / 4 (4.07 measured with SmolLM2's tokenizer on the
  English prompts) plus 1 token per other character (Japanese). Each message adds
  3 tokens and the reply 3 (the chat format); each image counts 765 tokens.
- completion tokens per question: the 10th percentile / mean / 90th percentile
  of ``usage.completion_tokens`` (reasoning included, as in the API's usage) over
  the answered files of earlier runs of the same model and reasoning effort under
  ``paths.predictions``; without any, 200 / 1,000 / 4,000. Capped by
  ``model.params.max_tokens`` (or ``max_completion_tokens``) when set.
- cost: prompt × input price + completion × output price, low with the low
  completion figure and high with the high one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from jmle_eval.config import to_plain
from jmle_eval.hydra_output import remove_output
from jmle_eval.predict import prompts, store
from jmle_eval.predict.plan import Plan, plan
from jmle_eval.predict.repeats import question_of
from jmle_eval.schema import Question

log = logging.getLogger("jmle_eval.predict")

ASCII_CHARS_PER_TOKEN = 4.0
"""English text: 4.07 characters per token measured with SmolLM2's tokenizer over the MedXpertQA prompts."""
OTHER_CHARS_PER_TOKEN = 1.0
"""Japanese: about one token per character (large vocabularies need fewer; SmolLM2's needs 1.8, measured)."""
MESSAGE_TOKENS = 3
"""What the chat format adds per message, and once more to start the reply (OpenAI's published count)."""
IMAGE_TOKENS = 765
"""One image: OpenAI's count for a 1024 × 1024 image at detail high (4 tiles of 512 px × 170 + 85)."""
DEFAULT_COMPLETION = (200, 1000, 4000)
"""Completion tokens per question (low, expected, high) when no earlier run of the model has answered."""


@dataclass(frozen=True)
class Estimate:
    """What one run would ask and cost."""

    run_name: str
    dataset: str
    todo: int
    selected: int
    prompt_tokens: int
    prompt_how: str
    completion: tuple[int, int, int]  # totals: low, expected, high
    completion_how: str
    cost: tuple[float, float] | None  # USD low, high; None: the card has no price


def estimate_text(text: str) -> int:
    """Return the estimated token count of text: ASCII characters / 4 plus one per other character."""
    ascii_chars = sum(1 for c in text if c.isascii())
    other = len(text) - ascii_chars
    return round(ascii_chars / ASCII_CHARS_PER_TOKEN + other / OTHER_CHARS_PER_TOKEN)


def tokenizer(model: Mapping[str, Any]) -> tuple[Callable[[str], int], str]:
    """Return a token counter for the model's text and how it counts: its own tokenizer if here, else the estimate."""
    weights = (model.get("serve") or {}).get("weights")
    if weights:
        try:
            import llama_cpp

            from jmle_eval.serving.launch import weights_path

            vocab = llama_cpp.Llama(model_path=weights_path(str(weights)), vocab_only=True, verbose=False)
        except Exception as exc:  # any failure to read the vocabulary falls back to the estimate
            log.debug("no tokenizer from %s (%s); estimating", weights, exc)
        else:
            return lambda text: len(vocab.tokenize(text.encode(), add_bos=False, special=False)), "model tokenizer"
    return estimate_text, "estimate: ASCII chars/4 + 1 per other char"


def _images(question: Question, job: Plan) -> int:
    if job.image_mode != "vision" or not question.requires_image:
        return 0
    return max(len(question.images), 1)  # an image not fetched yet counts as one


def prompt_tokens(job: Plan, questions: list[Question], count: Callable[[str], int]) -> int:
    """Return the prompt tokens of the messages predict would send for ``questions`` (images as IMAGE_TOKENS)."""
    system = prompts.template(job.prompt_version, job.prompt_language)["system"]
    total = 0
    for q in questions:  # build_messages's text, without reading image files into data URLs
        user = prompts.render_text(
            q, job.image_mode, job.prompt_version, job.answer_marker, job.prompt_language, job.answer_format
        )
        total += count(system) + count(user) + 3 * MESSAGE_TOKENS + IMAGE_TOKENS * _images(q, job)
    return total


def _earlier_runs(predictions: Path, model: Mapping[str, Any]) -> list[Path]:
    """Return the run folders under ``predictions`` whose run.json names this model and reasoning effort."""
    found = []
    for header_path in sorted(predictions.glob(f"*/*/{store.RUN_FILE}")):
        with contextlib.suppress(OSError, ValueError):
            summary = json.loads(header_path.read_text(encoding="utf-8")).get("model") or {}
            if summary.get("name") == model["name"] and summary.get("reasoning_effort") == model.get(
                "reasoning_effort"
            ):
                found.append(header_path.parent)
    return found


def completion_per_question(model: Mapping[str, Any], predictions: Path) -> tuple[tuple[int, int, int], str]:
    """Return completion tokens per question (low, expected, high) and where the figures come from."""
    runs = _earlier_runs(predictions, model)
    counts = [
        int((record.get("usage") or {}).get("completion_tokens") or 0)
        for run_dir in runs
        for record in store.read_predictions(run_dir).values()
        if record.get("status") == "ok"
    ]
    if counts:
        deciles = statistics.quantiles(counts, n=10) if len(counts) > 1 else [counts[0]] * 9
        figures = (round(deciles[0]), round(statistics.fmean(counts)), round(deciles[-1]))
        how = f"measured: p10/mean/p90 of {len(counts)} answers in {len(runs)} earlier run(s)"
    else:
        figures, how = DEFAULT_COMPLETION, "default range: no earlier run of this model"
    params = model.get("params") or {}
    cap = params.get("max_completion_tokens") or params.get("max_tokens")
    if cap and figures[2] > cap:
        figures = (min(figures[0], cap), min(figures[1], cap), cap)
        how += f", capped by max_tokens {cap}"
    return figures, how


def estimate(job: Plan, predictions: Path) -> Estimate:
    """Return the questions, tokens and cost of a planned run, counted without asking anything."""
    todo = [question_of(item) for item in job.todo or []]  # run.repeats: each sample costs a whole question
    count, prompt_how = tokenizer(job.model)
    prompt = prompt_tokens(job, todo, count)
    per_question, completion_how = completion_per_question(job.model, predictions)
    completion = (per_question[0] * len(todo), per_question[1] * len(todo), per_question[2] * len(todo))
    price = job.model.get("price") or {}
    cost = None
    if price.get("input") is not None and price.get("output") is not None:
        low, high = (
            (prompt * float(price["input"]) + tokens * float(price["output"])) / 1e6
            for tokens in (completion[0], completion[2])
        )
        cost = (low, high)
    return Estimate(
        run_name=job.run_name,
        dataset=str(job.header["dataset"]),
        todo=len(todo),
        selected=job.selected,
        prompt_tokens=prompt,
        prompt_how=prompt_how + (f"; {IMAGE_TOKENS} per image" if job.image_mode == "vision" else ""),
        completion=completion,
        completion_how=completion_how,
        cost=cost,
    )


def render(result: Estimate, price: Mapping[str, Any]) -> str:
    """Return the printed block of one dry run."""
    low, expected, high = result.completion
    if result.cost is None:
        cost = "unknown (no price)"
    else:
        cost = (
            f"${result.cost[0]:,.2f} – ${result.cost[1]:,.2f} (input {price['input']}, output {price['output']} $/Mtok)"
        )
    rows = [
        ("questions", f"{result.todo} to ask, {result.selected} selected, {result.selected - result.todo} done"),
        ("prompt tokens", f"{result.prompt_tokens:,} ({result.prompt_how})"),
        ("completion tokens", f"{low:,} – {high:,}, expected {expected:,} ({result.completion_how})"),
        ("cost (USD)", cost),
    ]
    head = f"dry run: {result.run_name} on {result.dataset} (nothing sent, nothing written)"
    return "\n".join([head, *(f"  {name:<18} {value}" for name, value in rows)])


def main(cfg: DictConfig) -> int:
    """Print what the configured run would ask and cost; send and write nothing; return 0."""
    plain = to_plain(cfg)
    job = plan(plain)
    predictions = Path(str(plain["paths"]["predictions"]))
    print(render(estimate(job, predictions), job.model.get("price") or {}), flush=True)
    remove_output(predictions, sweep_record=True)  # the log folder and a sweep's record: nothing written
    return 0
