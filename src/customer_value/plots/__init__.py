"""Plots: functions that take an optional matplotlib Axes and return the Axes they drew on."""
