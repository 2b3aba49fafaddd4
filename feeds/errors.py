"""Typed errors of the feeds package.

Every message names the column, key or row at fault and says what would be
accepted. All are :class:`FeedError`, a :class:`ValueError`.
"""


class FeedError(ValueError):
    """Data that a feed cannot turn into chunks as configured."""


class SchemaError(FeedError):
    """A chunk does not match the schema: a column is missing, extra or of another type."""


class TimeOrderError(FeedError):
    """A key's time did not increase: a late row or a duplicate time, under the error policy."""


class MissingValueError(FeedError):
    """A missing value (null or NaN) where the column's policy is ``"error"``, or inf anywhere."""


class ConfigError(FeedError):
    """An option of a feed or reader is not one of the accepted values."""
