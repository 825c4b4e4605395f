"""Calibration: compare the performance model with published measurements and fit its parameters."""
