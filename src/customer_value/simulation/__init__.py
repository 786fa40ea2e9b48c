"""Worlds with known truth (the oracle and its ceilings) for the tests, the benchmarks and the demo."""
