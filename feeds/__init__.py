"""feeds: turn the data people have into the chunks streamrnn consumes.

For now a chunker over in-memory long-format arrays; readers for pandas,
Arrow, Parquet and CSV come next.
"""

from .chunks import Chunk, iter_arrays
from .errors import SchemaError

__all__ = ["Chunk", "SchemaError", "iter_arrays"]
