"""Fake `sglang` package for tests: put tests/fakebin/pylib on PYTHONPATH to make `python -m sglang.launch_server`
run tests/fakebin/fake_engine.py instead of the real server."""
