"""Reports from scored runs: leaderboard tables, console and Markdown, plots, and the HTML report.

``leaderboard`` builds the rows; ``render`` prints them (console, Markdown);
``plots`` draws them; ``html_report`` (``python -m jmle_eval.report``) writes the
self-contained HTML page that ``html`` and ``html_leaderboard`` assemble.
"""
