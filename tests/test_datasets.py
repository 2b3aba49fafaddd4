import warnings

import numpy as np
import pandas as pd
import pytest

from feeds import datasets
from feeds.datasets import load_seattle_weather, load_stocks, load_weather

STR = pd.StringDtype("pyarrow", na_value=np.nan)
NS = np.dtype("datetime64[ns]")
F64 = np.dtype("float64")

LOADERS = [load_weather, load_stocks, load_seattle_weather]
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
}
ROWS = {load_weather: 17518, load_stocks: 560, load_seattle_weather: 1461}


@pytest.fixture(scope="module")
def weather():
    return load_weather()


@pytest.fixture(scope="module")
def stocks():
    return load_stocks()


@pytest.fixture(scope="module")
def seattle():
    return load_seattle_weather()


def test_all_lists_the_loaders():
    assert sorted(datasets.__all__) == ["load_seattle_weather", "load_stocks", "load_weather"]


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
