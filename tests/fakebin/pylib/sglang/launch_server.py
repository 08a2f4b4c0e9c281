"""Fake `python -m sglang.launch_server`: hands its arguments to tests/fakebin/fake_engine.py."""

import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
engine = os.path.join(here, "..", "..", "fake_engine.py")
os.execv(sys.executable, [sys.executable, engine, "sglang", *sys.argv[1:]])
