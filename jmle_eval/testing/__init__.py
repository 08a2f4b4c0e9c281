"""Test doubles that are real servers: the loopback OpenAI-compatible fake used by tests and benchmarks."""
