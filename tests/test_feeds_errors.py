"""feeds: bad input raises a typed error that names what is at fault, and changes nothing.

Every source is covered: a Feed called directly, the readers (pandas, Arrow, iterables,
Parquet, CSV) and ``streamrnn.Stream.update`` with a DataFrame.
"""

import itertools
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import feeds
import streamrnn
from streamrnn.errors import ConfigError as StreamConfigError
from streamrnn.errors import InputError

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
T0 = pd.Timestamp("2024-01-01", tz="UTC")
SCHEMA = dict(time="time", key="key", features=["a", "b"], targets=["y"])
VALUES = ("a", "b", "y")  # the feed's value columns, in its order
_names = itertools.count()


def frame(n=8, n_keys=2, start=0, tz="UTC"):
    """Rows ``start..start+n`` of keys k0, k1, ... in turn, one hour apart; no two values alike."""
    i = np.arange(start, start + n)
    return pd.DataFrame(
        {
            "key": pd.Series([f"k{j % n_keys}" for j in i], dtype=object),
            "time": pd.Timestamp("2024-01-01", tz=tz) + pd.to_timedelta(i, "h"),
            "a": i + 0.5,
            "b": -i - 0.25,
            "y": 2.0 * i + 0.125,
        }
    )


def schema(**changes):
    return feeds.Schema(**{**SCHEMA, **changes})


def width(options, n_features=2):
    """Width of the chunks' x for the default schema under ``options``."""
    missing = options.get("missing", "error")
    policies = [missing.get(c) for c in "ab"] if isinstance(missing, dict) else [missing] * 2
    masked = sum(isinstance(p, str) and p == "mask" for p in policies)
    return n_features + masked + int(bool(options.get("time_delta")))


def model(n_inputs, dtype="float64"):
    return streamrnn.GRU(n_inputs, 4, output_size=1, seed=0, dtype=dtype)


class Sink:
    """One way into a feed: a Feed, a reader over one DataFrame at a time, or a Stream."""

    def __init__(self, source, schema_=None, n_inputs=None, **options):
        self.source = source
        options = {"dtype": "float64", **options}
        self.feed = feeds.Feed(schema() if schema_ is None else schema_, **options)
        if source == "stream":
            n_inputs = width(options) if n_inputs is None else n_inputs
            self.stream = streamrnn.Stream(model(n_inputs, options["dtype"]), feed=self.feed)

    def __call__(self, data):
        if self.source == "feed":
            return [self.feed(data)]
        if self.source == "stream":
            return [self.stream.update(data)]
        if self.source == "pandas":
            return list(feeds.iter_pandas(data, self.feed, flush=False))
        if self.source == "arrow":
            if isinstance(data, pd.DataFrame):
                data = pa.Table.from_pandas(data, preserve_index=False)
            return list(feeds.iter_arrow(data, self.feed, flush=False))
        assert self.source == "chunks"
        return list(feeds.iter_chunks([data], self.feed, flush=False))

    def flush(self):
        rest = self.feed.flush()
        if self.source == "stream":
            return [] if rest is None else [self.stream.update(rest)]
        return [rest]


def read(source, df, tmp_path, schema_=None, **options):
    """(feed, chunks or outputs) of ``source`` reading the whole of ``df``, flushed at the end."""
    options = {"dtype": "float64", **options}
    if source in ("parquet", "csv"):
        feed = feeds.Feed(schema() if schema_ is None else schema_, **options)
        path = tmp_path / f"rows-{next(_names)}.{source}"
        if source == "parquet":
            df.to_parquet(path, index=False)
            return feed, list(feeds.iter_parquet(path, feed))
        df.to_csv(path, index=False, float_format="%.17g")
        return feed, list(feeds.iter_csv(path, feed))
    sink = Sink(source, schema_, **options)
    return sink.feed, sink(df) + sink.flush()


def nonempty(outputs):
    return [o for o in outputs if o is not None and len(o)]


def assert_same(got, want):
    """Two lists of chunks (compared with Chunk.equals) or engine outputs, empty ones left out."""
    got, want = nonempty(got), nonempty(want)
    assert len(got) == len(want), (len(got), len(want))
    for g, w in zip(got, want):
        if isinstance(w, feeds.Chunk):
            assert g.equals(w), (g, w)
        else:
            np.testing.assert_array_equal(g, w)


def says(message, *parts, row=None):
    """``message`` holds every one of ``parts`` and, when given, names row ``row``."""
    for part in parts:
        assert part in message, f"{part!r} is not in the message {message!r}"
    if row is not None:
        assert re.search(rf"\brow {row}\b", message), f"row {row} is not in {message!r}"


def conserved(counts):
    """Every row in is out, or counted as dropped or merged (after a flush)."""
    return counts["rows_in"] == (
        counts["rows_out"]
        - counts["empty_bins"]
        + counts["late_dropped"]
        + counts["duplicates_dropped"]
        + counts["merged"]
    )


# -- missing columns and wrong types ------------------------------------------------------------

SOURCES = ["feed", "pandas", "arrow", "chunks", "parquet", "csv", "stream"]
ROLES = {
    "key": dict(key="id"),
    "time": dict(time="when"),
    "feature": dict(features=["a", "wind"]),
    "target": dict(targets=["rain"]),
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("role", ROLES)
def test_a_named_column_that_is_absent_is_a_schema_error_naming_it(source, role, tmp_path):
    changes = ROLES[role]
    column = {"key": "id", "time": "when", "feature": "wind", "target": "rain"}[role]
    with pytest.raises(feeds.SchemaError) as exc:
        read(source, frame(), tmp_path, schema(**changes))
    says(str(exc.value), repr(column), "columns")  # the column, and the columns there are


WRONG_TYPES = {
    "feature of strings": ("b", lambda d: d.assign(b=[f"x{i}" for i in range(len(d))])),
    "target of strings": ("y", lambda d: d.assign(y=["high"] * len(d))),
    "time of strings": ("time", lambda d: d.assign(time=[f"day {i}" for i in range(len(d))])),
    "key of floats": ("key", lambda d: d.assign(key=np.arange(len(d)) % 2 + 0.5)),
}


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("case", WRONG_TYPES)
def test_a_column_of_the_wrong_type_is_a_schema_error_naming_it(source, case, tmp_path):
    column, change = WRONG_TYPES[case]
    with pytest.raises(feeds.SchemaError) as exc:
        read(source, change(frame()), tmp_path)
    message = str(exc.value)
    says(message, repr(column))
    assert "expected" in message or "must be" in message, message  # what would be accepted


def test_a_string_in_a_later_csv_block_is_a_schema_error_naming_the_column(tmp_path):
    df = frame(3000, 3)
    df["b"] = df["b"].astype(object)
    df.loc[2500, "b"] = "high"
    path = tmp_path / "rows.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    with pytest.raises(feeds.SchemaError) as exc:
        list(feeds.iter_csv(path, block_size=1 << 14, schema=schema()))
    says(str(exc.value), "'b'", "column_types")


# -- NaN, None and inf --------------------------------------------------------------------------

POLICIES = ["error", "mask", 0.5, ("ffill", -1.0), "ffill"]


def place(df, cells):
    """Put NaN, None or +-inf in the given (row, column) cells."""
    df = df.copy()
    for (r, c), kind in cells.items():
        if kind == "none":
            df[c] = df[c].astype(object)
            df.loc[r, c] = None
        else:
            df.loc[r, c] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[kind]
    return df


def first_fault(df, cells, policy):
    """(row, [(column, what), ...]) of the first row holding a value the feed must refuse.

    Any of the row's faults may be the one named.
    """
    seen = set()
    for r in range(len(df)):
        key = df["key"].iloc[r]
        faults = []
        for c in VALUES:
            kind = cells.get((r, c))
            if kind in ("inf", "-inf"):
                faults.append((c, "infinite"))
            elif kind is None:
                seen.add((key, c))
            elif c != "y" and policy == "error":
                faults.append((c, "missing"))
            elif c != "y" and policy == "ffill" and (key, c) not in seen:
                faults.append((c, "no earlier value"))
        if faults:
            return r, faults
    return None


@SETTINGS
@given(
    data=st.data(),
    source=st.sampled_from(SOURCES),
    policy=st.sampled_from(POLICIES),
)
def test_missing_and_infinite_values_are_named_or_filled_and_counted(
    tmp_path, data, source, policy
):
    n = data.draw(st.integers(1, 12), label="rows")
    df = frame(n, data.draw(st.integers(1, 3), label="keys"))
    where = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.sampled_from(VALUES)), unique=True,
                 max_size=6),
        label="cells",
    )  # fmt: skip
    kinds = st.sampled_from(["nan", "none", "nan", "none", "inf", "-inf"])
    cells = {cell: data.draw(kinds, label=f"{cell}") for cell in where}
    bad = place(df, cells)
    fault = first_fault(df, cells, policy)
    if fault is not None:
        row, faults = fault
        with pytest.raises(feeds.MissingValueError) as exc:
            read(source, bad, tmp_path, missing=policy)
        message = str(exc.value)
        named = [(c, what) for c, what in faults if f"column {c!r}" in message]
        assert len(named) == 1, (faults, message)
        column, what = named[0]
        accepted = {"infinite": "finite", "missing": "'mask'", "no earlier value": "('ffill'"}
        says(message, what, f"key {df['key'].iloc[row]!r}", accepted[what], row=row)
        return
    feed, out = read(source, bad, tmp_path, missing=policy)
    placed = {c: sum(1 for (_, col) in cells if col == c) for c in "ab"}
    assert feed.counts["missing"] == ({} if policy == "error" else placed)
    assert feed.counts["rows_in"] == feed.counts["rows_out"] == n
    if source == "stream":
        assert sum(len(o) for o in out) == n
        return
    chunk = feeds.concat(nonempty(out))
    for (r, c), _ in cells.items():
        if c == "y":
            assert np.isnan(chunk.y[r, 0])  # missing targets stay NaN
        elif policy == 0.5:
            assert chunk.x[r, "ab".index(c)] == 0.5
        elif policy == "mask":
            assert chunk.x[r, "ab".index(c)] == 0.0
            assert chunk.x[r, chunk.columns.index(f"{c}_missing")] == 1.0
    if policy == "mask":
        for c in "ab":
            flags = chunk.x[:, chunk.columns.index(f"{c}_missing")]
            assert int(flags.sum()) == placed[c], (c, flags)


@SETTINGS
@given(data=st.data(), source=st.sampled_from(SOURCES))
def test_null_keys_and_times_are_missing_value_errors_naming_the_row(tmp_path, data, source):
    n = data.draw(st.integers(2, 12), label="rows")
    rows = st.sets(st.integers(0, n - 1), max_size=min(3, n - 1))  # a column of nulls only: no type
    key_rows = set() if source == "csv" else data.draw(rows, label="null keys")
    time_rows = data.draw(rows, label="null times")
    if not key_rows and not time_rows:
        time_rows = {data.draw(st.integers(0, n - 1), label="null time")}
    df = frame(n, 2)
    for r in key_rows:
        df.loc[r, "key"] = None
    for r in time_rows:
        df.loc[r, "time"] = pd.NaT
    with pytest.raises(feeds.MissingValueError) as exc:
        read(source, df, tmp_path, missing="mask")
    if key_rows:
        says(str(exc.value), "key column 'key'", "null", row=min(key_rows))
    else:
        says(str(exc.value), "time column 'time'", "null", row=min(time_rows))


def test_an_empty_key_in_a_csv_file_is_a_missing_key_naming_the_row(tmp_path):
    df = frame(6)
    df.loc[4, "key"] = None  # written as an empty field
    with pytest.raises(feeds.MissingValueError) as exc:
        read("csv", df, tmp_path)
    says(str(exc.value), "key column 'key'", row=4)


def test_float_times_that_are_nan_or_inf_are_named_with_their_row():
    df = frame(6).assign(time=np.arange(6.0))
    for value, row in ((np.nan, 3), (np.inf, 2), (-np.inf, 5)):
        bad = df.copy()
        bad.loc[row, "time"] = value
        with pytest.raises(feeds.MissingValueError) as exc:
            feeds.Feed(schema())(bad)
        says(str(exc.value), "time column 'time'", row=row)


def test_a_finite_value_too_large_for_float32_is_refused_not_made_inf():
    df = frame(6)
    df.loc[4, "a"] = 1e39  # finite as float64, inf as float32
    with pytest.raises(feeds.MissingValueError) as exc:
        feeds.Feed(schema(), dtype="float32")(df)
    says(str(exc.value), "column 'a'", "key 'k0'", row=4)


HELD = [
    ({"duplicates": "last"}, np.inf),
    ({"duplicates": "last"}, np.nan),
    ({"grid": "2h"}, np.inf),
    ({"grid": "2h", "missing": "mask"}, np.inf),
    ({"grid": "2h"}, np.nan),
]


@pytest.mark.parametrize("options, value", HELD)
def test_a_bad_value_in_a_held_row_is_refused_by_the_call_that_brings_it(options, value):
    feed = feeds.Feed(schema(), **options)
    bad = frame(6, 2)
    bad.loc[5, "a"] = value  # the last row of key k1: held back, not yet released
    with pytest.raises(feeds.MissingValueError) as exc:
        feed(bad)
    says(str(exc.value), "column 'a'", "key 'k1'", row=5)
    # and a good continuation is taken as by a feed that never saw the bad chunk
    fresh = feeds.Feed(schema(), **options)
    good = frame(6, 2)
    assert_same([feed(good), feed.flush()], [fresh(good), fresh.flush()])


def test_a_missing_value_in_the_last_of_duplicate_times_names_its_row():
    feed = feeds.Feed(schema(features=["a"], targets=[]), duplicates="last")
    df = frame(4, 1).assign(time=T0 + pd.to_timedelta([0, 1, 1, 2], "h"))
    df.loc[2, "a"] = np.nan  # replaces row 1 as the key's row at 01:00
    with pytest.raises(feeds.MissingValueError) as exc:
        feed(df)
    says(str(exc.value), "column 'a'", "key 'k0'", row=2)


# -- late rows and duplicate times ------------------------------------------------------------

INT_SCHEMA = dict(time="time", key="key", features=["a", "b"], targets=["y"])


@st.composite
def disordered(draw):
    """Rows (key, integer time): each key's times, possibly repeated, then shuffled together."""
    rows = []
    for k in range(draw(st.integers(1, 3))):
        times = draw(st.lists(st.integers(0, 8), min_size=1, max_size=6))
        rows += [(f"k{k}", t) for t in sorted(times)]
    return draw(st.permutations(rows))


def order_frame(rows):
    n = len(rows)
    return pd.DataFrame(
        {
            "key": pd.Series([k for k, _ in rows], dtype=object),
            "time": np.array([t for _, t in rows], np.int64),
            "a": np.arange(n) + 0.5,
            "b": -np.arange(n) - 0.25,
            "y": np.arange(n) * 2.0,
        }
    )


def pieces_of(df, cuts):
    edges = [0, *sorted(set(cuts)), len(df)]
    return [(a, df.iloc[a:b]) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def first_disorder(rows):
    """(row, key, previous time, what) of the first row whose time does not increase."""
    last = {}
    for r, (k, t) in enumerate(rows):
        if k in last and t <= last[k]:
            return r, k, last[k], "before" if t < last[k] else "equal to"
        last[k] = t
    return None


def reference(rows, duplicates):
    """Rows out (input row numbers, in order) and drops under late='drop'."""
    last, pending, out = {}, {}, []
    late = dups = 0
    for r, (k, t) in enumerate(rows):
        if k in last and t < last[k]:
            late += 1
            continue
        if k in last and t == last[k]:
            dups += 1
            if duplicates == "last":
                pending[k] = r
            continue
        last[k] = t
        if duplicates == "last":
            if k in pending:
                out.append(pending[k])
            pending[k] = r
        else:
            out.append(r)
    return out + list(pending.values()), late, dups


@SETTINGS
@given(rows=disordered(), data=st.data())
def test_late_and_duplicate_times_are_named_with_key_and_row(rows, data):
    df = order_frame(rows)
    n = len(df)
    cuts = data.draw(st.lists(st.integers(1, n - 1), max_size=3), label="cuts") if n > 1 else []
    feed = feeds.Feed(feeds.Schema(**INT_SCHEMA))
    fault = first_disorder(rows)
    for start, piece in pieces_of(df, cuts):
        if fault is None or not start <= fault[0] < start + len(piece):
            feed(piece)
            continue
        row, key, prev, what = fault
        t = rows[row][1]
        with pytest.raises(feeds.TimeOrderError) as exc:
            feed(piece)
        fix = "late='drop'" if what == "before" else "duplicates='first' or 'last'"
        message = str(exc.value)
        says(message, f"key {key!r}", f"time {t} at row {row - start}", f"is {what}",
             f"previous time {prev}", fix, row=row - start)  # fmt: skip
        if start:  # a later chunk also names the row's place in the whole stream
            says(message, f"(row {row} of the stream)")
        # the failed call counted nothing: only the earlier pieces are in
        assert feed.counts["rows_in"] == feed.counts["rows_out"] == start
        return
    assert fault is None
    assert feed.counts["rows_in"] == feed.counts["rows_out"] == n


POLICY_SETS = [
    dict(late="drop", duplicates="first"),
    dict(late="drop", duplicates="last"),
    dict(late="drop", duplicates="first", grid=2, missing=("ffill", 0.0)),
    dict(late="drop", duplicates="first", grid=3, aggregate="last", missing="mask"),
]


@SETTINGS
@given(rows=disordered(), data=st.data(), options=st.sampled_from(POLICY_SETS))
def test_dropped_and_merged_rows_are_counted_and_cuts_change_nothing(rows, data, options):
    df = order_frame(rows)
    n = len(df)
    cuts = data.draw(st.lists(st.integers(1, n - 1), max_size=4), label="cuts") if n > 1 else []
    options = {"dtype": "float64", **options}
    whole = feeds.Feed(feeds.Schema(**INT_SCHEMA), **options)
    want = [whole(df), whole.flush()]
    cut = feeds.Feed(feeds.Schema(**INT_SCHEMA), **options)
    got = [cut(piece) for _, piece in pieces_of(df, cuts)] + [cut.flush()]
    for feed in (whole, cut):
        assert conserved(feed.counts), feed.counts
        assert feed.counts["rows_in"] == n
    assert cut.counts == whole.counts
    assert feeds.concat(nonempty(got)).equals(feeds.concat(nonempty(want)))

    kept, late, dups = reference(rows, "first" if "grid" in options else options["duplicates"])
    counts = whole.counts
    assert (counts["late_dropped"], counts["duplicates_dropped"]) == (late, dups)
    chunk = feeds.concat(nonempty(want))
    if "grid" not in options:
        assert counts["merged"] == counts["empty_bins"] == 0
        assert chunk.x[:, 0].tolist() == df["a"].to_numpy()[kept].tolist()
        assert chunk.times.tolist() == df["time"].to_numpy()[kept].tolist()
        assert list(chunk.keys) == df["key"].to_numpy()[kept].tolist()
        return
    every = options["grid"]
    bins = {}
    for r in kept:
        bins.setdefault(rows[r][0], set()).add(rows[r][1] // every)
    spans = sum(max(b) - min(b) + 1 for b in bins.values())
    distinct = sum(len(b) for b in bins.values())
    assert counts["rows_out"] == spans
    assert counts["empty_bins"] == spans - distinct
    assert counts["merged"] == len(kept) - distinct
    assert all(t % every == 0 for t in chunk.times.tolist())


@pytest.mark.parametrize("source", ["feed", "pandas", "chunks", "stream"])
@pytest.mark.parametrize("what", ["late", "duplicate"])
def test_a_late_or_duplicate_row_in_a_later_chunk_is_named(source, what):
    first = frame(6, 2)  # k1 last at 05:00
    second = frame(4, 2, start=6)
    second.loc[1, "time"] = T0 + pd.Timedelta("3h" if what == "late" else "5h")  # row 1 is k1
    sink = Sink(source)
    sink(first)
    with pytest.raises(feeds.TimeOrderError) as exc:
        sink(second)
    says(str(exc.value), "key 'k1'", "before" if what == "late" else "equal to",
         "previous time 2024-01-01T05:00", row=1)  # fmt: skip

    options = {"late": "drop"} if what == "late" else {"duplicates": "first"}
    sink = Sink(source, **options)
    sink(first)
    out = sink(second) + sink.flush()
    counts = sink.feed.counts
    assert counts["late_dropped" if what == "late" else "duplicates_dropped"] == 1
    assert counts["rows_out"] == 9 and conserved(counts)
    assert sum(len(o) for o in nonempty(out)) == 3


def test_the_last_of_duplicate_times_across_a_chunk_edge_replaces_the_held_row():
    feed = feeds.Feed(schema(), duplicates="last", dtype="float64")
    first = frame(4, 1)  # k0 at 00:00 .. 03:00; 03:00 is held back
    second = frame(2, 1, start=3)  # 03:00 again (replaces it), then 04:00
    out = [feed(first), feed(second), feed.flush()]
    chunk = feeds.concat(nonempty(out))
    assert chunk.x[:, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert feed.counts["duplicates_dropped"] == 1 and conserved(feed.counts)


# -- schema changes mid-stream ------------------------------------------------------------------

CHANGES = {
    "drops a column": ("b", lambda d: d.drop(columns="b")),
    "feature of strings": ("b", lambda d: d.assign(b=[f"x{i}" for i in range(len(d))])),
    "time zone": ("time", lambda d: d.assign(time=d["time"].dt.tz_convert("Asia/Tokyo"))),
    "naive times": ("time", lambda d: d.assign(time=d["time"].dt.tz_localize(None))),
    "integer times": ("time", lambda d: d.assign(time=np.arange(len(d)) + 100)),
    "integer keys": ("key", lambda d: d.assign(key=np.arange(len(d)) % 2)),
    "added column (inferred features)": ("z", lambda d: d.assign(z=1.0)),
}


@pytest.mark.parametrize("source", ["feed", "pandas", "arrow", "chunks", "stream"])
@pytest.mark.parametrize("change", CHANGES)
def test_a_schema_that_changes_mid_stream_is_named_and_changes_nothing(source, change):
    column, alter = CHANGES[change]
    inferred = "inferred" in change
    kwargs = dict(schema_=feeds.Schema(), n_inputs=3) if inferred else {}
    sink, fresh = Sink(source, **kwargs), Sink(source, **kwargs)
    first, second = frame(8, 2), frame(8, 2, start=8)
    assert_same(sink(first), fresh(first))
    with pytest.raises(feeds.SchemaError) as exc:
        sink(alter(second))
    says(str(exc.value), repr(column), "first chunk")
    assert_same(sink(second) + sink.flush(), fresh(second) + fresh.flush())
    assert sink.feed.counts == fresh.feed.counts


@pytest.mark.parametrize("change", ["drops a column", "feature of strings", "time zone"])
def test_a_parquet_file_of_another_schema_in_a_dataset_is_named(change, tmp_path):
    column, alter = CHANGES[change]
    folder = tmp_path / "dataset"
    folder.mkdir()
    frame(8, 2).to_parquet(folder / "part-0.parquet", index=False)
    alter(frame(8, 2, start=8)).to_parquet(folder / "part-1.parquet", index=False)
    with pytest.raises(feeds.SchemaError) as exc:
        list(feeds.iter_parquet(folder, schema=schema(), missing="mask"))
    says(str(exc.value), repr(column))


# -- empty batches ----------------------------------------------------------------------------

EMPTY_KINDS = {
    "frame": lambda df: df.iloc[:0],
    "table": lambda df: pa.Table.from_pandas(df.iloc[:0], preserve_index=False),
    "batch": lambda df: pa.RecordBatch.from_pandas(df.iloc[:0], preserve_index=False),
}
STATEFUL = dict(duplicates="last", missing="mask", time_delta=True, scale="per_key")


@SETTINGS
@given(data=st.data(), source=st.sampled_from(["feed", "arrow", "chunks", "stream"]))
def test_empty_batches_give_no_rows_and_change_nothing(data, source):
    n = data.draw(st.integers(1, 16), label="rows")
    df = frame(n, data.draw(st.integers(1, 3), label="keys"))
    df.loc[df.index[::3], "b"] = np.nan  # masked values: state in the mask and the scaling
    cuts = data.draw(st.lists(st.integers(1, n - 1), max_size=3), label="cuts") if n > 1 else []
    pieces = [p for _, p in pieces_of(df, cuts)]
    empties = st.lists(st.sampled_from(sorted(EMPTY_KINDS)), max_size=2)
    with_empties = []
    for i in range(len(pieces) + 1):
        for kind in data.draw(empties, label=f"empties before piece {i}"):
            with_empties.append((True, EMPTY_KINDS[kind](df)))
        if i < len(pieces):
            with_empties.append((False, pieces[i]))

    sink, plain = Sink(source, **STATEFUL), Sink(source, **STATEFUL)
    got = []
    for empty, item in with_empties:
        out = sink(item)
        if empty:
            assert all(o is None or len(o) == 0 for o in out), out
            assert all(o.shape == (0, 1) for o in out if isinstance(o, np.ndarray))
        else:
            got += out
    want = [o for p in pieces for o in plain(p)]
    assert_same(got, want)
    assert sink.feed.counts == plain.feed.counts
    assert_same(sink.flush(), plain.flush())
    assert sink.feed.counts == plain.feed.counts


def test_an_empty_first_batch_leaves_the_schema_to_the_first_rows():
    feed = feeds.Feed()  # everything inferred
    empty = pd.DataFrame({"key": pd.Series([], dtype=object), "when": pd.Series([], dtype="int64")})
    assert feed(empty) is None
    chunk = feed(frame(4, 2))
    assert chunk.equals(feeds.Feed()(frame(4, 2)))
    assert feed.counts["rows_in"] == 4


def test_an_empty_batch_without_a_schema_column_is_a_schema_error_naming_it():
    feed = feeds.Feed(schema())
    feed(frame(4))
    with pytest.raises(feeds.SchemaError) as exc:
        feed(frame(4).iloc[:0].drop(columns="y"))
    says(str(exc.value), "'y'")


# -- mixed time zones and mixed key types -------------------------------------------------------


@pytest.mark.parametrize("source", ["feed", "pandas", "chunks", "stream"])
@pytest.mark.parametrize("other", ["Europe/Paris", "America/New_York", None])
def test_timestamps_of_two_zones_in_one_column_are_a_schema_error(source, other):
    df = frame(6)
    times = list(df["time"])
    times[3] = times[3].tz_convert(other) if other else times[3].tz_localize(None)
    df["time"] = pd.Series(times, dtype=object)
    with pytest.raises(feeds.SchemaError) as exc:
        Sink(source)(df)
    says(str(exc.value), "'time'")


@SETTINGS
@given(data=st.data(), source=st.sampled_from(["feed", "pandas", "chunks", "stream"]))
def test_keys_of_mixed_types_in_one_column_are_a_schema_error(data, source):
    n = data.draw(st.integers(2, 10), label="rows")
    ints = data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1), label="ints")
    df = frame(n, 2)
    df["key"] = pd.Series([r % 3 if r in ints else f"k{r % 2}" for r in range(n)], dtype=object)
    with pytest.raises(feeds.SchemaError) as exc:
        Sink(source)(df)
    message = str(exc.value)
    says(message, "'key'", "int", "str")
    says(message, f"first at row {min(ints)}")


@pytest.mark.parametrize("source", ["feed", "pandas", "arrow", "chunks", "stream"])
def test_integer_keys_then_string_keys_is_a_schema_error(source):
    sink = Sink(source)
    sink(frame(4).assign(key=[1, 2, 1, 2]))
    with pytest.raises(feeds.SchemaError) as exc:
        sink(frame(4, start=4))
    says(str(exc.value), "'key'", "string", "integer")


# -- a failing call changes nothing -------------------------------------------------------------


def _set(column, row, value):
    def change(d):
        d = d.copy()
        if value is None or isinstance(value, str) or isinstance(value, int):
            d[column] = d[column].astype(object)
        d.loc[row, column] = value
        return d

    return change


BAD_CHUNKS = {  # how the second chunk goes wrong at its row 5 (key k2, new in it): error, named
    "NaN in a": (_set("a", 5, np.nan), feeds.MissingValueError, "'a'"),
    "inf in b": (_set("b", 5, np.inf), feeds.MissingValueError, "'b'"),
    "late row": (_set("time", 5, T0), feeds.TimeOrderError, "key 'k2'"),
    "duplicate time": (_set("time", 5, T0 + pd.Timedelta("8h")), feeds.TimeOrderError, "key 'k2'"),
    "null key": (_set("key", 5, None), feeds.MissingValueError, "'key'"),
    "null time": (_set("time", 5, pd.NaT), feeds.MissingValueError, "'time'"),
    "an integer key": (_set("key", 5, 7), feeds.SchemaError, "'key'"),
    "integer keys": (CHANGES["integer keys"][1], feeds.SchemaError, "'key'"),
    "no column b": (CHANGES["drops a column"][1], feeds.SchemaError, "'b'"),
    "strings in b": (CHANGES["feature of strings"][1], feeds.SchemaError, "'b'"),
    "time zone": (CHANGES["time zone"][1], feeds.SchemaError, "'time'"),
}
OPTION_SETS = {
    "errors": dict(missing={"a": "error", "b": ("ffill", 0.0)}, scale="per_key", time_delta=True),
    "held": dict(duplicates="last", late="drop", missing={"a": "error", "b": "mask"},
                 scale="global"),
    "grid": dict(grid="2h", missing={"a": ("ffill", 0.0), "b": 0.0}, aggregate="last"),
}  # fmt: skip
ATOMIC = [
    (s, o, b)
    for s in ("feed", "stream")
    for o in OPTION_SETS
    for b in BAD_CHUNKS
    if not (o == "held" and b in ("late row", "duplicate time"))
    and not (o == "grid" and b == "NaN in a")
]


@pytest.mark.parametrize("source, options, bad", ATOMIC)
def test_a_failing_call_changes_nothing(source, options, bad):
    alter, error, named = BAD_CHUNKS[bad]
    options = OPTION_SETS[options]
    first = frame(6, 2)  # k0, k1
    second = frame(12, 3, start=6)  # k0, k1 and the new k2 (rows 2, 5, 8, 11)
    third = frame(6, 3, start=18)
    sink, fresh = Sink(source, **options), Sink(source, **options)
    assert_same(sink(first), fresh(first))
    with pytest.raises(error) as exc:
        sink(alter(second))
    says(str(exc.value), named)
    got = sink(second) + sink(third) + sink.flush()
    want = fresh(second) + fresh(third) + fresh.flush()
    assert_same(got, want)
    assert sink.feed.counts == fresh.feed.counts


@pytest.mark.parametrize("source", ["feed", "stream"])
@pytest.mark.parametrize("inferred", [True, False])
def test_a_failing_first_call_binds_no_schema(source, inferred):
    """The first chunk fails (a duplicate time); the next, of other column types, is taken."""
    kwargs = dict(schema_=feeds.Schema(), n_inputs=2) if inferred else {}
    bad = frame(4, 2).assign(time=[0, 0, 1, 1]).iloc[[0, 1, 2, 2, 3]].reset_index(drop=True)
    if inferred:  # an extra numeric column z, integer times
        bad = bad.assign(z=1.0).drop(columns="y")
        kwargs["schema_"] = feeds.Schema(time="time")
    sink, fresh = Sink(source, **kwargs), Sink(source, **kwargs)
    with pytest.raises(feeds.TimeOrderError) as exc:
        sink(bad)
    says(str(exc.value), "key 'k0'", "equal to", row=3)
    good = frame(4, 2) if not inferred else frame(4, 2).drop(columns="y")
    assert_same(sink(good) + sink.flush(), fresh(good) + fresh.flush())


def test_a_stream_whose_engine_refuses_a_frame_keeps_its_feed_unchanged():
    options = dict(dtype="float32")
    stream = streamrnn.Stream(model(2, "float32"), feed=feeds.Feed(schema(), **options))
    fresh = streamrnn.Stream(model(2, "float32"), feed=feeds.Feed(schema(), **options))
    first, second = frame(6, 2), frame(6, 2, start=6)
    np.testing.assert_array_equal(stream.update(first), fresh.update(first))
    bad = second.copy()
    bad.loc[3, "a"] = 1e39  # finite in the frame, inf once made float32
    with pytest.raises((feeds.FeedError, InputError)) as exc:
        stream.update(bad)
    says(str(exc.value), "key 'k1'", row=3)
    np.testing.assert_array_equal(stream.update(second), fresh.update(second))
    assert stream.feed.counts == fresh.feed.counts


# -- rows named in the source, whatever the cut -------------------------------------------------

READERS = {
    "pandas": lambda df, path, **kw: feeds.iter_pandas(df, **kw),
    "arrow": lambda df, path, **kw: feeds.iter_arrow(
        pa.Table.from_pandas(df, preserve_index=False), **kw
    ),
    "chunks": lambda df, path, **kw: feeds.iter_chunks(df, **kw),
    "parquet": lambda df, path, **kw: feeds.iter_parquet(path / "rows.parquet", **kw),
    "csv": lambda df, path, **kw: feeds.iter_csv(path / "rows.csv", **kw),
}


def _files(df, path):
    df.to_parquet(path / "rows.parquet", index=False)
    df.to_csv(path / "rows.csv", index=False, float_format="%.17g")


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("fault", ["NaN", "late"])
def test_a_reader_cutting_by_rows_names_the_row_of_its_source(reader, fault, tmp_path):
    df = frame(10, 2)
    if fault == "NaN":
        df.loc[7, "a"] = np.nan
    else:
        df.loc[7, "time"] = T0  # key k1, before its earlier rows
    _files(df, tmp_path)
    error = feeds.MissingValueError if fault == "NaN" else feeds.TimeOrderError
    with pytest.raises(error) as exc:
        list(READERS[reader](df, tmp_path, rows=3, schema=schema()))
    says(str(exc.value), "k1", row=7)


# -- bad options ----------------------------------------------------------------------------------

BAD_ROWS = [
    ({"rows": 0}, "rows", "0"),
    ({"rows": -3}, "rows", "-3"),
    ({"rows": 2.5}, "rows", "2.5"),
    ({"rows": True}, "rows", "True"),
    ({"rows": 4, "every": "1h"}, "every", "not both"),
]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("options, named, value", BAD_ROWS)
def test_bad_cuts_are_config_errors_before_any_row_is_read(reader, options, named, value, tmp_path):
    df = frame(6)
    _files(df, tmp_path)
    with pytest.raises(feeds.ConfigError) as exc:
        READERS[reader](df, tmp_path, schema=schema(), **options)  # raised on the call itself
    says(str(exc.value), named, value)


BAD_OPTIONS = [  # Feed options, the word naming the option, the bad value, something accepted
    ({"late": "ignore"}, "late", "'ignore'", "'drop'"),
    ({"duplicates": "keep"}, "duplicates", "'keep'", "'first'"),
    ({"aggregate": "median"}, "aggregate", "'median'", "'mean'"),
    ({"scale": "minmax"}, "scale", "'minmax'", "'per_key'"),
    ({"missing": "zero"}, "missing", "'zero'", "'ffill'"),
    ({"missing": ("ffill",)}, "missing", "('ffill',)", "'mask'"),
    ({"missing": ("fill", 0.0)}, "missing", "('fill', 0.0)", "'mask'"),
    ({"missing": float("inf")}, "missing", "inf", "finite"),
    ({"missing": True}, "missing", "True", "fill value"),
    ({"freeze_after": 0}, "freeze_after", "0", "positive integer"),
    ({"freeze_after": -2}, "freeze_after", "-2", "positive integer"),
    ({"freeze_after": 2.5}, "freeze_after", "2.5", "positive integer"),
    ({"freeze_after": True}, "freeze_after", "True", "positive integer"),
    ({"grid": "1h", "duplicates": "last"}, "duplicates='last'", "grid", "aggregate='last'"),
    ({"dtype": "int32"}, "dtype", "'int32'", "'float32'"),
    ({"missing": {"a": "zero"}}, "'a'", "'zero'", "'ffill'"),
    ({"grid": "soon"}, "grid", "'soon'", "'1h'"),
    ({"grid": -1}, "grid", "-1", "positive"),
    ({"grid": float("nan")}, "grid", "nan", "positive"),
]


@pytest.mark.parametrize("options, named, value, accepted", BAD_OPTIONS)
def test_bad_feed_options_are_config_errors_naming_the_option(options, named, value, accepted):
    with pytest.raises(feeds.ConfigError) as exc:
        feeds.Feed(schema(), **options)
    says(str(exc.value), named, value, accepted)
    with pytest.raises(feeds.ConfigError) as exc:  # the same through a reader
        feeds.iter_pandas(frame(), schema=schema(), **options)
    says(str(exc.value), named, value, accepted)


FIRST_CHUNK_OPTIONS = [  # checked once the columns are known
    ({"missing": {"wind": 0.0}}, ["'wind'", "not a feature", "'a'", "'b'"]),
    ({"grid": 3600}, ["grid", "3600", "'1h'", "not a bare number"]),  # the times are timestamps
    ({"grid": 1.5, "time_delta": True}, ["grid", "1.5", "'1h'"]),
]


@pytest.mark.parametrize("options, parts", FIRST_CHUNK_OPTIONS)
def test_options_about_columns_are_config_errors_at_the_first_rows(options, parts):
    feed = feeds.Feed(schema(), **options)
    with pytest.raises(feeds.ConfigError) as exc:
        feed(frame())
    says(str(exc.value), *parts)
    assert feed.counts["rows_in"] == 0


def test_a_cut_by_an_unreadable_time_span_is_a_config_error():
    with pytest.raises(feeds.ConfigError) as exc:
        list(feeds.iter_pandas(frame(), every="fortnightly", schema=schema()))
    says(str(exc.value), "every", "'fortnightly'")


def test_a_feed_and_feed_options_together_are_a_config_error():
    with pytest.raises(feeds.ConfigError) as exc:
        feeds.iter_pandas(frame(), feeds.Feed(schema()), late="drop")
    says(str(exc.value), "late")
    with pytest.raises(feeds.ConfigError) as exc:
        feeds.iter_chunks(frame(), feed="feed")
    says(str(exc.value), "feeds.Feed", "str")
    with pytest.raises(StreamConfigError) as exc:
        streamrnn.Stream(model(2), feed={"late": "drop"})
    says(str(exc.value), "feed", "dict")


@pytest.mark.parametrize("later", [("b", np.inf), ("a", -np.inf), ("time", None)])
def test_the_first_fault_in_row_order_is_named_whichever_pass_finds_it(later):
    # row 0 has nothing to forward-fill (found when rows are released); row 1 is
    # infinite or late (found as rows arrive): row 0 is named
    df = frame(2, 1)
    df.loc[0, "a"] = np.nan
    column, value = later
    if column == "time":
        df.loc[1, "time"] = df.loc[0, "time"] - pd.Timedelta("1h")
    else:
        df.loc[1, column] = value
    feed = feeds.Feed(schema(), missing="ffill")
    with pytest.raises(feeds.MissingValueError) as exc:
        feed(df)
    says(str(exc.value), "column 'a'", "no earlier value", "key 'k0'", row=0)
    assert feed.counts == {"rows_in": 0, "rows_out": 0, "late_dropped": 0,
                           "duplicates_dropped": 0, "merged": 0, "empty_bins": 0,
                           "missing": {"a": 0, "b": 0}} or not feed._ready  # fmt: skip


# -- the stream goes on after flush(), odd grids, odd keys, odd filters ---------------------------


def test_rows_after_flush_never_emit_a_time_or_bin_twice():
    df = pd.DataFrame({"key": ["a"] * 4, "v": [1.0, 2.0, 3.0, 4.0],
                       "time": T0 + pd.to_timedelta([0, 20, 40, 70], "min")})  # fmt: skip
    feed = feeds.Feed(feeds.Schema(key="key", time="time"), grid="1h")
    first = list(feeds.iter_pandas(df.iloc[:2], feed))  # flushed: the 00:00 bin is out
    with pytest.raises(feeds.TimeOrderError) as exc:
        list(feeds.iter_pandas(df.iloc[2:], feed))
    says(str(exc.value), "key 'a'", "already emitted", "late='drop'", row=0)
    dropping = feeds.Feed(feeds.Schema(key="key", time="time"), grid="1h", late="drop")
    out = feeds.concat([*feeds.iter_pandas(df.iloc[:2], dropping),
                        *feeds.iter_pandas(df.iloc[2:], dropping)])  # fmt: skip
    assert out.times.tolist() == [T0.value, T0.value + 3600 * 10**9]
    assert dropping.counts["late_dropped"] == 1 and sum(len(c) for c in first) == 1
    dups = feeds.Feed(feeds.Schema(key="key", time="time"), duplicates="last")
    times = pd.DataFrame({"key": ["a"] * 4, "time": [0, 1, 1, 2], "v": [0.0, 1.0, 2.0, 3.0]})
    out = feeds.concat([*feeds.iter_pandas(times.iloc[:2], dups),
                        *feeds.iter_pandas(times.iloc[2:], dups)])  # fmt: skip
    assert out.times.tolist() == [0, 1, 2] and out.x[:, 0].tolist() == [0.0, 1.0, 3.0]
    assert dups.counts["duplicates_dropped"] == 1


def test_a_float_grid_puts_times_on_the_edge_in_the_bin_that_starts_there():
    df = pd.DataFrame({"time": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7], "v": np.arange(7.0)})
    feed = feeds.Feed(feeds.Schema(time="time"), grid=0.1, aggregate="last")
    out = feeds.concat([feed(df), feed.flush()])
    assert out.x[:, 0].tolist() == list(range(7))
    assert feed.counts["merged"] == feed.counts["empty_bins"] == 0
    spans = [len(c) for c in feeds.iter_pandas(df, every=0.1, schema=feeds.Schema(time="time"))]
    assert spans == [1] * 7


def test_a_gap_too_long_for_the_grid_is_a_typed_error():
    df = pd.DataFrame({"key": ["a", "a"], "v": [1.0, 2.0],
                       "time": pd.to_datetime(["2024-01-01", "2224-01-01"])})  # fmt: skip
    feed = feeds.Feed(feeds.Schema(key="key", time="time"), grid="1s", missing="ffill")
    with pytest.raises(feeds.TimeOrderError) as exc:
        feed(df)
    says(str(exc.value), "key 'a'", "max_empty_bins", row=1)
    far = pd.DataFrame({"time": [0.0, 1e300], "v": [1.0, 2.0]})
    with pytest.raises(feeds.TimeOrderError, match="max_empty_bins"):
        feeds.Feed(feeds.Schema(time="time"), grid=1.0, missing=0.0)(far)


def test_key_dictionaries_with_repeated_entries_map_by_name():
    feed = feeds.Feed(feeds.Schema(key="k", time="t"))
    feed(pa.table({"k": ["a"], "t": [0], "v": [1.0]}))
    d = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["b", "b"]))
    chunk = feed(pa.table({"k": d, "t": [1, 2], "v": [1.0, 2.0]}))
    assert list(chunk.keys) == ["b", "b"] and len(feed._index) == 2
    nulls = pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), pa.array(["c", None]))
    with pytest.raises(feeds.MissingValueError) as exc:
        feed(pa.table({"k": nulls, "t": [3, 4], "v": [1.0, 2.0]}))
    says(str(exc.value), "key column 'k'", row=1)
    assert len(feed._index) == 2


def test_integer_categorical_keys_and_an_unnamed_index_are_read_as_meant():
    df = pd.DataFrame({"k": pd.Categorical([3, 1, 3]), "t": [0, 0, 1], "v": [1.0, 2.0, 3.0]},
                      index=[10, 20, 30])  # fmt: skip
    chunk = feeds.Feed(feeds.Schema(key="k", time="t"))(df)
    assert chunk.keys.tolist() == [3, 1, 3] and chunk.columns == ("v",)


def test_wide_frames_with_integer_column_labels_key_by_them():
    index = pd.date_range("2024-01-01", periods=3, freq="h", name="time")
    wide = pd.DataFrame(np.arange(6.0).reshape(3, 2), index=index)  # columns 0 and 1
    chunk = feeds.concat(list(feeds.iter_pandas(wide, wide=True)))
    assert chunk.keys.tolist() == [0, 1, 0, 1, 0, 1] and chunk.columns == ("value",)


def test_cutting_by_time_names_the_row_of_a_missing_time_in_the_source():
    big = pd.DataFrame({"key": ["a"] * 70_000, "v": 1.0,
                        "time": pd.date_range("2024", periods=70_000, freq="s")})  # fmt: skip
    big.loc[69_000, "time"] = pd.NaT
    with pytest.raises(feeds.MissingValueError) as exc:
        list(feeds.iter_pandas(big, every="1h"))
    says(str(exc.value), "time column 'time'", row=69_000)


def test_cutting_by_rows_joins_pieces_of_one_kind_and_other_arrow_types():
    plain = pa.table({"key": ["a", "b"], "time": [0, 0], "v": [1.0, 2.0]})
    encoded = pa.table({"key": pa.array(["a", "b"]).dictionary_encode(), "time": [1, 1],
                        "v": pa.array([3.0, 4.0], pa.float32())})  # fmt: skip
    schema = feeds.Schema(key="key", time="time")
    got = feeds.concat(list(feeds.iter_chunks([plain, encoded], rows=3, schema=schema)))
    want = feeds.concat(list(feeds.iter_chunks([plain, encoded], schema=feeds.Schema(
        key="key", time="time"))))  # fmt: skip
    assert got.equals(want) and len(got) == 4


@pytest.mark.parametrize(
    "filters, fragment",
    [
        (dict(keys=["1"]), "holds '1'"),
        (dict(keys=[1.5]), "holds 1.5"),
        (dict(start="2024-01-01"), "not a number"),
    ],
)
def test_parquet_filters_of_the_wrong_kind_are_config_errors(tmp_path, filters, fragment):
    df = pd.DataFrame({"key": [1, 2], "time": [0, 1], "v": [1.0, 2.0]})
    df.to_parquet(tmp_path / "f.parquet", index=False)
    with pytest.raises(feeds.ConfigError) as exc:
        list(feeds.iter_parquet(tmp_path / "f.parquet", schema=feeds.Schema(key="key",
                                                                             time="time"),
                                **filters))  # fmt: skip
    says(str(exc.value), fragment)


def test_parquet_filters_by_one_key_and_by_aware_or_naive_bounds(tmp_path):
    df = frame(6, 2)
    df.to_parquet(tmp_path / "f.parquet", index=False)
    one = feeds.concat(list(feeds.iter_parquet(tmp_path / "f.parquet", schema=schema(),
                                               keys="k1")))  # fmt: skip
    assert set(one.keys) == {"k1"} and len(one) == 3
    with pytest.raises(feeds.ConfigError, match="naive"):
        list(feeds.iter_parquet(tmp_path / "f.parquet", schema=schema(), start="2024-01-01"))
    naive = frame(4, 1, tz=None)
    naive.to_parquet(tmp_path / "g.parquet", index=False)
    with pytest.raises(feeds.ConfigError, match="aware"):
        list(feeds.iter_parquet(tmp_path / "g.parquet", schema=schema(),
                                start=pd.Timestamp("2024-01-01", tz="UTC")))  # fmt: skip


def test_files_that_are_not_what_the_reader_reads_are_schema_errors(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "text.parquet").write_text("not parquet")
    (tmp_path / "text.arrow").write_bytes(b"not arrow at all")
    with pytest.raises(feeds.SchemaError, match="empty.csv"):
        list(feeds.iter_csv(tmp_path / "empty.csv"))
    with pytest.raises(feeds.SchemaError, match="text.parquet"):
        list(feeds.iter_parquet(tmp_path / "text.parquet"))
    with pytest.raises(feeds.SchemaError, match="not Arrow IPC"):
        list(feeds.iter_ipc(tmp_path / "text.arrow"))


def test_unsigned_keys_past_int64_and_oversized_fill_values_are_refused():
    table = pa.table({"k": pa.array([2**63 + 5], pa.uint64()), "t": [0], "v": [1.0]})
    with pytest.raises(feeds.SchemaError) as exc:
        feeds.Feed(feeds.Schema(key="k", time="t"))(table)
    says(str(exc.value), "key column 'k'", str(2**63 + 5))
    with pytest.raises(feeds.ConfigError) as exc:
        feeds.Feed(feeds.Schema(time="t"), missing=1e39)(table)
    says(str(exc.value), "fill value", "float32")
    with pytest.raises(feeds.ConfigError, match="batch_rows"):
        feeds.iter_parquet("anywhere.parquet", batch_rows=0)
    with pytest.raises(feeds.ConfigError, match="scale"):
        feeds.Feed(freeze_after=10)


# -- regressions: held rows, large magnitudes, wide tables -----------------------------------


def series_frame(t, v, **more):
    return pd.DataFrame({"t": t, "v": v, **more})


def fed(feed, *frames):
    """Every chunk of ``frames`` through ``feed``, then its flush, concatenated."""
    return feeds.concat([feed(f) for f in frames] + [feed.flush()])


def test_a_float_grid_bins_epoch_seconds_by_their_own_step():
    t = 1_700_000_000.0 + np.array([0.0, 0.6, 1.2, 59.0, 61.0])
    df = series_frame(t, [1.0, 2.0, 3.0, 4.0, 5.0])
    last = fed(feeds.Feed(feeds.Schema(time="t"), grid=1.0, aggregate="last", missing="mask",
                          dtype="float64"), df)  # fmt: skip
    assert last.times[:2].tolist() == [1_700_000_000.0, 1_700_000_001.0]
    assert last.x[:2, 0].tolist() == [2.0, 3.0]
    minutes = fed(feeds.Feed(feeds.Schema(time="t"), grid=60.0, dtype="float64"), df)
    assert minutes.x[:, 0].tolist() == [2.0, 4.5]  # 1.7e9 s is 20 s into a minute
    spans = [len(c) for c in feeds.iter_pandas(df, every=60.0, schema=feeds.Schema(time="t"))]
    assert spans == [3, 2]
    spans = [len(c) for c in feeds.iter_pandas(df, every=1.0, schema=feeds.Schema(time="t"))]
    assert spans == [2, 1, 1, 1]


def test_a_grid_mean_of_huge_finite_values_is_their_mean():
    df = series_frame([0.0, 1.0, 2.0, 12.0], [1e308, 1e308, -1e308, 1.0])
    chunk = fed(feeds.Feed(feeds.Schema(time="t"), grid=10, dtype="float64"), df)
    assert chunk.x[0, 0] == pytest.approx(1e308 / 3, rel=1e-15) and chunk.x[1, 0] == 1.0


def test_a_value_too_large_for_the_dtype_fails_the_chunk_it_comes_in_not_a_later_one():
    feed = feeds.Feed(feeds.Schema(time="t"), grid=10)
    feed(series_frame([0.0], [1.0]))
    with pytest.raises(feeds.MissingValueError) as exc:
        feed(series_frame([1.0, 2.0], [5.0, 1e39]))
    says(str(exc.value), "'v'", "row 1", "float32", "dtype='float64'")
    # the feed holds nothing it cannot release: the stream goes on
    chunk = fed(feed, series_frame([3.0, 15.0], [3.0, 7.0]))
    assert chunk.x[:, 0].tolist() == [2.0, 7.0]


def test_after_flush_a_grid_still_emits_the_empty_bins_of_a_gap():
    df = series_frame([0.0, 1.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0])
    whole = feeds.Feed(feeds.Schema(time="t"), grid=1, missing="mask")
    want = fed(whole, df)
    flushed = feeds.Feed(feeds.Schema(time="t"), grid=1, missing="mask")
    parts = [flushed(df[:2]), flushed.flush(), flushed(df[2:]), flushed.flush()]
    assert feeds.concat(parts).equals(want)
    assert flushed.counts == whole.counts and whole.counts["empty_bins"] == 3
    capped = feeds.Feed(feeds.Schema(time="t"), grid=1, missing="mask", max_empty_bins=2)
    capped(df[:2])
    capped.flush()
    with pytest.raises(feeds.TimeOrderError, match="max_empty_bins=2"):
        capped(df[2:])


def test_time_since_the_previous_row_spans_centuries_or_says_it_does_not_fit():
    times = pd.to_datetime(["1700-01-01", "2200-01-01"]).as_unit("ns")
    chunk = feeds.Feed(feeds.Schema(time="t"), time_delta=True, dtype="float64")(
        series_frame(times, [1.0, 2.0])
    )
    seconds = (times[1].to_pydatetime() - times[0].to_pydatetime()).total_seconds()
    assert chunk.x[1, 1] == pytest.approx(seconds, rel=1e-12)
    with pytest.raises(feeds.MissingValueError) as exc:
        feeds.Feed(feeds.Schema(time="t"), time_delta=True)(series_frame([0.0, 1e39], [1, 2]))
    says(str(exc.value), "'dt'", "row 1", "float32")


def test_scaling_statistics_that_overflow_are_an_error_not_zeros():
    feed = feeds.Feed(feeds.Schema(time="t"), scale="global", dtype="float64")
    with pytest.raises(feeds.MissingValueError) as exc:
        feed(series_frame([0.0, 1.0, 2.0], [1e200, -1e200, 5.0]))
    says(str(exc.value), "'v'", "row 1", "standardised")
    assert feed.counts["rows_in"] == 0


def test_integer_features_past_the_floats_exact_range_round_to_the_nearest_float():
    table = pa.table({"t": [0, 1], "n": pa.array([2**53 + 1, 2**63 - 1], pa.int64())})
    chunk = feeds.Feed(feeds.Schema(time="t"), dtype="float64")(table)
    assert chunk.x[:, 0].tolist() == [float(2**53), float(2**63)]
    big = pa.table({"t": [0], "n": pa.array([2**64 - 1], pa.uint64())})
    assert feeds.Feed(feeds.Schema(time="t"))(big).x[0, 0] == np.float32(2**64)


def test_the_smallest_int64_timestamp_is_no_time():
    table = pa.table({"t": pa.array([np.iinfo(np.int64).min, 0], pa.timestamp("ns")), "v": [1, 2]})
    with pytest.raises(feeds.MissingValueError) as exc:
        feeds.Feed(feeds.Schema(time="t"))(table)
    says(str(exc.value), "'t'", "row 0", "NaT")


def test_a_failed_chunk_leaves_the_counts_a_caller_holds_as_they_were():
    feed = feeds.Feed(schema())
    feed(frame(4))
    counts = feed.counts
    held = {**counts, "missing": dict(counts["missing"])}
    bad = frame(4, start=4)
    bad.loc[3, "a"] = np.inf  # rows 0-2 go through the first pass before the error
    with pytest.raises(feeds.MissingValueError):
        feed(bad)
    assert counts == held and feed.counts is counts


def test_more_value_columns_than_a_tuple_carries_give_the_same_rows():
    rng = np.random.default_rng(3)
    n = 40
    df = pd.DataFrame({"t": np.sort(rng.choice(200, n, replace=False)).astype(float)})
    for i in range(12):
        df[f"c{i}"] = np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))
    options = dict(grid=5, missing="ffill-or-fill" and ("ffill", 0.0), scale="global")
    wide = fed(feeds.Feed(feeds.Schema(time="t"), **options), df)
    for part in ([f"c{i}" for i in range(4)], [f"c{i}" for i in range(8, 12)]):
        narrow = fed(feeds.Feed(feeds.Schema(time="t"), **options), df[["t", *part]])
        cols = [wide.columns.index(c) for c in part]
        np.testing.assert_array_equal(wide.x[:, cols], narrow.x)
    unheld = feeds.Feed(feeds.Schema(time="t"), missing=("ffill", 0.0))(df)
    assert unheld.x.shape == (n, 12) and np.isfinite(unheld.x).all()


def test_a_refused_series_run_does_not_bind_the_series_to_its_key():
    series = streamrnn.Series(streamrnn.GRU(1, 4, output_size=1, seed=0), feed=feeds.Feed())
    two_keys = pd.DataFrame({"key": ["a", "b"], "time": [0, 0], "v": [1.0, 2.0]})
    with pytest.raises(InputError):
        series.run(two_keys)
    out = series.run(pd.DataFrame({"key": ["b"], "time": [1], "v": [3.0]}))
    assert out.shape == (1, 1)


def test_stream_and_series_flush_release_what_the_feed_holds():
    df = pd.DataFrame({"key": ["a", "b"] * 3, "time": np.repeat([0.0, 1.0, 2.0], 2),
                       "v": np.arange(6.0)})  # fmt: skip
    model = streamrnn.GRU(1, 4, output_size=1, seed=0, dtype="float64")
    want = streamrnn.Stream(model).update(df)
    stream = streamrnn.Stream(model, feed=feeds.Feed(grid=1.0, dtype="float64"))
    got = stream.update(df)
    assert got.shape == (4, 1)  # the last bin of each key is still open
    rest = stream.flush()
    np.testing.assert_array_equal(np.concatenate([got, rest]), want)  # same order here
    assert stream.flush().shape == (0, 1)
    series = streamrnn.Series(model, feed=feeds.Feed(feeds.Schema(key=False), grid=1.0,
                                                    dtype="float64"))  # fmt: skip
    one = df[df.key == "a"].drop(columns="key")
    first = series.run(one)
    np.testing.assert_array_equal(np.concatenate([first, series.flush()]),
                                  streamrnn.Series(model).run(one))  # fmt: skip
