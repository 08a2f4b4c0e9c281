"""The judge stage: an LLM grades prediction files with a rubric, one judgment file per prediction.

``rubrics`` turns a rubric card (``conf/rubric/*.yaml``) into the judge's
messages and reads its reply; ``plan`` finds the prediction runs to judge and
what is left in each (a judgment is done when it judged the prediction file as
it is now); ``runner`` runs each plan through the predict stage's session —
the same client, retries, adaptive limit, store, lock and writer — so judging
has predict's guarantees: exactly once, resumable, a clear error for every stop.
``judge.py`` calls :func:`runner.main`.
"""
