"""feeds readers on the files people have: raw CSV exports and damaged or odd files.

A column whose type the first block got wrong is widened for the rest of the stream, the same
whatever the block size; what cannot be read is an error naming the file, the line and the
column, never a half-read stream or a silent change of meaning (issue 13, items 3 and 10).
"""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import feeds
from feeds.readers import column_types

HEADER = "station,hour,TEMP,DEWP,cbwd\n"


def raw_rows(n, late=None):
    """CSV lines after the header: station s0/s1 in turn, integer readings, a text column;
    ``late`` maps a row index to the line (without newline) written in its place."""
    lines = []
    for i in range(n):
        line = f"s{i % 2},{i // 2},{i % 17 - 5},{i % 7},{'NW' if i % 3 else 'cv'}"
        lines.append((late or {}).get(i, line))
    return "".join(f"{line}\n" for line in lines)


def write(tmp_path, text, name="raw.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def read_all(path, **kw):
    kw.setdefault("schema", feeds.Schema(time="hour", key="station"))
    kw.setdefault("dtype", "float64")
    return list(feeds.iter_csv(path, **kw))


def line_of(i):
    """The line number of data row ``i`` (the header is line 1)."""
    return i + 2


def error_of(path, kind=feeds.SchemaError, **kw):
    with pytest.raises(kind) as exc:
        read_all(path, **kw)
    return str(exc.value)


# -- a column wider than its first block ------------------------------------------------------


def test_an_integer_column_with_a_float_late_is_widened_and_every_row_is_read(tmp_path):
    n, late = 400, 350
    text = HEADER + raw_rows(n, {late: "s0,175,14.66666667,3,NW"})
    path = write(tmp_path, text)
    chunks = read_all(path, block_size=256)
    assert sum(len(c) for c in chunks) == n
    want = pd.read_csv(path)
    temp = np.concatenate([c.x[:, 0] for c in chunks])
    np.testing.assert_array_equal(np.sort(temp), np.sort(want["TEMP"].to_numpy(float)))
    assert 14.66666667 in temp


def test_widened_columns_give_the_same_chunks_whatever_the_block_size(tmp_path):
    late = {300: "s0,150,14.66666667,3,NW", 371: "s1,185,-2,99999999999999999999,cv"}
    path = write(tmp_path, HEADER + raw_rows(420, late))
    want = feeds.concat(read_all(path, rows=37, block_size=1 << 20))
    for block_size in (128, 300, 1000, 4096):
        chunks = read_all(path, rows=37, block_size=block_size)
        assert [len(c) for c in chunks[:-1]] == [37] * (len(chunks) - 1)
        assert feeds.concat(chunks).equals(want), block_size


def test_a_value_column_missing_throughout_the_first_block_takes_numbers_later(tmp_path):
    late = {i: f"s{i % 2},{i // 2},{i % 17 - 5},NA,NW" for i in range(40)}
    late[200] = "s0,100,1,2.5,NW"
    path = write(tmp_path, HEADER + raw_rows(240, late))
    chunks = read_all(path, block_size=256, missing="mask")
    x = feeds.concat(chunks)
    assert len(x) == 240
    assert 2.5 in x.x[:, x.columns.index("DEWP")]


def test_an_unused_column_that_turns_to_text_later_does_not_stop_the_stream(tmp_path):
    late = {300: "s0,150,1,text here,NW"}
    path = write(tmp_path, HEADER + raw_rows(400, late))
    schema = feeds.Schema(time="hour", key="station", features=["TEMP"])
    assert sum(len(c) for c in read_all(path, block_size=256, schema=schema)) == 400


def test_an_integer_key_that_turns_to_text_names_the_column_line_and_column_types(tmp_path):
    text = "sensor,hour,TEMP\n" + "".join(f"{i % 3},{i},{i}\n" for i in range(300))
    text += "north,300,1\n"
    path = write(tmp_path, text)
    message = error_of(path, block_size=256, schema=feeds.Schema(time="hour", key="sensor"))
    for part in ("raw.csv", "line 302", "'sensor'", "'north'", "column_types"):
        assert part in message, message


def test_an_integer_time_that_turns_to_a_float_names_the_time_column_and_the_line(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(300, {250: "s0,125.5,1,2,NW"}))
    message = error_of(path, block_size=256)
    for part in ("raw.csv", f"line {line_of(250)}", "'hour'", "'125.5'", "column_types"):
        assert part in message, message


def test_text_in_a_number_column_later_names_file_line_column_value_and_the_hint(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(300, {260: "s0,130,high,2,NW"}))
    message = error_of(path, block_size=256)
    for part in ("raw.csv", f"line {line_of(260)}", "'TEMP'", "'high'", "column_types"):
        assert part in message, message


def test_line_numbers_count_blank_lines_and_the_header(tmp_path):
    rows = raw_rows(300, {260: "s0,130,high,2,NW"}).splitlines(keepends=True)
    rows[10:10] = ["\n", "\r\n"]  # blank lines: skipped as rows, counted as lines
    path = write(tmp_path, HEADER + "".join(rows))
    assert f"line {line_of(260) + 2}," in error_of(path, block_size=256)


# -- declared column types --------------------------------------------------------------------


def test_column_types_take_type_names_as_text_as_well_as_arrow_types(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(50))
    by_name = read_all(path, column_types={"TEMP": "float64", "cbwd": "string"})
    by_type = read_all(path, column_types={"TEMP": pa.float64(), "cbwd": pa.string()})
    assert feeds.concat(by_name).equals(feeds.concat(by_type))
    as_text = read_all(path, column_types="TEMP=float64, cbwd=string")
    assert feeds.concat(as_text).equals(feeds.concat(by_type))


def test_column_types_parses_the_command_line_form():
    assert column_types("TEMP=float64,cbwd=string") == {"TEMP": pa.float64(), "cbwd": pa.string()}
    assert column_types("t=timestamp[ms, tz=UTC], n = int64") == {
        "t": pa.timestamp("ms", "UTC"),
        "n": pa.int64(),
    }
    assert column_types({"k": "string", "v": pa.float32()}) == {"k": pa.string(), "v": pa.float32()}
    assert column_types("") == {} and column_types(None) == {}


@pytest.mark.parametrize(
    "spec, says",
    [
        ({"TEMP": "flaot64"}, ["'TEMP'", "'flaot64'", "float64", "string"]),
        ("TEMP=flaot64", ["'TEMP'", "'flaot64'", "float64", "string"]),
        ("TEMP", ["'TEMP'", "name=type"]),
        ({"TEMP": 3}, ["'TEMP'", "3"]),
        (["TEMP"], ["column_types", "list"]),
    ],
)
def test_a_type_that_is_not_known_is_a_config_error_naming_the_column(spec, says):
    with pytest.raises(feeds.ConfigError) as exc:
        column_types(spec)
    for part in says:
        assert part in str(exc.value), str(exc.value)


def test_a_declared_type_for_a_column_the_file_lacks_is_a_config_error(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(10))
    message = error_of(path, feeds.ConfigError, column_types={"temp": "float64"})
    assert "'temp'" in message and "TEMP" in message, message


def test_a_declared_type_is_kept_not_widened(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(300, {250: "s0,125,1.5,2,NW"}))
    message = error_of(path, block_size=256, column_types={"TEMP": "int64"})
    assert f"line {line_of(250)}" in message and "'TEMP'" in message, message


# -- rows that cannot be parsed ---------------------------------------------------------------


@pytest.mark.parametrize("at", [3, 250])
def test_a_row_with_another_number_of_fields_names_the_line_and_the_counts(tmp_path, at):
    path = write(tmp_path, HEADER + raw_rows(300, {at: raw_rows(300).splitlines()[at] + ",x"}))
    message = error_of(path, block_size=256)
    for part in ("raw.csv", f"line {line_of(at)}", "expected 5 fields", "got 6"):
        assert part in message, message
    assert "column_types" not in message, message


@pytest.mark.parametrize("at", [3, 250, 299])
def test_an_unclosed_quote_names_the_line(tmp_path, at):
    row = raw_rows(300).splitlines()[at]
    path = write(tmp_path, HEADER + raw_rows(300, {at: row[:-2] + '"NW'}))
    message = error_of(path, block_size=256)
    for part in ("raw.csv", f"line {line_of(at)}", "quote"):
        assert part in message, message


def test_binary_garbage_cannot_be_read_as_csv_and_says_where(tmp_path):
    text = (HEADER + raw_rows(20)).encode() + b"\x00\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\n"
    path = write(tmp_path, text + raw_rows(20).encode())
    message = error_of(path)
    for part in ("raw.csv", f"line {line_of(20)}", "cannot read it as CSV"):
        assert part in message, message


def test_a_garbage_row_in_the_first_block_names_its_line_and_column(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(60, {7: "%%%,@@,!!,??,~~"}))
    message = error_of(path, schema=feeds.Schema())
    for part in ("raw.csv", f"line {line_of(7)}", "not a number"):
        assert part in message, message


def test_a_number_column_with_one_stray_text_in_the_first_block_is_not_dropped(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(60, {30: "s0,15,oops,3,NW"}))
    message = error_of(path)  # features inferred: TEMP would silently not be one
    for part in ("raw.csv", f"line {line_of(30)}", "'TEMP'", "'oops'", "column_types"):
        assert part in message, message
    declared = read_all(path, column_types={"TEMP": "string"}, schema=feeds.Schema(
        time="hour", key="station", features=["DEWP"]))  # fmt: skip
    assert sum(len(c) for c in declared) == 60


def test_an_empty_file_and_a_header_alone(tmp_path):
    with pytest.raises(feeds.SchemaError, match="empty.csv.*empty"):
        read_all(write(tmp_path, "", "empty.csv"))
    assert read_all(write(tmp_path, HEADER)) == []


# -- text that is not UTF-8 -------------------------------------------------------------------


def latin1_rows(n, start=0):
    return "".join(f"Zürich{i % 2},{i // 2},{i},1\n" for i in range(start, start + n))


@pytest.mark.parametrize("late", [False, True])
def test_a_key_that_is_not_utf8_is_an_error_naming_the_column_and_the_encoding(tmp_path, late):
    head = "city,hour,TEMP,DEWP\n"
    if late:  # text that is UTF-8 in the first block, latin-1 later
        text = (head + "".join(f"Basel{i % 2},{i // 2},{i},1\n" for i in range(300))).encode()
        text += latin1_rows(4, 300).encode("latin-1")
    else:
        text = (head + latin1_rows(10)).encode("latin-1")
    path = write(tmp_path, text)
    key = "city" if late else None  # unnamed: Arrow's bytes were skipped by key inference
    message = error_of(path, block_size=256, schema=feeds.Schema(time="hour", key=key))
    line = 302 if late else 2
    for part in ("raw.csv", f"line {line}", "'city'", "encoding='latin-1'"):
        assert part in message, message


def test_encoding_reads_a_latin1_file_as_text(tmp_path):
    path = write(tmp_path, ("city,hour,TEMP,DEWP\n" + latin1_rows(300)).encode("latin-1"))
    schema = feeds.Schema(time="hour", key="city")
    chunks = read_all(path, block_size=256, encoding="latin-1", schema=schema)
    keys = feeds.concat(chunks).keys
    assert sorted(set(keys)) == ["Zürich0", "Zürich1"] and len(keys) == 300


def test_an_encoding_that_is_not_known_is_a_config_error(tmp_path):
    path = write(tmp_path, HEADER + raw_rows(4))
    assert "latin-9000" in error_of(path, feeds.ConfigError, encoding="latin-9000")


# -- files and folders that are not what the reader reads -------------------------------------


@pytest.mark.parametrize("reader", ["iter_csv", "iter_parquet", "iter_ipc"])
def test_a_folder_that_does_not_exist_says_so(tmp_path, reader):
    path = tmp_path / "nowhere" / "inputs"
    with pytest.raises(feeds.SchemaError, match="inputs.*does not exist"):
        list(getattr(feeds, reader)(path))


@pytest.mark.parametrize("reader", ["iter_csv", "iter_ipc"])
def test_a_folder_given_to_a_one_file_reader_says_it_is_a_folder(tmp_path, reader):
    with pytest.raises(feeds.SchemaError, match="is a folder"):
        list(getattr(feeds, reader)(tmp_path))


def test_an_empty_folder_holds_no_parquet_files(tmp_path):
    (tmp_path / "inputs").mkdir()
    with pytest.raises(feeds.SchemaError, match="inputs.*holds no Parquet files"):
        list(feeds.iter_parquet(tmp_path / "inputs"))


def test_duplicate_field_names_in_a_parquet_file_name_the_column(tmp_path):
    table = pa.Table.from_arrays(
        [pa.array(np.arange(10.0)), pa.array(np.ones(10)), pa.array(np.ones(10))],
        names=["time", "x2", "x2"],
    )
    pq.write_table(table, tmp_path / "dup.parquet")
    for path in (tmp_path / "dup.parquet", tmp_path):
        with pytest.raises(feeds.SchemaError) as exc:
            list(feeds.iter_parquet(path))
        assert "dup.parquet" in str(exc.value) and "'x2'" in str(exc.value), str(exc.value)


def damaged(tmp_path, checksums=False):
    """A Parquet file with random bytes written over values of column x2's data page."""
    rng = np.random.default_rng(0)
    n = 4000
    table = pa.table({"time": np.arange(n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    path = tmp_path / "damaged.parquet"
    pq.write_table(table, path, compression="none", write_page_checksum=checksums)
    data = bytearray(path.read_bytes())
    at = data.find(table.column("x2").to_numpy()[1000:1002].tobytes())
    assert at > 0
    data[at : at + 64] = np.random.default_rng(1).bytes(64)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("checksums", [False, True])
def test_random_bytes_in_a_parquet_page_say_the_file_is_damaged(tmp_path, checksums):
    with pytest.raises(feeds.SchemaError) as exc:
        list(feeds.iter_parquet(damaged(tmp_path, checksums), dtype="float64"))
    message = str(exc.value)
    assert "damaged.parquet" in message and "damaged" in message.replace("damaged.", ""), message


# -- a raw export: the time in parts, a text category, NA gaps, a float late ----------------------

EXPORT_HEADER = "No,year,month,day,hour,pm2.5,DEWP,TEMP,cbwd\n"


def export_rows(n, late=None):
    """Hourly rows from 2010-01-01 as a raw export writes them (gaps written NA)."""
    lines = []
    for i in range(n):
        day, hour = divmod(i, 24)
        pm = "NA" if i % 11 == 0 else str(40 + i % 50)
        wind = "NW" if i % 4 else "cv"
        line = f"{i + 1},2010,1,{day + 1},{hour},{pm},{i % 9 - 20},{i % 13 - 6},{wind}"
        lines.append((late or {}).get(i, line))
    return "".join(f"{line}\n" for line in lines)


def export_schema():
    return feeds.Schema(time=["year", "month", "day", "hour"], key=False, targets="pm2.5",
                        features=["pm2.5", "DEWP", "TEMP"], categorical=["cbwd"])  # fmt: skip


def test_a_raw_export_with_a_float_late_streams_to_the_end(tmp_path):
    late = {600: "601,2010,1,26,0,55,-3,14.66666667,NW"}
    path = write(tmp_path, EXPORT_HEADER + export_rows(700, late))
    chunks = read_all(path, block_size=1024, rows=100, schema=export_schema(), missing="mask")
    whole = read_all(path, block_size=1 << 20, rows=100, schema=export_schema(), missing="mask")
    got = feeds.concat(chunks)
    assert len(got) == 700 and got.equals(feeds.concat(whole))
    assert 14.66666667 in got.x[:, got.columns.index("TEMP")]


def test_a_time_part_that_turns_to_a_float_names_the_part_and_the_line(tmp_path):
    late = {600: "601,2010,1,26,0.5,55,-3,1,NW"}
    path = write(tmp_path, EXPORT_HEADER + export_rows(700, late))
    message = error_of(path, block_size=1024, schema=export_schema(), missing="mask")
    for part in ("raw.csv", f"line {line_of(600)}", "'hour'", "time part", "column_types"):
        assert part in message, message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "cp1252"])
def test_an_encoding_is_decoded_across_block_ends(tmp_path, encoding):
    text = "city,hour,TEMP,DEWP\n" + latin1_rows(300)
    path = write(tmp_path, text.encode(encoding))
    want = feeds.concat(read_all(write(tmp_path, text, "utf8.csv"), schema=feeds.Schema(
        time="hour", key="city")))  # fmt: skip
    for block_size in (1, 7, 256, 1 << 20):
        chunks = read_all(path, block_size=block_size, encoding=encoding,
                          schema=feeds.Schema(time="hour", key="city"))  # fmt: skip
        assert feeds.concat(chunks).equals(want), block_size


# -- the readers give what a schema of time parts and categories reads ----------------------------


def parts_frame(n=72):
    i = np.arange(n)
    return pd.DataFrame({"year": 2010, "month": 1, "day": 1 + i // 24, "hour": i % 24,
                         "pm2.5": 40.0 + i % 50, "cbwd": np.where(i % 4, "NW", "cv")})  # fmt: skip


def parts_schema():
    return feeds.Schema(time=["year", "month", "day", "hour"], key=False, categorical=["cbwd"])


def test_parquet_reads_the_time_parts_and_the_categorical_columns(tmp_path):
    df = parts_frame()
    df.to_parquet(tmp_path / "raw.parquet")
    want = feeds.concat(list(feeds.iter_pandas(df, schema=parts_schema())))
    got = feeds.concat(list(feeds.iter_parquet(tmp_path / "raw.parquet", schema=parts_schema())))
    assert got.equals(want) and len(got) == len(df)


def test_every_cuts_by_the_time_its_parts_make(tmp_path):
    chunks = list(feeds.iter_pandas(parts_frame(), every="1D", schema=parts_schema()))
    assert [len(c) for c in chunks] == [24, 24, 24]


def test_start_and_end_on_a_time_from_parts_is_a_config_error(tmp_path):
    parts_frame().to_parquet(tmp_path / "raw.parquet")
    with pytest.raises(feeds.ConfigError, match="parts"):
        list(feeds.iter_parquet(tmp_path / "raw.parquet", schema=parts_schema(),
                                start="2010-01-02"))  # fmt: skip


def test_a_categorical_column_of_categories_and_of_text_joins_into_one_chunk():
    df = parts_frame()
    first, second = df.iloc[:30].copy(), df.iloc[30:]
    first["cbwd"] = first["cbwd"].astype("category")
    chunks = list(feeds.iter_chunks([first, second], rows=50, schema=parts_schema()))
    want = feeds.concat(list(feeds.iter_pandas(df, rows=50, schema=parts_schema())))
    assert feeds.concat(chunks).equals(want)


# -- times written as text, gap markers, and what the messages suggest ------------------------
US_HEADER = "station,datetime,TEMP\n"


def us_rows(n, late=None):
    """Lines of station s0/s1 in turn, hourly times written 01/31/2010 23:00, a reading;
    ``late`` maps a row index to the line written in its place."""
    t = pd.Timestamp("2010-01-31 20:00")
    lines = [f"s{i % 2},{(t + pd.Timedelta(hours=i // 2)):%m/%d/%Y %H:%M},{i % 11}"
             for i in range(n)]  # fmt: skip
    return "".join(f"{(late or {}).get(i, line)}\n" for i, line in enumerate(lines))


def us_schema():
    return feeds.Schema(time="datetime", key="station")


def test_time_format_reads_times_written_as_text_in_every_block(tmp_path):
    n = 300
    path = write(tmp_path, US_HEADER + us_rows(n))
    chunks = read_all(path, block_size=512, schema=us_schema(), time_format="%m/%d/%Y %H:%M")
    times = np.concatenate([c.times for c in chunks])
    expected = pd.Timestamp("2010-01-31 20:00") + pd.to_timedelta(np.arange(n) // 2, "h")
    assert np.array_equal(times, expected.values)
    several = read_all(path, block_size=512, schema=us_schema(),
                       time_format=["%Y-%m-%d", "%m/%d/%Y %H:%M"])  # fmt: skip
    assert np.array_equal(np.concatenate([c.times for c in several]), times)


def test_a_time_in_another_format_later_names_the_line_and_time_format(tmp_path):
    path = write(tmp_path, US_HEADER + us_rows(300, {250: "s0,2010-02-06 23:00:00Z,1"}))
    message = error_of(path, block_size=512, schema=us_schema(), time_format="%m/%d/%Y %H:%M")
    for part in (f"line {line_of(250)}", "'datetime'", "time_format=['%m/%d/%Y %H:%M']"):
        assert part in message, message


@pytest.mark.parametrize("named", [True, False])
def test_a_time_column_of_text_says_so_and_suggests_time_format(tmp_path, named):
    path = write(tmp_path, US_HEADER + us_rows(40))
    schema = us_schema() if named else feeds.Schema(key="station")
    message = error_of(path, schema=schema)
    assert "'datetime' holds text such as '01/31/2010 20:00'" in message, message
    assert "time_format='%m/%d/%Y %H:%M'" in message, message


def test_a_declared_time_type_names_column_types_and_time_format(tmp_path):
    path = write(tmp_path, US_HEADER + us_rows(40))
    message = error_of(path, schema=us_schema(), column_types={"datetime": "timestamp[s]"})
    assert "declared for the column with column_types={'datetime': 'timestamp[s]'}" in message
    assert "time_format=" in message and "in column_types" not in message


def test_time_format_is_a_strptime_format():
    with pytest.raises(feeds.ConfigError, match="time_format 'mm/dd/yyyy' is not a strptime"):
        feeds.iter_csv("raw.csv", time_format="mm/dd/yyyy")


def test_na_values_read_gap_markers_as_missing_and_text_keys_keep_them(tmp_path):
    n, marks = 300, {3: "-", 7: "n/a", 120: "--", 260: "?"}
    late = {i: f"s{i % 2},{i // 2},{m},1,{m}" for i, m in marks.items()}
    late[11] = "-,5,1,1,NW"  # a station named '-': a text key is read as written
    path = write(tmp_path, HEADER + raw_rows(n, late))
    markers = ["-", "n/a", "--", "?"]
    schema = feeds.Schema(time="hour", key="station", features=["TEMP"])
    chunks = read_all(path, block_size=256, na_values=markers, missing="mask", schema=schema)
    whole = feeds.concat(chunks)
    missing = whole.x[:, whole.columns.index("TEMP_missing")]
    assert len(whole) == n
    assert np.flatnonzero(missing).tolist() == sorted(marks)
    assert list(whole.keys[[10, 11, 12]]) == ["s0", "-", "s0"]
    tables = feeds.tables.csv_tables(path, block_size=256, na_values=markers)
    cbwd = pa.concat_tables(list(tables)).column("cbwd").to_pylist()
    assert [cbwd[i] for i in sorted(marks)] == [marks[i] for i in sorted(marks)]  # text kept


@pytest.mark.parametrize("at", [4, 250])
def test_a_gap_marker_in_a_number_column_names_na_values(tmp_path, at):
    path = write(tmp_path, HEADER + raw_rows(300, {at: f"s0,{at // 2},-,1,NW"}))
    message = error_of(path, block_size=256)
    for part in (f"line {line_of(at)}", "'TEMP'", "'-' is not a number", "na_values=['-']"):
        assert part in message, message


@pytest.mark.parametrize(
    "columns, spec",
    [(["yr", "mo", "dy", "hr"], None), (["yr", "mo", "dy", "hr"], ["yr", "mo", "dy", "hr"]),
     (["a", "b", "c"], ["a", "b", "c"])],
)  # fmt: skip
def test_time_parts_under_other_names_are_suggested_as_part_column_pairs(columns, spec):
    table = pa.table({**{c: [v] for c, v in zip(columns, [2010, 1, 2, 3])}, "v": [1.0]})
    parts = ", ".join(f"{p!r}: {c!r}" for p, c in zip(("year", "month", "day", "hour"), columns))
    with pytest.raises(feeds.SchemaError) as exc:
        feeds.Schema(time=spec, key=False).bind(table)
    assert f"time={{{parts}}}" in str(exc.value), str(exc.value)
    assert "time=['year'" not in str(exc.value)
