"""The one place that turns a validated scenario into runtime objects (deployment setups, step models, prices)."""
