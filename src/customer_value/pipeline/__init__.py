"""The edges where I/O happens: each module reads inputs, calls the pure computation and writes
outputs (files, MLflow). The CLI and notebooks call these."""
