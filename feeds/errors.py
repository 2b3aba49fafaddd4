"""Typed errors of the feeds package."""


class SchemaError(ValueError):
    """A chunk does not match the expected schema (names the column and what was expected)."""
