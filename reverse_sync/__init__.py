"""Reverse sync: plan → guard → push → log, from the published targets back to every channel.

A plain library (no dagster): `orchestration/` wraps it as assets, the `ichigen sync` CLI calls it directly.
"""
