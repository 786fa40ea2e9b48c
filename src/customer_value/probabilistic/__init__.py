"""The probabilistic models: BG/NBD family (purchases), Gamma-Gamma (spend), and revenue as their one
combination; our own implementations, checked against lifetimes in the tests."""
