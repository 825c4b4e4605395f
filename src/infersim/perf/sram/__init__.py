"""SRAM-pipeline performance model (Groq-like LPUs, Cerebras-like wafers): ``params`` (profiles and their
parameters), ``pipeline`` (the step model and its equations), ``sizing`` (units per replica, replicas per load)."""
