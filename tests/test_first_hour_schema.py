"""feeds: a newcomer's own table (issue 13): keys never guessed silently, the time from its
parts, categorical inputs, input names known before a model is made, masks only where asked,
and a numeric column with a stray string refused with its value and row."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feeds
from feeds.datasets import load_seattle_weather, load_stocks, load_weather


def raw(n=12, seed=0):
    """Hourly rows as a raw export has them (the Beijing PM2.5 file's layout): a row
    number, the time split over year, month, day and hour, gaps as NaN and a text
    column for the wind direction."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2010-01-31 20:00", periods=n, freq="h")
    pm = rng.uniform(10, 200, n).round(1)
    pm[[1, 5]] = np.nan
    return pd.DataFrame({
        "No": np.arange(1, n + 1),
        "year": time.year, "month": time.month, "day": time.day, "hour": time.hour,
        "pm2.5": pm,
        "TEMP": rng.normal(0, 5, n).round(1),
        "cbwd": np.array(["NW", "cv", "NE", "SE"], dtype=object)[rng.integers(0, 4, n)],
    })  # fmt: skip


# -- keys ---------------------------------------------------------------------------------------


def test_a_text_column_is_not_taken_as_the_key():
    df = raw()
    with pytest.raises(feeds.SchemaError) as exc:
        feeds.Feed(feeds.Schema(time="No", targets="pm2.5"), missing=0.0)(df)
    message = str(exc.value)
    for choice in ("'cbwd'", "key='cbwd'", "key=False", "categorical=['cbwd']", "features="):
        assert choice in message
    assert not feeds.Feed(feeds.Schema(time="No", targets="pm2.5"), missing=0.0).bound


def test_the_choices_the_error_offers_work_without_a_warning():
    df = raw()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one = feeds.Feed(feeds.Schema(time="No", key=False, targets="pm2.5"), missing=0.0)(df)
        keyed = feeds.Feed(feeds.Schema(time="No", key="cbwd", targets="pm2.5"), missing=0.0)(df)
        named = feeds.Feed(feeds.Schema(time="No", features=["TEMP"]))(df)
    assert one.keys is None and "cbwd" not in one.columns
    assert set(keyed.keys) == set(df["cbwd"])
    assert named.keys is None and named.columns == ("TEMP",)


def test_a_column_named_as_a_key_is_inferred_with_a_warning_that_says_how_to_override():
    df = raw().assign(Station=["Dongsi"] * 6 + ["Tiantan"] * 6)
    feed = feeds.Feed(feeds.Schema(time="No", targets="pm2.5"), missing=0.0)
    with pytest.warns(feeds.KeyWarning) as caught:
        chunk = feed(df)
    assert len(caught) == 1
    message = str(caught[0].message)
    for words in ("'Station'", "key='Station'", "key=False", "['cbwd']"):
        assert words in message
    assert feed.schema.key == "Station" and set(chunk.keys) == {"Dongsi", "Tiantan"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feeds.Feed(feeds.Schema(time="No", key="Station", targets="pm2.5"), missing=0.0)(df)


def test_the_key_warning_names_the_line_that_called_into_the_packages():
    import streamrnn

    df = raw().assign(Station=["Dongsi"] * 6 + ["Tiantan"] * 6)
    schema = dict(time="No", targets="pm2.5", features=["TEMP"])
    with pytest.warns(feeds.KeyWarning) as direct:
        feeds.Feed(feeds.Schema(**schema), missing=0.0)(df)
    stream = streamrnn.Stream(
        streamrnn.GRU(hidden_size=4, seed=0),
        feed=feeds.Feed(feeds.Schema(**schema), missing=0.0),
    )
    with pytest.warns(feeds.KeyWarning) as through_a_stream:
        stream.update(df)  # the feed is called a few frames down
    for caught in (direct, through_a_stream):
        assert [w.filename for w in caught] == [__file__]


def test_an_integer_column_named_as_a_key_is_inferred_with_a_warning():
    df = pd.DataFrame({"time": [0, 0, 1, 1], "ID": [7, 8, 7, 8], "v": [1.0, 2.0, 3.0, 4.0]})
    with pytest.warns(feeds.KeyWarning, match="'ID'"):
        chunk = feeds.Feed()(df)
    assert chunk.keys.tolist() == [7, 8, 7, 8]


def test_two_columns_named_as_keys_are_an_error_naming_both():
    # text or integers: either could be the series id (a text one used to win silently)
    df = pd.DataFrame({"time": [0, 1], "city": ["a", "a"], "ID": [1, 1], "v": [1.0, 2]})
    with pytest.raises(feeds.SchemaError, match=r"\['city', 'ID'\].*Schema\(key=\.\.\.\)"):
        feeds.Feed()(df)


def test_named_features_ignore_other_text_but_still_infer_only_key_names():
    df = raw()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chunk = feeds.Feed(feeds.Schema(time="No", features=["TEMP", "pm2.5"]), missing=0.0)(df)
    assert chunk.keys is None
    with pytest.warns(feeds.KeyWarning, match="'city'"):
        chunk = feeds.Feed(feeds.Schema(time="No", features=["TEMP"]))(df.assign(city="x"))
    assert set(chunk.keys) == {"x"}


def test_a_key_column_that_is_not_text_is_refused_rather_than_read_as_one_series():
    # a CSV key column in another encoding can reach the feed as bytes
    table = pa.table({"city": pa.array([b"Z\xfcrich0", b"Z\xfcrich1"]), "time": [0, 1],
                      "v": [1.0, 2.0]})  # fmt: skip
    with pytest.raises(feeds.SchemaError, match=r"column 'city' holds data that is neither"):
        feeds.Feed()(table)
    assert feeds.Feed(feeds.Schema(key=False))(table).keys is None


def test_a_reader_that_binds_before_the_feed_warns_once():
    df = raw().assign(city="x")
    with pytest.warns(feeds.KeyWarning) as caught:
        list(feeds.iter_pandas(df, rows=5, schema=feeds.Schema(time="No", targets="pm2.5"),
                               missing=0.0))  # fmt: skip
    assert len(caught) == 1


def test_the_bundled_data_sets_keep_working():
    with pytest.warns(feeds.KeyWarning, match="'city'"):
        chunk = feeds.Feed()(load_weather().iloc[:100])
    assert set(chunk.keys) <= {"seattle", "san_francisco"}
    with pytest.warns(feeds.KeyWarning, match="'symbol'"):
        chunk = feeds.Feed()(load_stocks().iloc[:50])
    assert "AAPL" in set(chunk.keys)
    df = load_seattle_weather()
    with pytest.raises(feeds.SchemaError, match="column 'weather' holds text"):
        feeds.Feed()(df)
    assert feeds.Feed(feeds.Schema(key=False))(df).keys is None


# -- the time from its parts --------------------------------------------------------------------


def test_the_time_is_built_from_its_parts_which_are_not_features():
    df = raw()
    schema = feeds.Schema(time=["year", "month", "day", "hour"], key=False, targets="pm2.5")
    chunk = feeds.Feed(schema, missing=0.0, dtype="float64")(df)
    want = pd.to_datetime(df[["year", "month", "day", "hour"]]).to_numpy()
    np.testing.assert_array_equal(chunk.times, want)
    assert chunk.columns == ("No", "pm2.5", "TEMP")
    # the same as a timestamp column made beforehand
    made = df.drop(columns=["year", "month", "day", "hour"]).assign(time=want)
    ref = feeds.Feed(feeds.Schema(time="time", key=False, targets="pm2.5"), missing=0.0,
                     dtype="float64")(made)  # fmt: skip
    assert chunk.equals(ref)


def test_parts_are_found_by_name_in_any_case_and_plural_or_given_by_a_dict():
    df = raw().rename(columns={"year": "Years", "month": "MONTH", "day": "days"})
    by_name = feeds.Schema(time=["days", "MONTH", "Years", "hour"], key=False)
    assert by_name.time == ("Years", "MONTH", "days", "hour")
    as_dict = feeds.Schema(time={"year": "Years", "month": "MONTH", "day": "days",
                                 "hour": "hour"}, key=False)  # fmt: skip
    assert as_dict == by_name
    a = feeds.Feed(by_name, missing=0.0)(df)
    b = feeds.Feed(as_dict, missing=0.0)(df)
    assert a.equals(b) and a.times[0] == np.datetime64("2010-01-31T20:00")
    assert by_name.time_parts == {"year": "Years", "month": "MONTH", "day": "days",
                                  "hour": "hour"}  # fmt: skip


def test_parts_are_inferred_when_there_is_no_time_column():
    df = raw().drop(columns=["No"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feed = feeds.Feed(feeds.Schema(key=False, targets="pm2.5"), missing=0.0)
        chunk = feed(df)
    assert feed.schema.time == ("year", "month", "day", "hour")
    assert feed.schema.time_name == "time"
    assert chunk.columns == ("pm2.5", "TEMP")
    assert chunk.times[-1] == np.datetime64("2010-02-01T07:00")


@pytest.mark.parametrize(
    "time, match",
    [
        (["year", "month"], "needs year, month and day columns"),
        (["year", "month", "day", "hr"], r"column 'hr'.*time=\{'year'"),
        (["year", "month", "day", "minute"], "with a minute needs an hour"),
        (["year", "Year", "month", "day"], "two year columns"),
        ({"year": "year", "month": "month", "week": "day"}, "names the part 'week'"),
    ],
)
def test_wrong_parts_are_refused_with_what_is_accepted(time, match):
    with pytest.raises(feeds.SchemaError, match=match):
        feeds.Schema(time=time)


@pytest.mark.parametrize(
    "column, row, value, error, match",
    [
        ("month", 3, 13, feeds.SchemaError, "month 13 is not in 1 to 12"),
        ("day", 4, 29, feeds.SchemaError, r"day 29 is not a day of 2010-02 \(1 to 28\)"),
        ("hour", 2, 24, feeds.SchemaError, "hour 24 is not in 0 to 23"),
        ("year", 1, 1500, feeds.SchemaError, "year 1500 is outside the years 1678 to 2262"),
        ("hour", 5, 2.5, feeds.SchemaError, "'hour' .* holds 2.5 at row 5; .* whole numbers"),
        ("day", 6, None, feeds.MissingValueError, "'day' .* is null at row 6"),
    ],
)
def test_a_part_out_of_range_or_missing_is_a_typed_error_naming_the_row(
    column, row, value, error, match
):
    df = raw()
    df[column] = df[column].astype(float if value is None or value == 2.5 else df[column].dtype)
    df.loc[row, column] = np.nan if value is None else value
    if column == "day":
        df.loc[:, "month"] = 2
        df.loc[:, "day"] = df["day"].where(df.index == row, 1)
    schema = feeds.Schema(time=["year", "month", "day", "hour"], key=False)
    with pytest.raises(error, match=match) as exc:
        feeds.Feed(schema, missing=0.0)(df)
    assert f"row {row}" in str(exc.value)
    if error is feeds.SchemaError and value != 2.5:
        assert "year=" in str(exc.value) and "hour=" in str(exc.value)


def test_a_bad_part_in_a_later_chunk_names_its_row_in_the_stream():
    df = raw(30)
    df.loc[25, "month"] = 0
    feed = feeds.Feed(feeds.Schema(time=["year", "month", "day", "hour"], key=False),
                      missing=0.0)  # fmt: skip
    feed(df.iloc[:20])
    with pytest.raises(feeds.SchemaError, match=r"row 5 \(row 25 of the stream\)"):
        feed(df.iloc[20:])


def test_text_parts_are_refused_when_the_schema_binds():
    df = raw().assign(month=lambda d: d["month"].astype(str))
    with pytest.raises(feeds.SchemaError, match="time part column 'month'.*whole numbers"):
        feeds.Feed(feeds.Schema(time=["year", "month", "day"], key=False))(df)


@pytest.mark.filterwarnings("ignore::feeds.CategoryWarning")  # 3 slots for 4 categories
def test_a_schema_with_parts_survives_pickling_and_compares_equal():
    df = raw(30)
    schema = feeds.Schema(time=["year", "month", "day", "hour"], key=False, targets="pm2.5",
                          categorical={"cbwd": 3})  # fmt: skip
    assert pickle.loads(pickle.dumps(schema)) == schema
    assert schema != feeds.Schema(time=["year", "month", "day"], key=False, targets="pm2.5",
                                  categorical={"cbwd": 3})  # fmt: skip
    options = dict(missing=0.0, calendar=["hour_of_day"], dtype="float64")
    straight = feeds.Feed(schema, **options)
    want = feeds.concat([straight(df.iloc[:10]), straight(df.iloc[10:])])
    feed = feeds.Feed(schema, **options)
    first = feed(df.iloc[:10])
    resumed = pickle.loads(pickle.dumps(feed))
    assert resumed.schema == feed.schema and resumed.schema.bound
    assert feeds.concat([first, resumed(df.iloc[10:])]).equals(want)
    assert resumed.categories == straight.categories


# -- categorical inputs ----------------------------------------------------------------------


def test_declared_categories_are_one_hot_inputs_named_after_them():
    df = raw()
    df.loc[2, "cbwd"] = None
    df.loc[3, "cbwd"] = "NNE"  # not declared
    schema = feeds.Schema(time="No", key=False, features=["TEMP"],
                          categorical={"cbwd": ["NE", "NW", "SE", "cv"]})  # fmt: skip
    feed = feeds.Feed(schema, scale="global")
    chunk = feed(df)
    assert chunk.columns == ("TEMP", "cbwd=NE", "cbwd=NW", "cbwd=SE", "cbwd=cv")
    want = np.zeros((len(df), 4), np.float32)
    for r, v in enumerate(df["cbwd"]):
        if v in ("NE", "NW", "SE", "cv"):
            want[r, ["NE", "NW", "SE", "cv"].index(v)] = 1.0
    np.testing.assert_array_equal(chunk.x[:, 1:], want)  # not scaled
    assert feed.counts["missing"] == {"cbwd": 1}
    assert feed.counts["unknown_categories"] == {"cbwd": 1}
    assert chunk.counts["unknown_categories"] == {"cbwd": 1}


def test_a_grown_list_gives_slots_in_order_of_first_appearance_and_warns_once_when_full():
    df = pd.DataFrame({"time": np.arange(8), "v": np.arange(8.0),
                       "wind": ["cv", "NW", "cv", "SE", "NE", "NW", "XX", "NE"]})  # fmt: skip
    feed = feeds.Feed(feeds.Schema(key=False, categorical={"wind": 3}))
    with pytest.warns(feeds.CategoryWarning, match=r"'wind'.*3 slots") as caught:
        first = feed(df.iloc[:5])
        second = feed(df.iloc[5:])
    assert len(caught) == 1
    assert feed.categories == {"wind": ("cv", "NW", "SE")}
    assert first.columns == ("v", "wind[0]", "wind[1]", "wind[2]")
    x = np.concatenate([first.x, second.x])[:, 1:]
    slots = [0, 1, 0, 2, None, 1, None, None]
    for r, k in enumerate(slots):
        assert x[r].tolist() == [float(k == j) for j in range(3)]
    assert feed.counts["unknown_categories"] == {"wind": 3}


def test_a_list_of_names_grows_each_list_to_the_default_width_and_integers_are_categories():
    df = pd.DataFrame({"time": [0, 1, 2], "station": [3, 1, 3], "v": [1.0, 2.0, 3.0]})
    feed = feeds.Feed(feeds.Schema(key=False, categorical=["station"]))
    chunk = feed(df)
    assert feed.categories == {"station": (3, 1)}
    assert feed.input_size == 1 + feeds.schema.CATEGORIES
    assert chunk.x[:, 1:3].tolist() == [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    declared = feeds.Feed(feeds.Schema(key=False, categorical={"station": [1, 2, 3]}))
    assert declared(df).columns == ("v", "station=1", "station=2", "station=3")


def test_a_text_feature_points_to_categorical():
    df = raw()
    with pytest.raises(feeds.SchemaError, match=r"'cbwd' is \w*string.*categorical=\['cbwd'\]"):
        feeds.Feed(feeds.Schema(time="No", key=False, features=["TEMP", "cbwd"]))(df)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(features=["cbwd"], categorical="cbwd"), feeds.ConfigError, "'cbwd' is categorical"),
        (dict(key="cbwd", categorical="cbwd"), feeds.ConfigError, "both the key and categorical"),
        (dict(categorical={"cbwd": 0}), feeds.SchemaError, "give 1 or more"),
        (dict(categorical={"cbwd": ["a", "a"]}), feeds.SchemaError, "'a' twice"),
        (dict(categorical={"cbwd": ["a", 1]}), feeds.SchemaError, "all strings or all integers"),
        (dict(categorical=5), feeds.SchemaError, "categorical must be"),
    ],
)
def test_wrong_categorical_settings_are_refused(kwargs, error, match):
    with pytest.raises(error, match=match):
        feeds.Schema(time="No", **kwargs)


def test_categories_must_match_the_column():
    df = raw()
    with pytest.raises(feeds.SchemaError, match="holds strings, but its declared categories"):
        feeds.Feed(feeds.Schema(time="No", key=False, categorical={"cbwd": [1, 2]}))(df)
    with pytest.raises(feeds.SchemaError, match="categorical column 'TEMP' is double.*Int64"):
        feeds.Feed(feeds.Schema(time="No", key=False, categorical="TEMP"))(df)
    with pytest.raises(feeds.ConfigError, match="'cbwd', which is a categorical column"):
        schema = feeds.Schema(time="No", key=False, categorical="cbwd")
        feeds.Feed(schema, missing={"cbwd": 0.0})(df)


def test_one_hot_columns_go_after_the_lags_and_before_the_masks():
    df = raw()
    schema = feeds.Schema(time=["year", "month", "day", "hour"], key=False, targets="pm2.5",
                          categorical={"cbwd": ["NE", "cv"]})  # fmt: skip
    feed = feeds.Feed(schema, missing="mask", time_delta=True, calendar=["hour_of_day"], lags=1)
    assert feed(df).columns == (
        "No", "pm2.5", "TEMP", "dt", "hour_of_day_sin", "hour_of_day_cos", "pm2.5_lag1",
        "cbwd=NE", "cbwd=cv", "No_missing", "pm2.5_missing", "TEMP_missing",
    )  # fmt: skip


def test_a_feed_pickled_before_time_parts_and_categories_resumes():
    df = raw(30)
    schema = dict(time="No", key=False, targets="pm2.5")
    straight = feeds.Feed(feeds.Schema(**schema), missing=0.0)
    straight(df.iloc[:15])
    want = straight(df.iloc[15:])
    feed = feeds.Feed(feeds.Schema(**schema), missing=0.0)
    feed(df.iloc[:15])
    for name in ("_cat", "_cats", "_cat_full", "_onehot_names"):
        del feed.__dict__[name]
    for name in ("_time_parts", "categorical", "_announced"):
        del feed.schema.__dict__[name]
    old = pickle.loads(pickle.dumps(feed))
    assert old.categories == {} and old.schema.time_parts is None
    assert old(df.iloc[15:]).equals(want)


def frame(n, seed):
    """Rows of three sensors with the time in parts (to the minute), a category with
    nulls and more values than some widths, and features with gaps."""
    rng = np.random.default_rng(seed)
    sensor = np.array(["s0", "s1", "s2"], dtype=object)[rng.integers(0, 3, n)]
    ticks = np.cumsum(rng.integers(0, 50, n))  # repeated times within a key happen
    time = pd.Timestamp("2024-02-28 22:00") + pd.to_timedelta(ticks, "min")
    wind = np.array(["N", "S", "E", "W", "cv", None], dtype=object)[rng.integers(0, 6, n)]
    a = rng.normal(size=n)
    a[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame({
        "sensor": sensor, "year": time.year, "month": time.month, "day": time.day,
        "hour": time.hour, "minute": time.minute, "a": a, "b": rng.normal(size=n), "wind": wind,
    })  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(
    cuts=st.lists(st.integers(0, 150), max_size=8),
    grid=st.sampled_from([None, "1h"]),
    spec=st.sampled_from([2, 4, 16, ("S", "N", "W")]),
    seed=st.integers(0, 3),
)
def test_cutting_anywhere_changes_no_categorical_input(cuts, grid, spec, seed):
    df = frame(150, seed)
    schema = feeds.Schema(
        time=["year", "month", "day", "hour", "minute"],
        key="sensor",
        features=["a", "b"],
        targets="a",
        categorical={"wind": list(spec) if isinstance(spec, tuple) else spec},
    )
    options = dict(missing={"a": "mask", "*": ("ffill", 0.0)}, grid=grid, scale="per_key",
                   dtype="float64", late="drop", time_delta=True, lags=2)  # fmt: skip
    options["duplicates"] = "first" if grid else "last"
    edges = [0, *sorted(set(c % 151 for c in cuts)), 150]

    def run(parts):
        feed = feeds.Feed(schema, **options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", feeds.CategoryWarning)
            chunks = [feed(p) for p in parts] + [feed.flush()]
        return feeds.concat(chunks), feed

    whole, feed = run([df])
    cut, feed_cut = run([df.iloc[a:b] for a, b in zip(edges[:-1], edges[1:])])
    assert cut.equals(whole)
    assert feed_cut.categories == feed.categories
    assert feed_cut.counts == feed.counts
    onehot = whole.x[:, [j for j, c in enumerate(whole.columns) if c.startswith("wind")]]
    assert ((onehot >= 0) & (onehot <= 1)).all()
    if grid is None:  # one row each: one slot or none
        assert set(onehot.sum(axis=1)) <= {0.0, 1.0}


# -- input and output names, binding from a peek, masks -------------------------------------


def test_a_feed_reports_its_input_and_output_names_once_bound_from_a_peek():
    df = raw()
    feed = feeds.Feed(feeds.Schema(time=["year", "month", "day", "hour"], key=False,
                                   targets="pm2.5", categorical={"cbwd": ["NE", "NW"]}),
                      missing={"pm2.5": "mask", "*": "ffill"})  # fmt: skip
    with pytest.raises(feeds.SchemaError, match=r"feed\.bind"):
        _ = feed.input_names
    assert feed.bind(df) is feed and feed.bound
    assert feed.input_names == ("No", "pm2.5", "TEMP", "cbwd=NE", "cbwd=NW", "pm2.5_missing")
    assert feed.output_names == ("pm2.5",)
    assert (feed.input_size, feed.output_size) == (6, 1)
    assert feed.schema.source_columns == ("year", "month", "day", "hour", "No", "pm2.5", "TEMP",
                                          "cbwd")  # fmt: skip
    assert feed.counts["rows_in"] == 0
    fresh = feeds.Feed(feed.schema.__class__(time=["year", "month", "day", "hour"], key=False,
                                             targets="pm2.5",
                                             categorical={"cbwd": ["NE", "NW"]}),
                       missing={"pm2.5": "mask", "*": "ffill"})  # fmt: skip
    assert feed(df).equals(fresh(df))  # the peek was not consumed


def test_a_feed_binds_from_an_arrow_schema_alone():
    table = pa.table(raw())
    feed = feeds.Feed(feeds.Schema(time="No", key=False, categorical={"cbwd": 2}), missing=0.0)
    feed.bind(table.schema)
    assert feed.input_names == ("year", "month", "day", "hour", "pm2.5", "TEMP", "cbwd[0]",
                                "cbwd[1]")  # fmt: skip
    with pytest.raises(feeds.ConfigError, match="calendar='auto'.*Arrow schema"):
        feeds.Feed(feeds.Schema(time="No", key=False), calendar="auto").bind(table.schema)
    with pytest.raises(feeds.SchemaError, match="column 'cbwd' is missing"):
        feed.bind(table.drop_columns(["cbwd"]))


def test_masks_only_for_the_columns_whose_policy_is_mask_with_a_default_for_the_rest():
    df = raw()
    schema = feeds.Schema(time="No", key=False, targets="pm2.5", categorical="cbwd")
    feed = feeds.Feed(schema, missing={"pm2.5": "mask", "*": "ffill"})
    chunk = feed(df)
    masks = [c for c in chunk.columns if c.endswith("_missing")]
    assert masks == ["pm2.5_missing"]
    assert chunk.x[:, chunk.columns.index("pm2.5_missing")].tolist() == [
        float(v) for v in df["pm2.5"].isna()
    ]
    every = feeds.Feed(schema, missing="mask")(df)  # one policy: a mask for every feature
    assert [c for c in every.columns if c.endswith("_missing")] == [
        "year_missing", "month_missing", "day_missing", "hour_missing", "pm2.5_missing",
        "TEMP_missing",
    ]  # fmt: skip
    with pytest.raises(feeds.MissingValueError, match="'pm2.5'"):  # the default default
        feeds.Feed(schema, missing={"TEMP": "mask"})(df)
    with pytest.raises(feeds.ConfigError, match=r"default missing-value policy \('\*'\)"):
        feeds.Feed(schema, missing={"*": "sometimes"})


# -- a numeric column with a stray string ---------------------------------------------------


def stray(df, row=7):
    df = df.assign(TEMP=df["TEMP"].astype(str))
    df.loc[row, "TEMP"] = "abc"
    df.loc[3, "TEMP"] = "NA"
    return df


@pytest.mark.parametrize(
    "schema",
    [
        dict(time="No", targets="pm2.5"),  # no key named: the text column is refused
        dict(time="No", key=False, targets="pm2.5"),  # key named: was silently left out
        dict(time="No", key=False, categorical="cbwd"),
    ],
)
def test_a_numeric_column_with_a_stray_string_is_refused_with_the_value_and_row(schema):
    df = stray(raw())
    with pytest.raises(feeds.SchemaError) as exc:
        feeds.Feed(feeds.Schema(**schema), missing=0.0)(df)
    message = str(exc.value)
    for words in ("column 'TEMP'", "'abc'", "row 7", "column_types", "features="):
        assert words in message


def test_a_stray_string_in_a_named_feature_says_so_too():
    df = stray(raw())
    with pytest.raises(feeds.SchemaError, match=r"'TEMP' holds text such as 'abc' at row 7"):
        feeds.Feed(feeds.Schema(time="No", key=False, features=["TEMP"]))(df)


def test_a_stray_string_in_a_csv_file_is_refused(tmp_path):
    path = tmp_path / "raw.csv"
    df = raw(40)
    df["TEMP"] = df["TEMP"].astype(object)
    df.loc[11, "TEMP"] = "-"  # a placeholder typed by hand
    df.to_csv(path, index=False, na_rep="NA")
    schema = feeds.Schema(time=["year", "month", "day", "hour"], key=False, targets="pm2.5")
    with pytest.raises(feeds.SchemaError, match="'TEMP'") as exc:  # the reader or the schema
        list(feeds.iter_csv(path, schema=schema, missing=0.0))
    assert "'-'" in str(exc.value)


def test_a_raw_csv_streams_with_its_time_parts_and_categories(tmp_path):
    path = tmp_path / "raw.csv"
    df = raw(40)
    df.to_csv(path, index=False, na_rep="NA")
    schema = feeds.Schema(time=["year", "month", "day", "hour"], key=False, targets="pm2.5",
                          categorical={"cbwd": ["NE", "NW", "SE", "cv"]})  # fmt: skip
    options = dict(missing={"pm2.5": "mask", "*": "ffill"}, dtype="float64")
    got = feeds.concat(feeds.iter_csv(path, schema=schema, rows=9, **options))
    want = feeds.Feed(schema, **options)(df)
    assert got.equals(want)
