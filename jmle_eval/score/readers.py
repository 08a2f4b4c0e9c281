"""A crowd of human readers as a baseline (the NEJM Image Challenge): their accuracy, and the model beside them.

A question whose key carries the readers' most-voted option (attribute ``readers_choice``)
and their vote share for the right option (``human_accuracy``, %) gets a reference row:
the readers' mean accuracy over every counted question of the run's set (the chance a
random reader is right), how often the readers' most-voted option is right, and how often
the model's answer is the option most readers chose (on the questions it answered).
"""

from __future__ import annotations

from collections.abc import Sequence

from jmle_eval.schema import ScoredItem
from jmle_eval.score.grade import Key
from jmle_eval.score.records import Readers


def readers(keys: Sequence[Key], pairs: Sequence[tuple[Key, ScoredItem]]) -> Readers | None:
    """Return the readers' baseline and the model's agreement with them, or None without reader votes.

    ``keys`` are every question of the run's set (the reference row covers them all); ``pairs``
    the answered ones (the model's agreement is over those).
    """
    voted = [
        k
        for k in keys
        if k.counted and k.type != "free" and k.human_accuracy is not None and dict(k.attributes).get("readers_choice")
    ]  # the readers chose among options: no baseline for a free-text form of the same cases
    if not voted:
        return None
    majority_right = sum(any(a == (dict(k.attributes)["readers_choice"],) for a in k.gold) for k in voted)
    answered = [(k, i) for k, i in pairs if k.human_accuracy is not None and dict(k.attributes).get("readers_choice")]
    agree = sum(i.predicted == [dict(k.attributes)["readers_choice"]] for k, i in answered)
    return Readers(
        cases=len(voted),
        mean_accuracy=round(sum(k.human_accuracy or 0.0 for k in voted) / len(voted) / 100, 4),
        majority_accuracy=round(majority_right / len(voted), 4),
        agreement_n=len(answered),
        agreement=agree,
        agreement_rate=round(agree / len(answered), 4) if answered else None,
    )
