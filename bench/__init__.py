"""MedServer's benchmarks: what the stack costs on the way from the engine to the browser.

Each module runs with one command (`python -m bench.stream_overhead`, ...) and prints
its figures next to the issue's targets. They are measurements, not tests: nothing
here runs in CI and nothing under tests/ imports it. bench/README.md has the commands
and the latest figures.
"""
