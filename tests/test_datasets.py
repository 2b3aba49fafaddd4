import warnings

import numpy as np
import pandas as pd
import pytest

import feeds
from feeds import datasets
from feeds.datasets import (
    load_brent,
    load_fulda,
    load_glucose,
    load_seattle_weather,
    load_stocks,
    load_weather,
)

STR = pd.StringDtype("pyarrow", na_value=np.nan)
NS = np.dtype("datetime64[ns]")
F64 = np.dtype("float64")

LOADERS = [load_weather, load_stocks, load_seattle_weather, load_glucose, load_fulda, load_brent]
SCHEMAS = {
    load_weather: {"city": STR, "time": NS, "temperature": F64},
    load_stocks: {"symbol": STR, "date": NS, "price": F64},
    load_seattle_weather: {
        "date": NS,
        "precipitation": F64,
        "temp_max": F64,
        "temp_min": F64,
        "wind": F64,
        "weather": STR,
    },
    load_glucose: {"time": NS, "glucose": F64, "isig": F64},
    load_fulda: {
        "date": NS,
        "tmax": F64,
        "tmin": F64,
        "tmean": F64,
        "precipitation": F64,
        "discharge": F64,
    },
    load_brent: {"date": NS, "price": F64},
}
ROWS = {
    load_weather: 17518,
    load_stocks: 560,
    load_seattle_weather: 1461,
    load_glucose: 17710,
    load_fulda: 3653,
    load_brent: 8195,
}


@pytest.fixture(scope="module")
def weather():
    return load_weather()


@pytest.fixture(scope="module")
def stocks():
    return load_stocks()


@pytest.fixture(scope="module")
def seattle():
    return load_seattle_weather()


@pytest.fixture(scope="module")
def glucose():
    return load_glucose()


@pytest.fixture(scope="module")
def fulda():
    return load_fulda()


@pytest.fixture(scope="module")
def brent():
    return load_brent()


def test_all_lists_the_loaders():
    assert datasets.__all__ == [
        "load_brent",
        "load_fulda",
        "load_glucose",
        "load_seattle_weather",
        "load_stocks",
        "load_weather",
        "seattle_weather_csv",
    ]
    for name in datasets.__all__:
        assert f":func:`{name}`" in datasets.__doc__


def test_data_files_are_small_and_documented():
    sources = (datasets.DATA_DIR / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(datasets.DATA_DIR.glob("*.parquet"))
    assert len(files) == len(LOADERS)
    for path in files:
        assert path.stat().st_size < 100_000, path.name
        assert f"## {path.name}" in sources
        assert f"| `{path.name}`" in sources


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_schema_rows_and_index(loader):
    df = loader()
    assert list(df.columns) == list(SCHEMAS[loader])
    assert df.columns.dtype == STR
    assert dict(df.dtypes) == SCHEMAS[loader]
    assert len(df) == ROWS[loader]
    assert isinstance(df.index, pd.RangeIndex)
    assert df.index.equals(pd.RangeIndex(ROWS[loader]))
    assert not df.isna().any().any()
    for col, dtype in SCHEMAS[loader].items():
        if dtype == NS:
            assert df[col].dt.tz is None


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_loads_are_equal_and_independent(loader):
    first = loader()
    second = loader()
    pd.testing.assert_frame_equal(first, second)
    reference = loader()
    for col, dtype in SCHEMAS[loader].items():
        if dtype == F64:
            first.loc[0, col] = -1.0e9
            first[col] *= 2.0
        elif dtype == STR:
            first.loc[0, col] = "changed"
        else:
            first.loc[0, col] = pd.Timestamp("1970-01-01")
    first["extra"] = 0.0
    pd.testing.assert_frame_equal(loader(), reference)
    pd.testing.assert_frame_equal(second, reference)


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__name__)
def test_dtypes_do_not_follow_pandas_options(loader):
    expected = loader()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pd.option_context("future.infer_string", False, "mode.string_storage", "python"):
            df = loader()
    pd.testing.assert_frame_equal(df, expected)
    assert dict(df.dtypes) == SCHEMAS[loader]


# weather: hourly temperature, Seattle and San Francisco, 2010


def test_weather_order_and_keys(weather):
    assert set(weather["city"]) == {"seattle", "san_francisco"}
    assert weather["time"].is_monotonic_increasing
    ordered = weather.sort_values(["time", "city"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(weather, ordered)
    assert not weather.duplicated(["city", "time"]).any()
    assert weather.groupby("city").size().to_dict() == {"san_francisco": 8759, "seattle": 8759}
    # both cities at every hour, San Francisco first
    assert (weather["city"].iloc[0::2] == "san_francisco").all()
    assert (weather["city"].iloc[1::2] == "seattle").all()
    assert (weather["time"].iloc[0::2].to_numpy() == weather["time"].iloc[1::2].to_numpy()).all()


def test_weather_span_and_clock(weather):
    assert weather["time"].min() == pd.Timestamp("2010-01-01 00:00")
    assert weather["time"].max() == pd.Timestamp("2010-12-31 23:00")
    assert (weather["time"] == weather["time"].dt.floor("h")).all()


def test_weather_missing_hour_is_spring_forward(weather):
    year = pd.date_range("2010-01-01", "2010-12-31 23:00", freq="h")
    assert len(year) == 8760
    for _city, group in weather.groupby("city"):
        times = pd.DatetimeIndex(group["time"])
        assert list(year.difference(times)) == [pd.Timestamp("2010-03-14 03:00")]
        assert times.difference(year).empty
        steps = times.to_series().diff().dropna().value_counts()
        assert steps.to_dict() == {pd.Timedelta(hours=1): 8757, pd.Timedelta(hours=2): 1}
        assert (times == pd.Timestamp("2010-03-14 02:00")).sum() == 1
        assert (times == pd.Timestamp("2010-11-07 01:00")).sum() == 1


def test_weather_times_are_local_clock_and_naive(weather):
    times = weather["time"].drop_duplicates()
    with pytest.raises(ValueError):
        times.dt.tz_localize("America/Los_Angeles", nonexistent="raise", ambiguous="NaT")
    with pytest.raises(ValueError):
        times.dt.tz_localize("America/Los_Angeles", nonexistent="NaT", ambiguous="raise")


def test_weather_values_plausible(weather):
    temp = weather["temperature"]
    assert temp.between(30.0, 80.0).all()
    np.testing.assert_allclose(temp * 10, np.round(temp * 10), atol=1e-9)
    by_city = weather.groupby("city")["temperature"].agg(["min", "max"])
    assert by_city.loc["seattle"].tolist() == [37.5, 75.9]
    assert by_city.loc["san_francisco"].tolist() == [45.6, 72.2]
    first = weather.iloc[:2].set_index("city")["temperature"].to_dict()
    assert first == {"san_francisco": 47.8, "seattle": 39.4}


def test_weather_is_smooth_as_documented(weather):
    for city, limit in [("seattle", 0.47), ("san_francisco", 0.30)]:
        series = weather[weather["city"] == city].set_index("time")["temperature"]
        hourly_step = series.diff().abs().max()
        daily_step = series.resample("D").mean().diff().abs().max()
        assert 0 < hourly_step < 4.0
        assert daily_step == pytest.approx(limit, abs=0.005)


# stocks: monthly prices, 2000-01 to 2010-03


def test_stocks_order_and_keys(stocks):
    assert set(stocks["symbol"]) == {"AAPL", "AMZN", "GOOG", "IBM", "MSFT"}
    assert stocks["date"].is_monotonic_increasing
    ordered = stocks.sort_values(["date", "symbol"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(stocks, ordered)
    assert not stocks.duplicated(["symbol", "date"]).any()


def test_stocks_are_monthly_without_gaps(stocks):
    assert (stocks["date"].dt.day == 1).all()
    assert (stocks["date"] == stocks["date"].dt.normalize()).all()
    starts = {"AAPL": "2000-01", "AMZN": "2000-01", "GOOG": "2004-08", "IBM": "2000-01"}
    starts["MSFT"] = "2000-01"
    for symbol, group in stocks.groupby("symbol"):
        months = pd.date_range(starts[symbol], "2010-03", freq="MS")
        assert pd.DatetimeIndex(group["date"]).equals(months), symbol
    assert stocks.groupby("symbol").size().to_dict() == {
        "AAPL": 123,
        "AMZN": 123,
        "GOOG": 68,
        "IBM": 123,
        "MSFT": 123,
    }


def test_stocks_dates_are_month_labels_not_trading_days(stocks):
    dates = stocks["date"].drop_duplicates()
    assert len(dates) == 123
    assert (dates.dt.day_of_week >= 5).sum() == 36
    assert dates.iloc[0] == pd.Timestamp("2000-01-01")
    assert dates.iloc[0].day_name() == "Saturday"


def test_stocks_values_plausible(stocks):
    price = stocks["price"]
    assert (price > 1.0).all()
    assert (price < 1000.0).all()
    np.testing.assert_allclose(price * 100, np.round(price * 100), atol=1e-6)
    wide = stocks.pivot(index="date", columns="symbol", values="price")
    assert wide.loc["2000-01-01", "MSFT"] == 39.81
    assert wide.loc["2010-03-01", "AAPL"] == 223.02


def test_stocks_show_no_split_halving(stocks):
    wide = stocks.pivot(index="date", columns="symbol", values="price")
    for symbol, before, after in [("MSFT", "2003-02", "2003-03"), ("AAPL", "2005-02", "2005-03")]:
        ratio = wide.loc[f"{after}-01", symbol] / wide.loc[f"{before}-01", symbol]
        assert 0.8 < ratio < 1.25


# seattle_weather: daily, 2012 to 2015


def test_seattle_weather_is_one_complete_daily_series(seattle):
    days = pd.date_range("2012-01-01", "2015-12-31", freq="D")
    assert pd.DatetimeIndex(seattle["date"]).equals(days)


def test_seattle_weather_values_plausible(seattle):
    assert seattle["precipitation"].between(0.0, 100.0).all()
    assert seattle["temp_max"].between(-10.0, 40.0).all()
    assert seattle["temp_min"].between(-15.0, 25.0).all()
    assert seattle["wind"].between(0.0, 15.0).all()
    assert (seattle["temp_max"] > seattle["temp_min"]).all()
    ranges = seattle[["precipitation", "temp_max", "temp_min", "wind"]].agg(["min", "max"])
    assert ranges.to_dict("list") == {
        "precipitation": [0.0, 55.9],
        "temp_max": [-1.6, 35.6],
        "temp_min": [-7.1, 18.3],
        "wind": [0.4, 9.5],
    }
    for col in ["precipitation", "temp_max", "temp_min", "wind"]:
        values = seattle[col].to_numpy()
        np.testing.assert_allclose(values * 10, np.round(values * 10), atol=1e-9)


def test_seattle_weather_labels_as_recorded(seattle):
    assert seattle["weather"].value_counts().to_dict() == {
        "sun": 714,
        "fog": 411,
        "rain": 259,
        "drizzle": 54,
        "snow": 23,
    }
    wet = seattle["precipitation"] > 0
    assert (wet & (seattle["weather"] == "sun")).sum() == 77
    assert (~wet & (seattle["weather"] == "rain")).sum() == 47
    wettest = seattle.loc[seattle["precipitation"].idxmax()]
    assert wettest["date"] == pd.Timestamp("2015-03-15")
    assert wettest["weather"] == "fog"
    counts = pd.crosstab(seattle["date"].dt.year, seattle["weather"])
    assert counts.loc[2012, "rain"] == 191
    assert counts.loc[2014, "rain"] == 3
    assert counts.loc[2012, "fog"] == 5
    assert counts.loc[2014, "fog"] == 151


# glucose: continuous glucose monitor, 2010-03-24 to 2010-05-31


def test_glucose_span_and_clock(glucose):
    times = glucose["time"]
    assert times.iloc[0] == pd.Timestamp("2010-03-24 09:51")
    assert times.iloc[-1] == pd.Timestamp("2010-05-31 23:55")
    assert times.is_monotonic_increasing
    assert (times == times.dt.floor("min")).all()


def test_glucose_gaps_as_documented(glucose):
    steps = glucose["time"].diff().dropna()
    gaps = steps[steps > pd.Timedelta(minutes=5)]
    assert len(gaps) == 59
    assert gaps.sum() == pd.Timedelta(days=7, hours=23, minutes=35)
    assert gaps.max() == pd.Timedelta(hours=17, minutes=59)
    assert glucose["time"][gaps.idxmax()] == pd.Timestamp("2010-04-25 18:35")
    assert (steps == pd.Timedelta(minutes=5)).sum() == 17257
    assert (steps < pd.Timedelta(minutes=5)).sum() == 393


def test_glucose_repeated_time_is_kept(glucose):
    repeated = glucose[glucose["time"].duplicated(keep=False)]
    assert repeated["time"].tolist() == [pd.Timestamp("2010-05-20 03:21")] * 2
    assert repeated["glucose"].tolist() == [122.0, 124.0]
    assert repeated["isig"].tolist() == [15.94, 16.14]


def test_glucose_paired_readings(glucose):
    steps = glucose["time"].diff()
    second = np.flatnonzero(steps == pd.Timedelta(minutes=1))
    assert len(second) == 194
    assert glucose["time"][second[0] - 1] == pd.Timestamp("2010-05-28 22:03")
    assert glucose["time"][second[-1]] == pd.Timestamp("2010-05-29 14:09")
    isig = glucose["isig"].to_numpy()
    level = glucose["glucose"].to_numpy()
    assert np.abs(isig[second] - isig[second - 1]).max() <= 0.01 + 1e-9
    assert np.abs(level[second] - level[second - 1]).max() == 16.0
    # outside the stretch of pairs, no two readings are closer than three minutes
    outside = (glucose["time"] < pd.Timestamp("2010-05-28 22:03")) | (
        glucose["time"] > pd.Timestamp("2010-05-29 14:09")
    )
    close = steps[outside] < pd.Timedelta(minutes=3)
    assert close.sum() == 1  # the repeated time


def test_glucose_values_plausible(glucose):
    level = glucose["glucose"]
    assert (level == np.round(level)).all()
    assert level.min() == 40.0
    assert level.max() == 389.0
    assert (level == 40.0).sum() == 16
    isig = glucose["isig"]
    assert isig.between(3.88, 47.32).all()
    np.testing.assert_allclose(isig * 100, np.round(isig * 100), atol=1e-6)


def test_glucose_streams_on_a_five_minute_grid(glucose):
    schema = feeds.Schema(key=False, targets="glucose")
    feed = feeds.Feed(schema, grid="5min", duplicates="first", missing="mask")
    chunks = [feed(glucose), feed.flush()]
    assert sum(len(c) for c in chunks) == 19754
    assert feed.counts["empty_bins"] == 2240
    assert feed.counts["merged"] == 195
    assert feed.counts["duplicates_dropped"] == 1
    assert feed.counts["missing"] == {"glucose": 2240, "isig": 2240}
    first = chunks[0]
    assert first.keys is None
    assert first.columns == ("glucose", "isig", "glucose_missing", "isig_missing")
    assert np.isnan(first.y[:, 0]).sum() + np.isnan(chunks[1].y[:, 0]).sum() == 2240
    times = np.concatenate([c.times for c in chunks])
    assert (np.diff(times) == np.timedelta64(5, "m")).all()


def test_glucose_repeated_time_needs_a_policy(glucose):
    with pytest.raises(feeds.FeedError):
        feeds.Feed(feeds.Schema(key=False, targets="glucose"), time_delta=True)(glucose)


# fulda: daily discharge and weather, 1979 to 1988


def test_fulda_is_one_complete_daily_series(fulda):
    days = pd.date_range("1979-01-01", "1988-12-31", freq="D")
    assert pd.DatetimeIndex(fulda["date"]).equals(days)


def test_fulda_values_as_documented(fulda):
    assert (fulda["tmax"] > fulda["tmin"]).all()
    np.testing.assert_allclose(fulda["tmean"], (fulda["tmax"] + fulda["tmin"]) / 2, atol=1e-12)
    ranges = fulda.drop(columns="date").agg(["min", "max"])
    assert ranges.to_dict("list") == {
        "tmax": [-12.9, 33.5],
        "tmin": [-22.1, 18.6],
        "tmean": [-16.7, 25.05],
        "precipitation": [0.0, 56.6],
        "discharge": [8.55, 360.0],
    }
    for col in ["tmax", "tmin", "precipitation"]:
        values = fulda[col].to_numpy()
        np.testing.assert_allclose(values * 10, np.round(values * 10), atol=1e-9)
    assert (fulda["precipitation"] == 0).sum() == 1210
    wettest = fulda.loc[fulda["discharge"].idxmax()]
    assert wettest["date"] == pd.Timestamp("1984-02-08")
    assert fulda["discharge"].diff().abs().max() == 198.0


def test_fulda_discharge_to_three_significant_figures(fulda):
    q = fulda["discharge"].to_numpy()
    digits = 2 - np.floor(np.log10(q))  # decimals that give three significant figures
    scaled = q * 10.0**digits
    np.testing.assert_allclose(scaled, np.round(scaled), atol=1e-6)


def test_fulda_has_a_yearly_cycle(fulda):
    monthly = fulda.groupby(fulda["date"].dt.month)[["tmean", "discharge"]].mean()
    assert monthly["tmean"].idxmax() == 7
    assert monthly["tmean"].idxmin() == 1
    assert monthly["tmean"][7] - monthly["tmean"][1] > 15
    assert monthly["discharge"].idxmax() == 3
    assert monthly["discharge"].idxmin() == 9
    winter = monthly["discharge"][[12, 1, 2, 3, 4]]
    summer = monthly["discharge"][[7, 8, 9]]
    assert winter.min() > summer.max()


def test_fulda_streams_as_one_series(fulda):
    feed = feeds.Feed(feeds.Schema(targets="discharge"), calendar="auto")
    chunk = feed(fulda)
    assert chunk.keys is None
    assert len(chunk) == 3653
    assert chunk.targets == ("discharge",)
    assert feed.calendar_features == ("day_of_week", "day_of_year")
    assert chunk.columns[:5] == ("tmax", "tmin", "tmean", "precipitation", "discharge")
    np.testing.assert_allclose(chunk.y[:, 0], fulda["discharge"], rtol=1e-6)


# brent: daily spot price on trading days, 1987 to 2019


def test_brent_trading_days(brent):
    dates = brent["date"]
    assert dates.iloc[0] == pd.Timestamp("1987-05-20")
    assert dates.iloc[-1] == pd.Timestamp("2019-08-26")
    assert dates.is_monotonic_increasing
    assert not dates.duplicated().any()
    assert (dates == dates.dt.normalize()).all()
    assert (dates.dt.day_of_week < 5).all()
    weekdays = pd.bdate_range(dates.iloc[0], dates.iloc[-1])
    absent = weekdays.difference(pd.DatetimeIndex(dates))
    assert len(absent) == 224
    assert pd.Timestamp("2000-12-25") in absent
    steps = dates.diff().dropna().dt.days.value_counts().to_dict()
    assert steps == {1: 6467, 3: 1546, 4: 112, 2: 38, 5: 29, 6: 2}


def test_brent_values_as_documented(brent):
    price = brent["price"]
    np.testing.assert_allclose(price * 100, np.round(price * 100), atol=1e-6)
    assert brent.loc[price.idxmin()].tolist() == [pd.Timestamp("1998-12-10"), 9.1]
    assert brent.loc[price.idxmax()].tolist() == [pd.Timestamp("2008-07-03"), 143.95]
    fall = price.pct_change()
    assert brent["date"][fall.idxmin()] == pd.Timestamp("1991-01-17")
    assert fall.min() == pytest.approx(21.10 / 30.28 - 1)


def test_brent_streams_with_time_between_rows(brent):
    chunk = feeds.Feed(feeds.Schema(targets="price"), time_delta=True)(brent)
    assert chunk.keys is None
    assert chunk.columns == ("price", "dt")
    days = chunk.x[:, 1] / 86400
    assert days[0] == 0
    assert set(np.unique(days[1:])) == {1.0, 2.0, 3.0, 4.0, 5.0, 6.0}
