"""Sources given to the feeds: readers, tables, schema inference and bundled data."""

import datetime
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv
import pyarrow.ipc
import pyarrow.parquet as pq
import pytest

import feeds
from feeds.datasets import load_seattle_weather


def keyed(time, **columns):
    """Two keys, a and b, at one time."""
    return pd.DataFrame({"key": ["a", "b"], "time": [time, time], **columns})


# -- cutting by rows or time spans: the pieces are checked before they are joined ------------


@pytest.mark.parametrize("cut", [{}, {"rows": 4}, {"every": 1.0}])
def test_a_column_missing_from_a_later_piece_is_refused_however_the_source_is_cut(cut):
    first = keyed(0.0, v=[1.0, 2.0], w=[5.0, 6.0])
    later = keyed(0.5, v=[3.0, 4.0])
    with pytest.raises(feeds.SchemaError, match="column 'w' is missing from this chunk"):
        list(feeds.iter_chunks([first, later], missing="ffill", **cut))
    with pytest.raises(feeds.SchemaError, match="column 'w' was not in the first chunk"):
        list(feeds.iter_chunks([later, first], missing="ffill", **cut))


def test_a_bound_feed_refuses_a_missing_column_when_cutting_by_rows():
    feed = feeds.Feed(missing="ffill")
    feed(keyed(0.0, v=[1.0, 2.0], w=[5.0, 6.0]))
    pieces = [keyed(1.0, v=[1.0, 2.0], w=[5.0, 6.0]), keyed(2.0, v=[3.0, 4.0])]
    with pytest.raises(feeds.SchemaError, match="column 'w' is missing"):
        list(feeds.iter_chunks(pieces, feed, rows=4))


def test_pieces_that_cannot_be_joined_are_schema_errors_naming_the_column():
    small = pa.table({"key": pa.array([1, 2]), "time": [0.0, 0.0], "v": [1.0, 2.0]})
    huge = pa.table({"key": pa.array([2**63 + 5, 2], pa.uint64()), "time": [1.0, 1.0],
                     "v": [1.0, 2.0]})  # fmt: skip
    with pytest.raises(feeds.SchemaError, match="key column 'key'.*beyond int64"):
        list(feeds.iter_chunks([small, huge], rows=4, schema=feeds.Schema(key="key")))
    stamps = pa.table({"time": pa.array([np.datetime64("2000-01-01", "ns")]), "v": [1.0]})
    dates = pa.table({"time": pa.array([datetime.date(3000, 1, 1)], pa.date32()), "v": [2.0]})
    with pytest.raises(feeds.SchemaError, match="time column 'time'.*1678 to 2262"):
        list(feeds.iter_chunks([stamps, dates], rows=4))
    texts = pa.table({"time": [0.0], "v": [1.0], "note": ["x"]})
    numbers = pa.table({"time": [1.0], "v": [2.0], "note": [3]})
    with pytest.raises(feeds.SchemaError, match="column 'note'"):
        list(feeds.iter_chunks([texts, numbers], rows=4, schema=feeds.Schema(features=["v"])))


@pytest.mark.parametrize("dtype, big", [("float64", 2**53 + 1), ("float32", 2**24 + 1)])
def test_large_integer_features_joined_with_floats_round_to_the_nearest_float(dtype, big):
    ints = pa.table({"time": [0.0, 1.0], "v": pa.array([big, 2**62 + 3], pa.int64())})
    floats = pa.table({"time": [2.0], "v": [1.5]})
    (chunk,) = feeds.iter_chunks([ints, floats], rows=3, dtype=dtype)
    want = np.array([big, 2**62 + 3, 1.5], np.float64).astype(dtype)
    assert chunk.x[:, 0].tolist() == want.tolist()
    assert int(chunk.x[0, 0]) != big  # rounded, as numpy rounds it


# -- sources that are not tables -------------------------------------------------------------


@pytest.mark.parametrize("source", [{"a": [1]}, "rows.csv", b"rows", [{"a": [1]}], 3])
def test_a_source_that_is_not_tables_says_what_is_accepted(source):
    with pytest.raises(feeds.SchemaError) as exc:
        list(feeds.iter_chunks(source))
    message = str(exc.value)
    assert "DataFrame" in message and "record batch or reader" in message
    assert type(source if not isinstance(source, list) else source[0]).__name__ in message
    if isinstance(source, dict):
        assert "pandas.DataFrame" in message


# -- CSV text as written ----------------------------------------------------------------------


def test_csv_text_is_read_as_written_and_numbers_keep_their_missing_spellings(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("key,time,v\nNA,0,1\nnull,0,NA\nN/A,0,nan\nNA,1,\nnan,1,5\nZA,1,6\n")
    (chunk,) = feeds.iter_csv(path, missing="mask", dtype="float64")
    assert list(chunk.keys) == ["NA", "null", "N/A", "NA", "nan", "ZA"]
    assert chunk.x[:, chunk.columns.index("v_missing")].tolist() == [0, 1, 1, 1, 0, 0]
    assert chunk.x[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0, 5.0, 6.0]


def test_a_csv_key_of_null_spellings_only_is_read_with_its_type_named(tmp_path):
    path = tmp_path / "namibia.csv"
    path.write_text("key,time,v\nNA,0,1\nNA,1,2\n")
    (chunk,) = feeds.iter_csv(path, column_types={"key": pa.string()})
    assert list(chunk.keys) == ["NA", "NA"]


def test_an_empty_text_field_in_csv_is_still_a_missing_key(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("key,time,v\nNA,0,1\n,1,2\nZA,2,3\n")
    with pytest.raises(feeds.MissingValueError, match="key column 'key' is null at row 1"):
        list(feeds.iter_csv(path))


# -- Parquet: Hive partitions and filters -----------------------------------------------------


def _sensors():
    """Rows of sensor a, then of sensor b: read partition by partition, a valid stream."""
    n = 7
    return pd.DataFrame(
        {
            "sensor": ["a"] * n + ["b"] * n,
            "time": pd.date_range("2024-01-01", periods=n, freq="h").tolist() * 2,
            "v": np.arange(2.0 * n),
            "w": np.arange(2.0 * n)[::-1] * 0.5,
        }
    )


@pytest.mark.parametrize("keys", [None, ["b"], "a"])
def test_a_hive_partitioned_directory_gives_the_chunks_of_the_whole_file(tmp_path, keys):
    df = _sensors()
    pq.write_to_dataset(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "parts",
                        partition_cols=["sensor"])  # fmt: skip
    df.to_parquet(tmp_path / "whole.parquet", index=False)
    whole = list(feeds.iter_parquet(tmp_path / "whole.parquet", rows=4, keys=keys))
    parts = list(feeds.iter_parquet(tmp_path / "parts", rows=4, keys=keys))
    assert [len(c) for c in parts] == [len(c) for c in whole]
    assert sum(len(c) for c in parts) == (len(df) if keys is None else len(df) // 2)
    for got, want in zip(parts, whole, strict=True):
        assert list(got.keys) == list(want.keys)
        assert got.columns == want.columns == ("v", "w")
        np.testing.assert_array_equal(got.times, want.times)
        np.testing.assert_array_equal(got.x, want.x)
    if keys is not None:
        assert {k for c in parts for k in c.keys} == set(keys)


@pytest.mark.parametrize(
    "filters, fragment",
    [
        (dict(start="2500-01-01"), "1678 to 2262"),
        (dict(end="2500-01-01"), "1678 to 2262"),
        (dict(keys=[]), "keys= is empty"),
    ],
)
def test_parquet_filters_out_of_range_or_empty_are_config_errors(tmp_path, filters, fragment):
    _sensors().to_parquet(tmp_path / "f.parquet", index=False)
    with pytest.raises(feeds.ConfigError, match=fragment):
        list(feeds.iter_parquet(tmp_path / "f.parquet", **filters))


@pytest.mark.parametrize("bound", ["start", "end"])
def test_a_nan_bound_on_numeric_times_is_a_config_error(tmp_path, bound):
    pd.DataFrame({"time": [0.0, 1.0], "v": [1.0, 2.0]}).to_parquet(tmp_path / "f.parquet")
    with pytest.raises(feeds.ConfigError, match=f"{bound}=nan is not a bound"):
        list(feeds.iter_parquet(tmp_path / "f.parquet", **{bound: float("nan")}))


@pytest.mark.parametrize("reader", ["iter_csv", "iter_parquet", "iter_ipc"])
def test_a_missing_file_is_a_schema_error_saying_it_does_not_exist(tmp_path, reader):
    path = tmp_path / "nowhere.data"
    with pytest.raises(feeds.SchemaError, match="nowhere.data.*does not exist"):
        list(getattr(feeds, reader)(path))


def test_an_ipc_file_is_still_read(tmp_path):
    table = pa.table({"time": [0.0, 1.0, 2.0], "v": [1.0, 2.0, 3.0]})
    with pa.ipc.new_file(tmp_path / "rows.arrow", table.schema) as writer:
        writer.write_table(table)
    chunks = list(feeds.iter_ipc(tmp_path / "rows.arrow", rows=2))
    assert [c.x[:, 0].tolist() for c in chunks] == [[1.0, 2.0], [3.0]]


# -- DataFrames as tables ---------------------------------------------------------------------


def test_duplicate_column_names_are_a_schema_error_naming_the_column():
    df = pd.DataFrame([[0.0, 1.0, 2.0]], columns=["time", "v", "v"])
    with pytest.raises(feeds.SchemaError, match="column 'v' appears twice"):
        feeds.as_table(df)


def test_unnamed_index_levels_are_row_labels_and_left_out():
    index = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["key", None])
    df = pd.DataFrame({"time": [0.0, 1.0], "v": [1.0, 2.0]}, index=index)
    assert feeds.as_table(df).column_names == ["time", "v", "key"]
    chunk = feeds.Feed()(df)
    assert chunk.columns == ("v",) and list(chunk.keys) == ["a", "b"]
    unnamed = df.rename_axis([None, None])
    assert feeds.as_table(unnamed).column_names == ["time", "v"]


def test_an_index_named_like_a_column_is_a_schema_error():
    df = pd.DataFrame({"time": [0.0, 1.0], "v": [1.0, 2.0]}).set_index("time", drop=False)
    with pytest.raises(feeds.SchemaError) as exc:
        feeds.as_table(df)
    message = str(exc.value)
    assert "index 'time'" in message and "reset_index(drop=True)" in message
    assert "__index_level" not in message


@pytest.mark.parametrize("value", [Decimal("Infinity"), 2**65])
def test_values_arrow_cannot_convert_are_schema_errors_naming_the_column(value):
    df = pd.DataFrame({"time": [0.0, 1.0], "v": pd.Series([value, value], dtype=object)})
    with pytest.raises(feeds.SchemaError, match="column 'v' holds"):
        feeds.as_table(df)


# -- Schema: roles and inference ---------------------------------------------------------------


@pytest.mark.parametrize(
    "roles, column",
    [
        (dict(time="t", key="t"), "t"),
        (dict(time="t", features=["v", "t"]), "t"),
        (dict(key="k", features=["k"]), "k"),
        (dict(time="t", targets="t"), "t"),
        (dict(key="k", targets=["v", "k"]), "k"),
    ],
)
def test_a_column_in_two_roles_is_refused_when_the_schema_is_made(roles, column):
    with pytest.raises(feeds.ConfigError, match=f"column '{column}'"):
        feeds.Schema(**roles)


def test_a_str_of_features_or_targets_is_one_column():
    schema = feeds.Schema(features="abc", targets="abc")
    assert schema.features == ("abc",) and schema.targets == ("abc",)
    df = pd.DataFrame({"time": [0.0, 1.0], "abc": [1.0, 2.0], "z": [0.0, 0.0]})
    assert feeds.Feed(feeds.Schema(features="abc"))(df).columns == ("abc",)


def test_an_integer_column_named_like_a_key_is_the_key_when_no_text_column_is():
    df = pd.DataFrame({"sensor": [1, 2, 1, 2], "time": [0.0, 0.0, 1.0, 1.0],
                       "count": [3, 4, 5, 6], "v": [1.0, 2.0, 3.0, 4.0]})  # fmt: skip
    with pytest.warns(feeds.KeyWarning, match="'sensor'"):
        (chunk,) = feeds.iter_chunks(df)
    assert chunk.keys.tolist() == [1, 2, 1, 2] and chunk.columns == ("count", "v")
    text = df.assign(city=["x", "y", "x", "y"])  # two columns named as keys: no guess
    with pytest.raises(feeds.SchemaError, match=r"\['sensor', 'city'\] are all named as keys"):
        feeds.Feed()(text)
    assert feeds.Feed(feeds.Schema(key="city"))(text).columns == ("sensor", "count", "v")
    with pytest.raises(feeds.SchemaError, match=r"\['sensor', 'ID'\] are all named as keys"):
        feeds.Feed()(df.assign(ID=[0, 0, 0, 0]))
    assert feeds.Feed(feeds.Schema(key=False))(df.iloc[[0, 2]]).keys is None


# -- bundled data and reader docs -------------------------------------------------------------


def test_seattle_weather_with_the_documented_schema_is_one_series():
    df = load_seattle_weather()
    assert "Schema(key=False)" in load_seattle_weather.__doc__
    chunk = feeds.Feed(feeds.Schema(key=False))(df)
    assert chunk.keys is None and len(chunk) == len(df) == 1461
    assert chunk.columns == ("precipitation", "temp_max", "temp_min", "wind")


def test_rows_counts_input_rows_and_the_docs_say_so():
    for reader in (feeds.iter_chunks, feeds.iter_pandas, feeds.iter_arrow, feeds.iter_ipc,
                   feeds.iter_parquet, feeds.iter_csv):  # fmt: skip
        assert "input rows" in reader.__doc__.lower(), reader.__name__
    df = pd.DataFrame({"time": [0.0, 0.0, 1.0, 2.0, 2.0, 3.0], "v": np.arange(6.0)})
    chunks = list(feeds.iter_chunks(df, rows=3, duplicates="first"))
    assert [len(c) for c in chunks] == [2, 2]  # 3 input rows each, one duplicate dropped each


def test_integer_partitions_are_integer_keys_and_each_file_is_checked(tmp_path):
    df = _sensors().assign(sensor=[2] * 7 + [10] * 7)
    pq.write_to_dataset(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "parts",
                        partition_cols=["sensor"])  # fmt: skip
    chunks = list(feeds.iter_parquet(tmp_path / "parts", keys=[10]))
    assert {k for c in chunks for k in c.keys.tolist()} == {10}
    assert sum(len(c) for c in chunks) == 7
    (late,) = (tmp_path / "parts" / "sensor=2").iterdir()
    df.iloc[:7].drop(columns=["sensor", "w"]).to_parquet(late, index=False)
    with pytest.raises(feeds.SchemaError, match="sensor=2.*column 'w' is missing"):
        list(feeds.iter_parquet(tmp_path / "parts"))


def test_every_cuts_epoch_seconds_by_their_own_span():
    t = 1_700_000_000.0 + np.array([0.0, 0.6, 1.2, 59.0, 61.0])
    df = pd.DataFrame({"t": t, "v": np.arange(5.0)})
    spans = [len(c) for c in feeds.iter_chunks(df, every=1.0, schema=feeds.Schema(time="t"))]
    assert spans == [2, 1, 1, 1]  # 0.6 s is not on the edge of the next second


# -- skip: resuming a source at a row ------------------------------------------------------------


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """One table of 3 keys x 70 steps as a Parquet file (row groups of 40), a folder
    of three Parquet files, a CSV file and an Arrow IPC file."""
    folder = tmp_path_factory.mktemp("skip")
    steps = np.repeat(np.arange(70.0), 3)
    table = pa.table({"key": np.tile(["a", "b", "c"], 70), "time": steps,
                      "v": np.arange(210.0) / 8})  # fmt: skip
    pq.write_table(table, folder / "one.parquet", row_group_size=40)
    (folder / "many").mkdir()
    for i, (a, b) in enumerate([(0, 90), (90, 91), (91, 210)]):
        pq.write_table(table.slice(a, b - a), folder / "many" / f"part-{i}.parquet")
    pyarrow.csv.write_csv(table, folder / "one.csv")
    with pa.ipc.new_file(folder / "one.arrow", table.schema) as writer:
        writer.write_table(table)
    read = {
        "parquet": lambda skip: feeds.iter_parquet(folder / "one.parquet", rows=37, skip=skip),
        "folder": lambda skip: feeds.iter_parquet(folder / "many", rows=37, skip=skip),
        "csv": lambda skip: feeds.iter_csv(folder / "one.csv", rows=37, skip=skip),
        "ipc": lambda skip: feeds.iter_ipc(folder / "one.arrow", rows=37, skip=skip),
    }
    return table, read


@pytest.mark.parametrize("kind", ["parquet", "folder", "csv", "ipc"])
@pytest.mark.parametrize("skip", [0, 1, 39, 40, 80, 90, 91, 150, 209, 210])
def test_skip_starts_the_source_at_that_row(sources, kind, skip):
    table, read = sources
    chunks = list(read[kind](skip))
    got = np.concatenate([c.x[:, 0] for c in chunks]) if chunks else np.zeros(0)
    assert np.array_equal(got, table.column("v").to_numpy()[skip:])
    if chunks:
        assert chunks[0].times[0] == table.column("time")[skip].as_py()


@pytest.mark.parametrize("kind", ["parquet", "folder", "csv", "ipc"])
def test_skip_past_the_end_is_an_error(sources, kind):
    _, read = sources
    with pytest.raises(feeds.SchemaError, match="ended 5 rows short of the position"):
        list(read[kind](215))
    with pytest.raises(feeds.ConfigError, match="skip must be a non-negative integer"):
        read[kind](-1)
