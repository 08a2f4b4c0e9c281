"""Downloads are verified against pinned sha256, cached once, and never leave partial files.

A real HTTP server on 127.0.0.1 serves the read-only data copies under the same
``/<repo>/<commit>/<path>`` layout as raw.githubusercontent.com.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from jmle_eval import datasets
from jmle_eval.datasets import fetch
from jmle_eval.errors import UserError
from tests.conftest import DATA_DIR, run_python
from tests.test_datasets import card


class Upstream:
    """A loopback stand-in for raw.githubusercontent.com with switchable damage."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.corrupt: set[str] = set()  # paths served with one byte changed
        self.cut: set[str] = set()  # paths whose body stops halfway, connection closed
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                _, owner, repo, _commit, rel = self.path.split("/", 4)
                name = {"JMLE2026-Bench": "jmle2026", "IgakuQA119": "igakuqa119", "IgakuQA": "igakuqa"}[repo]
                upstream.hits[rel] += 1
                path = DATA_DIR / name / rel
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                if rel in upstream.corrupt:
                    body = body[:-1] + bytes([body[-1] ^ 1])
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if rel in upstream.cut:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def upstream(monkeypatch) -> Iterator[Upstream]:
    monkeypatch.delenv(fetch.ENV_DATA_DIR, raising=False)
    server = Upstream()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def igakuqa119_card(upstream: Upstream) -> dict:
    data = card("igakuqa119")
    data["source"]["base_url"] = upstream.base_url
    return data


def test_download_verifies_caches_and_never_downloads_twice(upstream, tmp_path):
    data = igakuqa119_card(upstream)
    questions = datasets.load(data, data_dir=tmp_path)
    assert len(questions) == 400
    assert set(upstream.hits) == set(data["source"]["files"]) and all(n == 1 for n in upstream.hits.values())
    cached = tmp_path / "igakuqa119" / data["source"]["commit"]
    assert (cached / "results" / "correct_answers.csv").is_file()
    datasets.load(data, data_dir=tmp_path)
    assert all(n == 1 for n in upstream.hits.values()), "a verified cached file was downloaded again"


def test_sha_mismatch_names_file_and_both_hashes_and_keeps_nothing(upstream, tmp_path):
    data = igakuqa119_card(upstream)
    rel = "questions/119C_json.json"
    upstream.corrupt.add(rel)
    with pytest.raises(UserError) as err:
        datasets.load(data, data_dir=tmp_path)
    message = str(err.value)
    assert rel in message and data["source"]["files"][rel] in message
    got = fetch.sha256_of(Path(DATA_DIR / "igakuqa119" / rel))
    assert got == data["source"]["files"][rel] and "expected" in message
    folder = tmp_path / "igakuqa119" / data["source"]["commit"] / "questions"
    assert not (folder / "119C_json.json").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_interrupted_download_leaves_no_partial_file_and_retry_completes(upstream, tmp_path):
    data = igakuqa119_card(upstream)
    rel = "questions/119A_json.json"
    upstream.cut.add(rel)
    with pytest.raises(UserError, match="nothing was kept"):
        datasets.load(data, data_dir=tmp_path)
    folder = tmp_path / "igakuqa119" / data["source"]["commit"] / "questions"
    assert not (folder / "119A_json.json").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]
    upstream.cut.clear()
    assert len(datasets.load(data, data_dir=tmp_path)) == 400


def test_corrupt_file_in_cache_is_replaced_by_a_verified_download(upstream, tmp_path):
    data = igakuqa119_card(upstream)
    datasets.load(data, data_dir=tmp_path)
    target = tmp_path / "igakuqa119" / data["source"]["commit"] / "questions" / "119B_json.json"
    target.write_text("[", encoding="utf-8")
    datasets.load(data, data_dir=tmp_path)
    assert upstream.hits["questions/119B_json.json"] == 2
    assert fetch.sha256_of(target) == data["source"]["files"]["questions/119B_json.json"]


def test_local_path_with_missing_files_is_a_clear_error(tmp_path):
    (tmp_path / "questions").mkdir()
    with pytest.raises(UserError, match=r"8 file\(s\) missing under"):
        datasets.load(card("igakuqa119", path=str(tmp_path)))


def test_corrupt_json_in_local_copy_is_reported_by_path(tmp_path):
    import shutil

    local = tmp_path / "igakuqa119"
    shutil.copytree(DATA_DIR / "igakuqa119", local)
    broken = local / "questions" / "119D_json.json"
    broken.write_text(broken.read_text(encoding="utf-8")[:500], encoding="utf-8")
    with pytest.raises(UserError, match="sha256"):
        datasets.load(card("igakuqa119", path=str(local)))
    with pytest.raises(UserError, match=r"119D_json.json is not valid JSON"):
        datasets.load(card("igakuqa119", path=str(local), verify=False))


def test_cli_reports_sha_mismatch_without_traceback(tmp_path):
    import shutil

    local = tmp_path / "igakuqa119"
    shutil.copytree(DATA_DIR / "igakuqa119", local)
    (local / "LICENSE").write_text("changed", encoding="utf-8")
    proc = run_python(["-m", "jmle_eval.datasets", "stats", "dataset=igakuqa119", f"dataset.path={local}"])
    assert proc.returncode == 2
    assert "LICENSE has sha256" in proc.stderr and "Traceback" not in proc.stderr
