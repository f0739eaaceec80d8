"""What the tests share that is not a fixture: plain helpers, imported by name.

Fixtures live in the conftest.py files; these modules hold the functions and
classes behind them and the ones tests call directly (server.py is the
benchmarks' too, and so imports neither pytest nor Django).
"""
