"""Fitted models: purchases (BG/NBD family), spend (Gamma-Gamma), and the learned models built on them."""
