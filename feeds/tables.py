"""pandas, Arrow and CSV inputs as Arrow tables.

A DataFrame or record batch becomes one table (:func:`as_table`), a wide frame long rows
(:func:`from_wide`). A CSV file becomes a table for each block of whole lines
(:func:`csv_tables`), parsed by Arrow with one set of column types: those inferred from the
first block, where a later block needs a wider type (an integer column holding ``14.5``) widened
from that block on. What cannot be read is an error naming the file, the line and the column.
"""

import codecs
import os
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .errors import ConfigError, SchemaError


def as_table(data):
    """A ``pyarrow.Table`` for a DataFrame, Table or RecordBatch (long format).

    A DataFrame's index becomes a column when it is named (a time index,
    say); an unnamed index, or an unnamed level of a MultiIndex, holds row
    labels and is left out. Column types are Arrow's reading of pandas'.
    """
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return _from_pandas(data)
    raise SchemaError(
        f"expected a pandas DataFrame, pyarrow Table or RecordBatch, got {type(data).__name__}"
    )


def _from_pandas(df):
    if not all(isinstance(c, str) for c in df.columns):
        bad = next(c for c in df.columns if not isinstance(c, str))
        raise SchemaError(
            f"column names must be strings, got {bad!r}; for one column per series "
            "(wide format) use feeds.from_wide"
        )
    if df.columns.has_duplicates:
        dup = df.columns[df.columns.duplicated()][0]
        raise SchemaError(f"column {dup!r} appears twice; column names must be distinct")
    df = _named_index(df)
    for name in df.columns:  # Arrow would put timestamps of several zones in one, silently
        col = df[name]
        if col.dtype == object and pd.api.types.infer_dtype(col, skipna=True) == "datetime":
            zones = {}
            for i, v in enumerate(col.to_numpy()):
                if isinstance(v, pd.Timestamp | np.datetime64):
                    zones.setdefault(str(getattr(v, "tz", None)), i)
            if len(zones) > 1:
                listed = ", ".join(f"{z} (first at row {i})" for z, i in zones.items())
                raise SchemaError(
                    f"column {name!r} holds timestamps of several time zones: {listed}; "
                    "a time column holds one zone, or none"
                )
    named = any(name is not None for name in df.index.names)
    try:  # a named index is a column (a time index, say); row labels are not data
        return pa.Table.from_pandas(df, preserve_index=named)
    except _REFUSED:
        pass
    for name in df.columns:  # find the column Arrow refuses, and say what is in it
        try:
            pa.array(df[name], from_pandas=True)
        except _REFUSED as exc:
            raise SchemaError(f"column {name!r} {_mixed(df[name], exc)}") from None
    index = df.index.to_frame(index=False)
    for name in index.columns:
        try:
            pa.array(index[name], from_pandas=True)
        except _REFUSED as exc:
            raise SchemaError(f"the index {name!r} {_mixed(index[name], exc)}") from None
    raise SchemaError("Arrow cannot convert this DataFrame")


_REFUSED = (
    pa.ArrowInvalid,
    pa.ArrowTypeError,
    pa.ArrowNotImplementedError,
    ValueError,
    TypeError,  # Decimal("Infinity"), say
    OverflowError,  # a Python int beyond 64 bits
)


def _named_index(df):
    """``df`` without its unnamed index levels; an index named like a column is refused."""
    names = list(df.index.names)
    for name in names:
        if name is not None and name in df.columns:
            raise SchemaError(
                f"the index {name!r} has the name of a column; drop the index with "
                "df.reset_index(drop=True) or rename it with df.rename_axis(...)"
            )
    unnamed = [i for i, name in enumerate(names) if name is None]
    if 0 < len(unnamed) < len(names):
        df = df.droplevel(unnamed)
    return df


def _mixed(series, exc):
    values = series.to_numpy(dtype=object)
    kinds = {}
    for i, v in enumerate(values[:100_000]):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        kind = type(v).__name__
        if isinstance(v, pd.Timestamp):
            kind = f"Timestamp[{v.tz}]"
        kinds.setdefault(kind, i)
    if len(kinds) <= 1:
        return (
            f"holds {', '.join(kinds) or 'values'} that Arrow cannot convert ({exc}); a column "
            "holds numbers (within 64-bit integers or floats), strings or timestamps"
        )
    listed = ", ".join(f"{k} (first at row {i})" for k, i in kinds.items())
    return (
        f"mixes values of several types: {listed}; a column holds one type "
        "(all numbers, all strings, or timestamps in one time zone)"
    )


def from_wide(df, key="key", time="time", value="value"):
    """Long-format rows from a wide DataFrame: a time index and one column per series.

    Rows come out ordered by time, then by column; with plain columns each
    series has one feature named ``value``; with two-level columns
    ``(series, feature)`` each feature keeps its name.

    Examples
    --------
    >>> import pandas as pd
    >>> from feeds import from_wide
    >>> wide = pd.DataFrame({"north": [1.0, 2.0], "south": [3.0, 4.0]},
    ...                     index=pd.to_datetime(["2024-01-01", "2024-01-02"]))
    >>> from_wide(wide).to_dict("list")["key"]
    ['north', 'south', 'north', 'south']
    """
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"from_wide expects a pandas DataFrame, got {type(df).__name__}")
    if df.index.has_duplicates:
        at = df.index[df.index.duplicated()][0]
        raise SchemaError(f"the time index holds {at} twice; a wide frame has one row per time")
    if df.columns.nlevels == 1:
        values = df.to_numpy()
        long = pd.DataFrame(
            {
                key: np.tile(np.asarray(df.columns, dtype=object), len(df)),
                time: df.index.repeat(df.shape[1]),
                value: values.reshape(-1) if values.size else values.reshape(0),
            }
        )
        return long
    if df.columns.nlevels != 2:
        raise SchemaError("wide columns must be series names or (series, feature) pairs")
    stacked = df.stack(level=0, future_stack=True)
    stacked.index.names = [time, key]
    out = stacked.reset_index()[[key, time, *stacked.columns]]
    out.columns.name = None
    return out


# -- CSV text -----------------------------------------------------------------------------------

_TYPE_NAMES = {
    "float64": pa.float64(),
    "double": pa.float64(),
    "float32": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "string": pa.string(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("ns"),
    "date": pa.date32(),
}
_ACCEPTED = (
    "float64, float32, int64, int32, string, bool, timestamp, timestamp[s] (or ms, us, ns), "
    "timestamp[ns, tz=UTC] (any zone), date, or another Arrow type name such as uint8 or date64"
)
_TIMESTAMP = re.compile(r"timestamp\[(s|ms|us|ns)(?:,\s*tz=([^\]\s]+))?\]")
_NUMBER = r"^\s*[-+]?((\d+\.?\d*|\.\d+)([eE][-+]?\d+)?|inf|infinity)\s*$"  # as Arrow reads one
_NULLS = pacsv.ConvertOptions().null_values  # Arrow's spellings of a missing number
_PARSE_ERROR = re.compile(r"CSV parse error: Row #(\d+): Expected (\d+) columns, got (\d+)")
_CONVERSION_ERROR = re.compile(
    r"In CSV column #(\d+): Row #(\d+): CSV conversion error to ([^:]+): (.*)", re.S
)


def column_types(spec):
    """Column types for :func:`feeds.iter_csv`, from a mapping or from text.

    Parameters
    ----------
    spec : mapping, str or None
        ``{name: type}`` (a job file's form) or ``"name=type,name=type"`` (the command
        line's). A type is a ``pyarrow.DataType`` or its name: ``float64``, ``float32``,
        ``int64``, ``int32``, ``string``, ``bool``, ``timestamp`` (nanoseconds, no time
        zone), ``timestamp[ms]``, ``timestamp[ns, tz=UTC]``, ``date``, or another name that
        ``pyarrow.type_for_alias`` knows. None or ``""`` declares no types.

    Returns
    -------
    dict of str to pyarrow.DataType

    Raises
    ------
    ConfigError
        A pair that is not ``name=type``, or a type name that is not known (naming the
        column and the accepted names).

    Examples
    --------
    >>> from feeds.tables import column_types
    >>> column_types("TEMP=float64, cbwd=string")
    {'TEMP': DataType(double), 'cbwd': DataType(string)}
    >>> column_types({"time": "timestamp[s, tz=UTC]"})
    {'time': TimestampType(timestamp[s, tz=UTC])}
    """
    if spec is None:
        return {}
    if isinstance(spec, str):
        pairs = []
        for part in re.split(r",(?![^\[]*\])", spec):  # not the comma in timestamp[ns, tz=...]
            if not part.strip():
                continue
            name, eq, value = part.partition("=")
            if not eq or not name.strip():
                raise ConfigError(
                    "column types are name=type pairs separated by commas "
                    f"(TEMP=float64,cbwd=string); {part.strip()!r} is not one"
                )
            pairs.append((name.strip(), value.strip()))
    elif isinstance(spec, Mapping):
        pairs = list(spec.items())
    else:
        raise ConfigError(
            "column_types must be a mapping of column names to types, or name=type text, "
            f"got a {type(spec).__name__}"
        )
    types, given = {}, {}
    for name, value in pairs:
        if _column_name(name) in types:
            raise ConfigError(
                f"column_types gives column {name!r} two types, {given[name]} and {value}; "
                "give one"
            )
        types[name], given[name] = _arrow_type(name, value), value
    return types


def _column_name(name):
    if not isinstance(name, str):
        raise ConfigError(f"column_types names columns by their names (text), got {name!r}")
    return name


def _arrow_type(column, value):
    if isinstance(value, pa.DataType):
        return value
    if isinstance(value, str):
        text = value.strip()
        known = _TYPE_NAMES.get(text.lower())
        if known is not None:
            return known
        stamp = _TIMESTAMP.fullmatch(text)
        if stamp:
            return pa.timestamp(stamp[1], stamp[2])
        try:
            return pa.type_for_alias(text)
        except (ValueError, KeyError):
            pass
    raise ConfigError(
        f"the type of column {column!r}, {value!r}, is not a type this reader knows; "
        f"accepted: {_ACCEPTED}"
    )


def time_formats(spec):
    """The strptime formats that :func:`feeds.iter_csv` reads times in, besides ISO 8601.

    Parameters
    ----------
    spec : str, sequence of str or None
        One format (``"%m/%d/%Y %H:%M"``) or several, tried in order; None for none.

    Returns
    -------
    list of str

    Raises
    ------
    ConfigError
        A format that is not text, or that holds no ``%`` directive.

    Examples
    --------
    >>> from feeds.tables import time_formats
    >>> time_formats("%m/%d/%Y %H:%M")
    ['%m/%d/%Y %H:%M']
    """
    if spec is None:
        return []
    formats = [spec] if isinstance(spec, str) else spec
    if not isinstance(formats, (list, tuple)) or not formats:
        raise ConfigError(
            f"time_format must be a strptime format such as '%m/%d/%Y %H:%M', or a list of "
            f"them, got {spec!r}"
        )
    for fmt in formats:
        if not isinstance(fmt, str) or "%" not in fmt:
            raise ConfigError(
                f"time_format {fmt!r} is not a strptime format: it needs directives such as "
                "%Y, %m, %d, %H and %M ('%m/%d/%Y %H:%M' reads 01/31/2010 23:00)"
            )
    return list(formats)


def na_markers(spec):
    """The texts that :func:`feeds.iter_csv` reads as missing in numeric and time columns,
    besides Arrow's own spellings (empty, ``NA``, ``N/A``, ``null``, ``nan``, ...).

    Parameters
    ----------
    spec : str, sequence of str or None
        One marker (``"-"``) or several (``["-", "n/a", "?"]``); None for none.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from feeds.tables import na_markers
    >>> na_markers(["-", "n/a"])
    ['-', 'n/a']
    """
    if spec is None:
        return []
    markers = [spec] if isinstance(spec, str) else spec
    if not isinstance(markers, (list, tuple)) or not all(isinstance(m, str) for m in markers):
        raise ConfigError(
            f"na_values must be a text or a list of texts read as missing (['-', 'n/a']), "
            f"got {spec!r}"
        )
    return list(markers)


def text_encoding(encoding):
    """The codec name of ``encoding``; None for UTF-8, which Arrow reads itself.

    Raises :class:`ConfigError` for a name that is not a text encoding.
    """
    if encoding is None:
        return None
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, TypeError):
        raise ConfigError(
            f"encoding {encoding!r} is not a text encoding; for example 'utf-8' (the "
            "default), 'latin-1', 'cp1252' or 'utf-16'"
        ) from None
    return None if name == "utf-8" else name


def csv_tables(
    path, *, block_size, types=None, encoding=None, roles=None, formats=(), na_values=()
):
    """Arrow tables of a CSV file, one for each block of about ``block_size`` bytes of lines.

    The file is read a block at a time and never whole. Its first line holds the column
    names. Column types are inferred from the first block, except those declared in
    ``types``; every later block is parsed with the same types, widened where a block
    needs it: a column of integers, or of missing values only, that holds a number that is
    not an int64 (``14.66666667``, ``1e20``) is read as float64 from that block on, which is
    what a feature becomes anyway; a column the feed does not read is read as text when it
    holds something else. The key and the time column, and declared columns, keep their
    type: a value that does not fit is an error. No row is read twice or left out, and the
    values are the same whatever the block size. An empty text field is missing (null).

    Parameters
    ----------
    path : str or path-like
    block_size : int
        Bytes read at a time; a block ends at the last line end within them.
    types : dict of str to pyarrow.DataType, optional
        Declared types, from :func:`column_types`.
    encoding : str, optional
        The file's text encoding (a name from :func:`text_encoding`); None for UTF-8.
    roles : callable, optional
        Returns ``(kept, values, read)`` as the feed knows them now: ``{column: role}``
        of the columns that keep their type (``"time"``, ``"time part"``, ``"key"``,
        ``"categorical"``), the value columns (None while inferred) and every column the
        feed reads (None while not known).
    formats : sequence of str
        strptime formats of times written otherwise than ISO 8601, from
        :func:`time_formats`: a column of text in one of them is read as timestamps.
    na_values : sequence of str
        Texts read as missing in numeric and time columns, from :func:`na_markers`,
        besides Arrow's spellings; text columns keep them as written.

    Raises
    ------
    SchemaError
        What cannot be read, naming the file and the line (and the column where there is
        one): a file that is empty or not text, a row with another number of fields than
        the header, a quote left open, text that is not UTF-8 (or not ``encoding``), a value
        that does not fit its column's type, or a column of numbers in the first block with
        a stray text among them (it would be read as text and left out of the features).
    ConfigError
        A declared type for a column the file does not have.
    """
    name = os.fspath(path)
    if os.path.isdir(name):
        raise SchemaError(f"{name}: is a folder; iter_csv reads one CSV file")
    try:
        file = open(name, "rb")  # noqa: SIM115 (closed by the with below, in the generator)
    except FileNotFoundError:
        raise SchemaError(f"{name}: the file does not exist") from None
    except OSError as exc:
        raise SchemaError(f"{name}: cannot open it: {exc.strerror}") from None
    roles = roles or (lambda: ({}, None, None))
    text = _CsvText(name, dict(types or {}), roles, list(formats), list(na_values))
    with file:
        for line, block in _blocks(file, block_size, encoding, name):
            table = text.table(block, line)
            if table.num_rows:
                yield table
    if text.names is None:
        raise SchemaError(f"{name}: the file is empty; a CSV file starts with its column names")


def _blocks(file, size, encoding, name):
    """``(number of its first line, bytes)`` of each block of whole lines of ``file``,
    as UTF-8; the first block holds the header and at least one line of values."""
    decoder = codecs.getincrementaldecoder(encoding)() if encoding else None
    rest, line, need = b"", 1, 2
    while True:
        raw = file.read(size)
        last = not raw
        if decoder is not None:
            try:
                raw = decoder.decode(raw, final=last).encode("utf-8")
            except UnicodeDecodeError as exc:
                at = line + _count_lines(rest) + exc.object[: exc.start].count(b"\n")
                raise SchemaError(
                    f"{name}, line {at}: {exc.object[exc.start : exc.end]!r} is not "
                    f"{encoding} text; pass the file's encoding"
                ) from None
        data = rest + raw
        if last:
            if data:
                yield line, data
            return
        cut = _last_line_end(data)
        if cut == 0 or (need > 1 and sum(1 for s in data[:cut].splitlines() if s) < need):
            rest = data
            continue
        yield line, data[:cut]
        line += _count_lines(data[:cut])
        rest, need = data[cut:], 1


def _last_line_end(data):
    """The position after the last line end in ``data`` (0 if none); a ``\\r`` that ends
    ``data`` is left for the next read, whose first byte may be its ``\\n``."""
    end = len(data) - data.endswith(b"\r")
    return max(data.rfind(b"\n", 0, end), data.rfind(b"\r", 0, end)) + 1


def _count_lines(data):
    if b"\r" not in data:
        return data.count(b"\n")
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _line_of(block, line, row):
    """The line where Arrow's ``row`` of ``block`` starts (counted from 1, a header
    included), ``line`` being the block's first: Arrow skips empty lines, and a quoted
    value's line breaks are inside its row."""
    inside = False
    for text in block.splitlines():
        if not inside:
            if not text:
                line += 1
                continue
            row -= 1
            if row == 0:
                return line
        inside ^= text.count(b'"') % 2 == 1
        line += 1
    return line


def _line_text(block, first, line):
    lines = block.splitlines()
    text = lines[line - first].decode("utf-8", "replace") if line - first < len(lines) else ""
    return text if len(text) <= 120 else text[:117] + "..."


def _field(block, first, line, names, name):
    """The bytes of column ``name`` on ``line`` of ``block`` (the line's if it cannot be
    parsed on its own)."""
    text = block.splitlines()[line - first]
    read = pacsv.ReadOptions(column_names=names)
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.binary()))
    try:
        row = pacsv.read_csv(pa.BufferReader(text), read_options=read, convert_options=convert)
        return row.column(name)[0].as_py()
    except (pa.ArrowInvalid, KeyError, IndexError):
        return text


def _is_text(dtype):
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def _is_utf8(value):
    try:
        value is None or value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _is_number(text):
    return re.match(_NUMBER, text, re.I) is not None


def _header(block):
    """The column names on the first line of ``block``."""
    end = _last_line_end(block[: block.find(b"\n") + 1] or block)
    return pacsv.read_csv(pa.BufferReader(block[: end or len(block)])).column_names


def _noun(dtype):
    if pa.types.is_integer(dtype):
        return "an integer"
    if pa.types.is_floating(dtype):
        return "a number"
    if pa.types.is_null(dtype):
        return "missing"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return f"a time ({dtype})"
    if pa.types.is_boolean(dtype):
        return "a bool"
    return f"a {dtype} value"


class _CsvText:
    """The blocks of one CSV file as tables of one set of column types, widened as needed."""

    def __init__(self, path, declared, roles, formats=(), na_values=()):
        self.path = path
        self.declared = declared
        self.roles = roles
        self.formats = list(formats)
        self.nulls = [*_NULLS, *(v for v in na_values if v not in _NULLS)]
        self.names = None  # the header's, once read
        self.types = dict(declared)  # every column's, after the first block

    def table(self, block, line):
        nul = block.find(b"\x00")
        if nul >= 0:
            raise SchemaError(
                f"{self.path}, line {line + _count_lines(block[:nul])}: cannot read it as CSV: "
                "it holds a NUL byte (binary data; text in UTF-16 needs encoding='utf-16')"
            )
        header = self.names is None
        table = self._parse(block, line, header)
        if header:
            self._first(table, block, line)
        _, _, read = self.roles()
        for i, field in enumerate(table.schema):
            col, name = table.column(i), field.name
            binary = pa.types.is_binary(field.type) and name not in self.declared
            if binary and (read is None or name in read):  # else left as it is
                row = next(j for j, v in enumerate(col.to_pylist()) if not _is_utf8(v))
                self._not_utf8(name, _line_of(block, line, row + 1 + header), col[row].as_py())
            if _is_text(field.type):  # in any column: the rows after it would be lost
                broken = pc.or_(pc.match_substring(col, "\n"), pc.match_substring(col, "\r"))
                if pc.any(broken).as_py():
                    row = int(np.flatnonzero(broken.to_numpy(zero_copy_only=False))[0])
                    self._unclosed(name, _line_of(block, line, row + 1 + header))
        for i, field in enumerate(table.schema):  # an empty text field is missing
            if _is_text(field.type):
                col = table.column(i)
                table = table.set_column(i, field, pc.if_else(pc.equal(col, ""), None, col))
        return table

    def _parse(self, block, line, header):
        """The table of ``block``, with a column's type widened (and the block parsed again)
        where one of its values needs it."""
        while True:
            try:
                return self._arrow(block, header, threads=True)
            except pa.ArrowInvalid:
                pass
            try:  # again, in order: Arrow's errors then say the row
                return self._arrow(block, header, threads=False)
            except pa.ArrowInvalid as exc:
                self._widen(str(exc), block, line, header)

    def _arrow(self, block, header, threads):
        read = pacsv.ReadOptions(
            column_names=None if header else self.names,
            block_size=len(block) + 1,  # the block whole: rows are cut where this reader cuts
            use_threads=threads,
        )
        convert = pacsv.ConvertOptions(column_types=self.types, null_values=self.nulls)
        if self.formats:  # ISO 8601 first, as without them
            convert.timestamp_parsers = [pacsv.ISO8601, *self.formats]
        return pacsv.read_csv(pa.BufferReader(block), read_options=read, convert_options=convert)

    def _widen(self, message, block, line, header):
        """Widen the column that ``message`` (Arrow's) says a value did not fit, or raise."""
        fields = _PARSE_ERROR.match(message)
        if fields:
            at = _line_of(block, line, int(fields[1]))
            text = _line_text(block, line, at)
            quote = "; a quote opened on this line is not closed" if text.count('"') % 2 else ""
            raise SchemaError(
                f"{self.path}, line {at}: expected {fields[2]} fields, as the header has, "
                f"got {fields[3]}: {text!r}{quote}"
            )
        value = _CONVERSION_ERROR.match(message)
        if not value:
            last = line + max(_count_lines(block) - 1, 0)
            raise SchemaError(
                f"{self.path}, lines {line} to {last}: cannot read it as CSV: {message}"
            )
        names = self.names or _header(block)
        name = names[int(value[1])]
        at = _line_of(block, line, int(value[2]))
        if "invalid UTF8" in value[4]:
            self._not_utf8(name, at, _field(block, line, at, names, name))
        text = re.fullmatch(r"invalid value '(.*)'", value[4], re.S)
        text = text[1] if text else value[4]
        if "\n" in text or "\r" in text:
            self._unclosed(name, at)
        wider = self._wider(name, text)
        if wider is None:
            self._refuse(name, at, text)
        self.types[name] = wider

    def _wider(self, name, text):
        """The type that column ``name`` widens to for ``text``, or None where it cannot."""
        kept, _, read = self.roles()
        now = self.types.get(name)
        if now is None or name in self.declared or name in kept:
            return None
        if (pa.types.is_integer(now) or pa.types.is_null(now)) and _is_number(text):
            return pa.float64()
        if read is not None and name not in read and not _is_text(now):
            return pa.string()  # a column the feed does not read
        return None

    def _refuse(self, name, at, text):
        kept, _, _ = self.roles()
        now = self.types[name]
        where = f"{self.path}, line {at}, column {name!r}: {text!r} is not"
        numbers = pa.types.is_integer(now) or pa.types.is_floating(now) or pa.types.is_null(now)
        times = pa.types.is_timestamp(now) or pa.types.is_date(now)
        if name in self.declared:
            hint = self._gap(text) if numbers else self._time_hint() if times else ""
            raise SchemaError(
                f"{where} {_noun(now)}, the type declared for the column with column_types="
                f"{{{name!r}: {str(now)!r}}}{hint}; correct the line, or declare another type"
            )
        first = f"the type inferred from the file's first block ({now})"
        if name in kept and times:
            raise SchemaError(
                f"{where} {_noun(now)}, {first}; a {kept[name]} column keeps one type from "
                f"the first row to the last{self._time_hint()}, or correct the line"
            )
        if name in kept:
            wanted = "float64" if _is_number(text) else "string"
            raise SchemaError(
                f"{where} {_noun(now)}, {first}; a {kept[name]} column keeps one type from "
                f"the first row to the last: declare it with column_types="
                f"{{{name!r}: {wanted!r}}}, or correct the line"
            )
        what = (
            f"{where} a number, which the column holds ({now} in the file's first block)"
            if numbers
            else f"{where} {_noun(now)}, {first}"
        )
        raise SchemaError(
            f"{what}; correct the line{self._gap(text) if numbers else ''}, or, if the "
            f"column is text, declare it with column_types={{{name!r}: 'string'}}"
        )

    def _gap(self, text):
        """How to read ``text`` as a missing value (a hint that follows a clause)."""
        return (
            f" (an empty field or NA is a missing value; if {text!r} marks one, declare it "
            f"with na_values=[{text!r}])"
        )

    def _time_hint(self):
        """How to read times written otherwise than ISO 8601 (a hint after a clause)."""
        if self.formats:
            return (
                f" (times are read in ISO 8601 or the formats of time_format={self.formats!r}: "
                "add this line's format)"
            )
        return (
            " (times written otherwise than in ISO 8601 are read with their strptime format: "
            "time_format='%m/%d/%Y %H:%M', say)"
        )

    def _first(self, table, block, line):
        """Take the column names and types of the first block, and check its text columns."""
        names = table.column_names
        absent = [c for c in self.declared if c not in names]
        if absent:
            raise ConfigError(
                f"column_types names {absent[0]!r}, which {self.path} does not have; "
                f"its columns are {names}"
            )
        self.names = names
        self.types = {f.name: f.type for f in table.schema}
        kept, values, _ = self.roles()
        for field in table.schema:
            name, role = field.name, kept.get(field.name)
            if name in self.declared or role in ("key", "categorical"):
                continue  # text is what these may hold
            if not _is_text(field.type) or (values is not None and name not in values and not role):
                continue
            self._stray_text(table.column(name), name, block, line)

    def _stray_text(self, col, name, block, line):
        """Refuse a text column whose values are numbers but for a few: read as text, it
        would be left out of the features, silently."""
        number = pc.fill_null(pc.match_substring_regex(col, _NUMBER, ignore_case=True), False)
        spelled = pc.fill_null(pc.is_in(col, value_set=pa.array(self.nulls)), True)
        text = pc.invert(pc.or_(number, spelled))
        n_numbers, n_text = pc.sum(number).as_py() or 0, pc.sum(text).as_py() or 0
        if n_text == 0 or n_numbers < 9 * n_text:
            return
        row = int(np.flatnonzero(text.to_numpy(zero_copy_only=False))[0])
        at, value = _line_of(block, line, row + 2), col[row].as_py()
        raise SchemaError(
            f"{self.path}, line {at}, column {name!r}: {value!r} is not a number, unlike "
            f"{n_numbers} other values of the column in the file's first block; correct the "
            f"line{self._gap(value)}, or, if the column is text, declare it with "
            f"column_types={{{name!r}: 'string'}}"
        )

    def _not_utf8(self, name, at, value):
        raise SchemaError(
            f"{self.path}, line {at}, column {name!r}: {value!r} is not UTF-8 text; pass the "
            "file's encoding, such as encoding='latin-1' (which reads any byte) or "
            "encoding='cp1252' (Windows exports); a file that is not text cannot be read as CSV"
        )

    def _unclosed(self, name, at):
        raise SchemaError(
            f"{self.path}, line {at}, column {name!r}: a quote opened on this line is not "
            "closed on it; a quoted value cannot hold a line break"
        )
