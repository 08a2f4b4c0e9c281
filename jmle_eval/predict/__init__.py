"""The predict stage: settings → plan → prompts → client → store, run by :mod:`jmle_eval.predict.runner`.

``settings`` checks every run setting; ``plan`` decides everything before the first
request (questions, request body, fingerprint); ``prompts`` builds the messages from
the template files in ``templates/<language>/<version>.yaml``; ``session`` checks the
server, opens and locks the run folder and turns whatever stops a run into one clear
error; ``ask`` sends every question through ``client`` (retries, adaptive limit,
outage handling; reply parsing in ``replies``, the limit in ``limit``, outages in
``outage``) and turns each reply into a ``schema.Prediction``; ``writer`` writes one
file per question on background threads; ``store`` reads the run folder (header,
predictions, totals; ``lock`` keeps a second process off a run); ``progress`` shows
it. ``predict.py`` calls :func:`runner.main`.
"""
