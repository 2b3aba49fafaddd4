"""Small real datasets bundled with feeds, loadable with no network access.

Each loader reads a Parquet file from ``feeds/data`` and returns a new pandas
DataFrame with a default ``RangeIndex``. The data are kept as recorded at the
source, oddities included; ``feeds/data/SOURCES.md`` gives origin, licence,
the transformations applied, the quirks of each file and a recipe to rebuild
the files.

The column types are fixed by the loaders and do not follow pandas options:
text columns and the column labels use ``pd.StringDtype("pyarrow",
na_value=np.nan)`` (the ``str`` dtype that pandas 3 infers by default), times
are naive ``datetime64[ns]`` and measurements are ``float64``.

- :func:`load_weather`: hourly temperature in Seattle and San Francisco, 2010,
  two keyed series in long format.
- :func:`load_stocks`: monthly prices of five stocks, 2000 to 2010, five keyed
  series in long format.
- :func:`load_seattle_weather`: daily weather in Seattle, 2012 to 2015, one
  series with several measurements and a text label (feed it with
  ``feeds.Schema(key=False)``, or the label is taken as a key).

Examples
--------
>>> from feeds.datasets import load_weather
>>> load_weather().groupby("city").size()
city
san_francisco    8759
seattle          8759
dtype: int64
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

__all__ = ["load_seattle_weather", "load_stocks", "load_weather"]

DATA_DIR = Path(__file__).resolve().parent / "data"

try:
    _STR = pd.StringDtype("pyarrow", na_value=np.nan)
except TypeError:  # pandas before 2.3 has no NaN-variant string dtype
    _STR = pd.StringDtype("pyarrow")
_TIME = np.dtype("datetime64[ns]")
_FLOAT = np.dtype("float64")


def _load(name, dtypes):
    table = pq.read_table(DATA_DIR / name, columns=list(dtypes))
    frame = table.to_pandas().astype(dtypes).reset_index(drop=True)
    frame.columns = pd.Index(list(dtypes), dtype=_STR)
    return frame


def load_weather():
    """Hourly air temperature in Seattle and San Francisco during 2010.

    Two series in long format, interleaved as a stream would deliver them:
    rows are ordered by ``time``, then ``city``, so at each hour the
    San Francisco row comes before the Seattle row.

    Returns
    -------
    pandas.DataFrame
        17 518 rows (8 759 per city), 2010-01-01 00:00 to 2010-12-31 23:00,
        with columns

        ``city`` : str
            Series key, ``"san_francisco"`` or ``"seattle"``.
        ``time`` : datetime64[ns]
            Local clock time (US Pacific) as recorded, without time zone.
        ``temperature`` : float64
            Air temperature in degrees Fahrenheit, to 0.1 degree.

    Notes
    -----
    Source: NOAA, from ``seattle-temps.csv`` and ``sf-temps.csv`` of the
    vega-datasets 0.9.0 package. Licence: public domain (NOAA); the
    vega-datasets package is MIT-licensed.

    The times are kept naive because they cannot be placed in
    ``America/Los_Angeles`` unchanged: 2010-03-14 02:00 is present although
    clocks skipped that hour, and 2010-11-07 01:00 is ambiguous.

    Each city lacks one hour, 2010-03-14 03:00 (the day daylight saving time
    began), and has 2010-11-07 01:00 only once. There are no other gaps, no
    duplicates and no missing values. The curves are far smoother than a
    single year of weather (the daily mean changes by less than 0.5 degree
    from day to day), like a climatological average on the 2010 calendar.

    Examples
    --------
    >>> from feeds.datasets import load_weather
    >>> df = load_weather()
    >>> df.shape
    (17518, 3)
    >>> df.dtypes
    city                      str
    time           datetime64[ns]
    temperature           float64
    dtype: object
    >>> df.head(4)
                city                time  temperature
    0  san_francisco 2010-01-01 00:00:00         47.8
    1        seattle 2010-01-01 00:00:00         39.4
    2  san_francisco 2010-01-01 01:00:00         47.4
    3        seattle 2010-01-01 01:00:00         39.2
    """
    return _load("weather.parquet", {"city": _STR, "time": _TIME, "temperature": _FLOAT})


def load_stocks():
    """Monthly prices of AAPL, AMZN, GOOG, IBM and MSFT, January 2000 to March 2010.

    Five series in long format, rows ordered by ``date``, then ``symbol``.

    Returns
    -------
    pandas.DataFrame
        560 rows: 123 months for AAPL, AMZN, IBM and MSFT (2000-01 to 2010-03)
        and 68 for GOOG (2004-08 to 2010-03), with columns

        ``symbol`` : str
            Series key, the ticker.
        ``date`` : datetime64[ns]
            First day of the month at midnight, without time zone. It labels
            the month; it is often not a trading day.
        ``price`` : float64
            Price in US dollars, two decimals.

    Notes
    -----
    Source: ``stocks.csv`` of the vega-datasets 0.9.0 package (MIT-licensed),
    which names no origin or licence for the prices. The package calls them
    daily closing prices, but there is exactly one price per stock and month.
    The prices appear adjusted for stock splits; the basis of the adjustment
    is not stated. No gaps, duplicates or missing values.

    Examples
    --------
    >>> from feeds.datasets import load_stocks
    >>> df = load_stocks()
    >>> df.shape
    (560, 3)
    >>> df.groupby("symbol")["date"].agg(["size", "min", "max"])
            size        min        max
    symbol
    AAPL     123 2000-01-01 2010-03-01
    AMZN     123 2000-01-01 2010-03-01
    GOOG      68 2004-08-01 2010-03-01
    IBM      123 2000-01-01 2010-03-01
    MSFT     123 2000-01-01 2010-03-01
    >>> df.head(4)
      symbol       date   price
    0   AAPL 2000-01-01   25.94
    1   AMZN 2000-01-01   64.56
    2    IBM 2000-01-01  100.52
    3   MSFT 2000-01-01   39.81
    """
    return _load("stocks.parquet", {"symbol": _STR, "date": _TIME, "price": _FLOAT})


def load_seattle_weather():
    """Daily weather in Seattle, 2012-01-01 to 2015-12-31.

    One series (no key column), one row per day in date order. The text
    column ``weather`` is a label, not a series id, but a feed infers the one
    text column of a table as its key: pass ``feeds.Schema(key=False)`` to
    read the frame as one series (naming the features alone does not stop it;
    see the example).

    Returns
    -------
    pandas.DataFrame
        1 461 rows, every day of the four years exactly once, with columns

        ``date`` : datetime64[ns]
            Calendar day at midnight, without time zone.
        ``precipitation`` : float64
            Daily precipitation in millimetres.
        ``temp_max``, ``temp_min`` : float64
            Daily maximum and minimum temperature in degrees Celsius (note:
            :func:`load_weather` uses degrees Fahrenheit).
        ``wind`` : float64
            Wind speed in metres per second.
        ``weather`` : str
            One of ``"drizzle"``, ``"fog"``, ``"rain"``, ``"snow"``, ``"sun"``.

    Notes
    -----
    Source: NOAA, from ``seattle-weather.csv`` of the vega-datasets 0.9.0
    package. Licence: public domain (NOAA); the vega-datasets package is
    MIT-licensed.

    The source states no units; the ones above are inferred from the ranges
    of the values, which are recorded to 0.1. There are no missing values.
    The ``weather`` label disagrees with the measurements on many days (77
    ``"sun"`` days with precipitation, 47 ``"rain"`` days without) and its use
    drifts over the years (``"rain"`` on 191 days in 2012, on 3 in 2014).

    Examples
    --------
    >>> from feeds.datasets import load_seattle_weather
    >>> df = load_seattle_weather()
    >>> df.shape
    (1461, 6)
    >>> df.head(3)
            date  precipitation  temp_max  temp_min  wind  weather
    0 2012-01-01            0.0      12.8       5.0   4.7  drizzle
    1 2012-01-02           10.9      10.6       2.8   4.5     rain
    2 2012-01-03            0.8      11.7       7.2   2.3     rain
    >>> df["weather"].value_counts()
    weather
    sun        714
    fog        411
    rain       259
    drizzle     54
    snow        23
    Name: count, dtype: int64

    One series, the measurements as features (the label is left out):

    >>> import feeds
    >>> chunk = feeds.Feed(feeds.Schema(key=False))(df)
    >>> chunk.keys is None, len(chunk), chunk.columns
    (True, 1461, ('precipitation', 'temp_max', 'temp_min', 'wind'))
    """
    measures = ["precipitation", "temp_max", "temp_min", "wind"]
    dtypes = {"date": _TIME, **dict.fromkeys(measures, _FLOAT), "weather": _STR}
    return _load("seattle_weather.parquet", dtypes)
