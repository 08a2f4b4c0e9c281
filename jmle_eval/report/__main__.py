"""``python -m jmle_eval.report [score.py overrides]``: write the HTML report of scored runs."""

from jmle_eval.cli import run_module
from jmle_eval.report.html_report import main

run_module(main)
