"""Implementations of the ``python -m mitk`` commands (one module per command)."""
