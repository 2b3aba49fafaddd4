"""streamrnn: compiled recurrent networks for streaming time series.

Models (:class:`RNN`, :class:`GRU`, :class:`LSTM`) compute exactly what
PyTorch's modules compute; :class:`Series` and :class:`Stream` carry hidden
state from one chunk of a stream to the next, for one series or many keyed
series.
"""

from . import evaluate, losses, optim
from .adapters.torch import from_torch
from .compiling import CompileWarning, compile, compile_in_background
from .errors import (
    ConfigError,
    DeviceError,
    InputError,
    KeyTypeError,
    StateError,
    StreamrnnError,
    TimeOrderError,
    UnknownKeyError,
)
from .learner import OnlineLearner
from .models import GRU, LSTM, RNN, RecurrentModel
from .seq2seq import Seq2SeqLearner
from .stream import Series, Stream

__all__ = [
    "CompileWarning",
    "compile",
    "compile_in_background",
    "GRU",
    "LSTM",
    "OnlineLearner",
    "RNN",
    "RecurrentModel",
    "Seq2SeqLearner",
    "Series",
    "Stream",
    "from_torch",
    "ConfigError",
    "DeviceError",
    "InputError",
    "KeyTypeError",
    "StateError",
    "StreamrnnError",
    "TimeOrderError",
    "UnknownKeyError",
    "evaluate",
    "losses",
    "optim",
]

__version__ = "0.1.0"
