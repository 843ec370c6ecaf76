"""Delegated long-running tasks (placeholder while the package is built)."""
