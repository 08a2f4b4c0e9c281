"""Grading a ``run.repeats=k`` run: k samples per question, summarised the way a reviewer asks for.

Each sample i (files ``<id>.r<i>.json``) is graded on its own, exactly as a
one-sample run would be. The run's scored lines, and so its exam score, verdicts
and breakdowns, are those of the **majority answer** of each question (ties: the
answer given first, in sample order). Beside them, :class:`RepeatStats` holds:

* ``mean`` ± ``sd``: the mean and the sample standard deviation of the k per-sample
  accuracies: the expected accuracy of one sample, and how much it moves from run to run;
* ``ci95``: a 95 % bootstrap CI of that mean that resamples *questions*, each carrying the
  mean of its own k samples, so it covers both sources of variance: which questions were
  asked, and what the model happened to sample on each (the within-question part shrinks
  as k grows). It is wider than the spread of the k accuracies alone;
* ``majority``: the accuracy of the majority answers (self-consistency);
* ``consistency``: the mean share of a question's k samples that give its majority answer;
* ``pass_at_k``: the share of questions that at least one of the k samples answers correctly.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from jmle_eval.schema import ScoredItem
from jmle_eval.score import stats
from jmle_eval.score.exams import exam_results, graded_pairs
from jmle_eval.score.grade import Key, to_decimal
from jmle_eval.score.graders import grader_of
from jmle_eval.score.lines import score_predictions
from jmle_eval.score.parts import RepeatStats
from jmle_eval.score.summary import UsageTally

__all__ = ["RepeatStats", "repeats_of", "score_repeats"]


def repeats_of(info: Mapping[str, Any]) -> int:
    """Return a run's samples per question (``run.json``'s ``repeats``; 1 for a one-sample or imported run)."""
    value = info.get("repeats") or 1
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


def _split(predictions: Mapping[str, Mapping[str, Any]], k: int) -> list[dict[str, Mapping[str, Any]]]:
    """Return one ``{question id: record}`` per sample index."""
    samples: list[dict[str, Mapping[str, Any]]] = [{} for _ in range(k)]
    for record in predictions.values():
        samples[int(record["repeat"])][str(record["question_id"])] = record
    return samples


def _vote(item: ScoredItem) -> tuple[str, ...] | None:
    """Return what a sample votes for: its letters, or its number as a number ("0.4" and "0.40" are one vote)."""
    if not item.predicted:
        return None
    if item.type == "numeric":
        value = to_decimal(item.predicted[0])
        return (str(value.normalize()),) if value is not None else tuple(item.predicted)
    return tuple(item.predicted)


def _majority(samples: Sequence[ScoredItem], k: int) -> ScoredItem:
    """Return a question's line: the majority answer's (ties: the first given), with every sample's answer."""
    answers = [tuple(s.predicted) if s.predicted else None for s in samples]
    ballots = [_vote(s) for s in samples]
    votes = Counter(b for b in ballots if b is not None)
    if votes:
        best = max(votes.values())
        winner = next(b for b in ballots if b is not None and votes[b] == best)
        chosen = samples[ballots.index(winner)]
    else:  # no sample has a readable answer: the first answered one stands for the question
        chosen = next((s for s in samples if s.status in ("ok", "error")), samples[0])
        if chosen.status not in ("ok", "error"):
            return chosen  # never asked (missing, or left out by image_mode=skip): a line as a one-sample run's
    detail = {
        "answers": [list(a) if a else None for a in answers],
        "correct": [s.correct for s in samples],
        "agreement": round(max(votes.values()) / k, 4) if votes else 0.0,
    }
    totals = {
        f: sum(getattr(s, f) for s in samples) for f in ("prompt_tokens", "completion_tokens", "reasoning_tokens")
    }
    return chosen.model_copy(update={**totals, "repeats": detail})


def _merge(tallies: Sequence[UsageTally]) -> UsageTally:
    """Return one tally of every sample's files: tokens, latency and cost are paid for each sample."""
    out = UsageTally()
    for t in tallies:
        out.prompt, out.completion, out.reasoning = (
            out.prompt + t.prompt,
            out.completion + t.completion,
            out.reasoning + t.reasoning,
        )
        out.latency += t.latency
        out.cost += t.cost
        out.cost_known &= t.cost_known
        out.cost_from_price |= t.cost_from_price
        out.finish.update(t.finish)
    return out


def _share(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _exam_parts(
    keys: Sequence[Key], per_sample: Sequence[Sequence[ScoredItem]], card: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the exam grader's per-sample score % and, by exam, how many samples pass."""
    counted = [j for j, key in enumerate(keys) if key.counted]
    possible = sum(keys[j].points for j in counted)
    pcts = [
        round(100 * sum(items[j].points for j in counted) / possible, 2) if possible else None for items in per_sample
    ]
    passes: Counter[str] = Counter()
    for items in per_sample:
        for exam, result in exam_results(keys, items, card).items():
            passes[exam] += result.verdict == "pass"
    known = [p for p in pcts if p is not None]
    return {
        "score_pct_by_repeat": pcts,
        "score_pct_mean": round(statistics.fmean(known), 2) if known else None,
        "score_pct_sd": round(statistics.stdev(known), 2) if len(known) > 1 else None,
        "passes": dict(sorted(passes.items())),
    }


def repeat_stats(
    keys: Sequence[Key],
    per_sample: Sequence[Sequence[ScoredItem]],
    lines: Sequence[ScoredItem],
    card: Mapping[str, Any],
    bootstrap: Mapping[str, int],
) -> RepeatStats:
    """Return the k samples' statistics over the questions that count in accuracy (see the module docstring)."""
    k = len(per_sample)
    by_sample = [graded_pairs(keys, items) for items in per_sample]
    accuracies = [round(sum(i.correct for _, i in pairs) / len(pairs), 4) if pairs else None for pairs in by_sample]
    graded = {key.question_id for key, _ in graded_pairs(keys, lines)}
    means, hits, agreement, complete = [], [], [], 0
    for j, key in enumerate(keys):
        answered = [
            items[j] for items in per_sample if key.question_id in graded and items[j].status in ("ok", "error")
        ]
        if not answered:
            continue
        complete += len(answered) == k
        means.append(sum(s.correct for s in answered) / len(answered))
        hits.append(float(any(s.correct for s in answered)))
        agreement.append(float((lines[j].repeats or {}).get("agreement") or 0.0))
    known = [a for a in accuracies if a is not None]
    majority = [i.correct for _, i in graded_pairs(keys, lines)]
    return RepeatStats(
        k=k,
        questions=len(means),
        complete=complete,
        accuracy_by_repeat=accuracies,
        mean=_share(known),
        sd=round(statistics.stdev(known), 4) if len(known) > 1 else None,
        ci95=stats.mean_ci(means, bootstrap["samples"], bootstrap["seed"]),
        majority=_share([float(c) for c in majority]),
        consistency=_share(agreement),
        pass_at_k=_share(hits),
        **(_exam_parts(keys, per_sample, card) if grader_of(card) == "exam" else {}),
    )


def score_repeats(
    keys: Sequence[Key],
    info: Mapping[str, Any],
    predictions: Mapping[str, Mapping[str, Any]],
    card: Mapping[str, Any],
    bootstrap: Mapping[str, int],
    k: int,
) -> tuple[list[ScoredItem], UsageTally, RepeatStats]:
    """Return a repeats run's lines (majority answers), the usage of its k samples, and its :class:`RepeatStats`."""
    graded = [score_predictions(keys, info, sample) for sample in _split(predictions, k)]
    per_sample = [items for items, _ in graded]
    lines = [_majority([items[j] for items in per_sample], k) for j in range(len(keys))]
    return lines, _merge([tally for _, tally in graded]), repeat_stats(keys, per_sample, lines, card, bootstrap)
