"""Performance benchmarks (run by hand; results in bench/RESULTS.md). Not part of the test suite."""
