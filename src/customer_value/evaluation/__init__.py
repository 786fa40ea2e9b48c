"""Judging a fitted model, purely: the rolling backtest, figures, drift between scorings."""
