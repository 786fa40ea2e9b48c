"""Fitting as of a date, purely: stacked snapshots, one record per boosted task, tuning, the whole fit."""
