"""``python score.py`` as a user runs it: exit codes, messages, determinism, nothing stray on disk."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REFERENCE_RESULTS, REPO, run_python
from tests.score_fixtures import gold_text, write_run, wrong_text

DS = "jmle2026"


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_score_twice_gives_identical_files_and_leaves_nothing_stray(tmp_path):
    write_run(tmp_path / "predictions", DS, "a")
    write_run(tmp_path / "predictions", DS, "b", lambda q: gold_text(q) if q.number % 2 else wrong_text(q))
    first = run_python([str(REPO / "score.py")], cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 run(s) scored" in first.stdout
    outputs = {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("predictions")}
    assert {k.split("/")[0] for k in outputs} == {"scored", "leaderboard"}  # no outputs/, .hydra/, *.log
    assert "leaderboard/jmle2026.png" in outputs
    second = run_python([str(REPO / "score.py")], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert {k: v for k, v in _snapshot(tmp_path).items() if not k.startswith("predictions")} == outputs


def test_skipped_files_give_exit_code_3_with_their_paths(tmp_path):
    folder = write_run(tmp_path / "predictions", DS, "a")
    (folder / "120B-7.json").write_text('{"question_id": "120B-7", "sta', encoding="utf-8")
    done = run_python([str(REPO / "score.py"), "plots=false"], cwd=tmp_path)
    assert done.returncode == 3
    assert "predictions/jmle2026/a/120B-7.json is not valid JSON" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "scored" / DS / "a.summary.json").is_file()


def test_user_errors_exit_2_with_one_clear_message(tmp_path):
    write_run(tmp_path / "predictions", DS, "a")
    for args, expected in [
        (["runs=[nope]"], "No run folder named nope"),
        (["paths.predictions=missing"], "There is nothing to score"),
        (["import.jmle2026_bench=no_such_file.json"], "matches no file"),
        (["import.parse=fuzzy", "import.jmle2026_bench=x.json"], "import.parse='fuzzy'"),
    ]:
        done = run_python([str(REPO / "score.py"), *args], cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: ") and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "scored").exists()


def test_import_and_compare_from_the_command_line(tmp_path):
    files = REFERENCE_RESULTS / "jmle2026"
    done = run_python(
        [
            str(REPO / "score.py"),
            f"import.jmle2026_bench=[{files / 'openai_gpt-5.2.json'},{files / 'Qwen_Qwen3-32B_nothink.json'}]",
            "compare=[jmle2026bench-openai_gpt-5.2,jmle2026bench-Qwen_Qwen3-32B_nothink]",
            "plots=false",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "McNemar exact p" in done.stdout
    assert (
        tmp_path
        / "leaderboard"
        / "jmle2026.compare.jmle2026bench-openai_gpt-5.2__jmle2026bench-Qwen_Qwen3-32B_nothink.json"
    ).is_file()
