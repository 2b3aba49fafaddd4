"""Typed errors. Every message names the offending argument, column, key or row
and says what would be accepted."""


class StreamrnnError(Exception):
    """Base class of every error streamrnn raises on purpose."""


class ConfigError(StreamrnnError, ValueError):
    """A constructor or option argument is out of range or of the wrong kind."""


class DeviceError(ConfigError):
    """A device was asked for that this machine cannot give (``device="cuda"`` without
    numba's CUDA target, a driver or a GPU), or work it does not run yet."""


class InputError(StreamrnnError, ValueError):
    """Data passed in has the wrong shape, dtype, or non-finite values."""


class KeyTypeError(InputError):
    """Series keys are not all integers or not all strings."""


class TimeOrderError(InputError):
    """Times do not strictly increase within a series."""


class StateError(StreamrnnError, ValueError):
    """A hidden state or parameter set does not fit the model."""


class UnknownKeyError(StateError, KeyError):
    """A series key that the stream has never seen (or has removed)."""

    def __str__(self):  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class StorageError(StreamrnnError, OSError):
    """A file could not be written (a full disk, a folder without permission); what
    was written before is unchanged."""
