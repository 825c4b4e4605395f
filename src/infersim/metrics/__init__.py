"""Summaries computed from the results tables (never from simulation objects)."""
