"""Policies: pure decisions from read-only views (batching, balancing, autoscaling, routing, quality); no SimPy, no engine."""
