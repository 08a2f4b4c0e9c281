"""The score stage: prediction folders → parsed, graded, summarised runs; never talks to a model.

``runs`` reads run folders; ``parse`` reads the answer from a reply; ``grade`` compares
it with the key; ``graders`` is what the data set card's ``grader`` makes of a run
(``exam``: ``exams`` applies each exam's sections and pass criteria; ``choice``:
accuracy only; ``judge``: a judge's grade); ``stats`` and ``compare`` give confidence intervals and paired tests;
``summary`` builds a run's summary (the typed records in ``records``); ``judgments``
reads the judge runs of a run (judge.py's files), ``judge_marks`` and ``judged`` make
each judge's grade, its agreement with the parser and between judges (``judge_records``);
``importers`` turn published results into run folders; ``stage`` runs it all
(``score.py`` calls :func:`stage.main`).
"""
