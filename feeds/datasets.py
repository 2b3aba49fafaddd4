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
  ``feeds.Schema(key=False)``: a text column that no role claims is refused).
- :func:`load_glucose`: blood glucose from a continuous glucose monitor, about
  every five minutes from March to May 2010, one series with gaps of up to
  18 hours, a repeated time and a stretch of paired readings (put it on a
  grid to see the gaps).
- :func:`load_fulda`: daily discharge of the river Fulda with temperature and
  precipitation in its catchment, 1979 to 1988, one complete series with a
  strong yearly cycle.
- :func:`load_brent`: daily Brent crude oil spot price, 1987 to 2019, one
  series on trading days only (no weekends, no holidays).
- :func:`seattle_weather_csv`: the path of a raw CSV export of the Seattle
  weather, as files arrive from elsewhere: the date split over ``year``,
  ``month`` and ``day``, a text column, ``NA`` for gaps.

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

__all__ = [
    "load_brent",
    "load_fulda",
    "load_glucose",
    "load_seattle_weather",
    "load_stocks",
    "load_weather",
    "seattle_weather_csv",
]

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
    column ``weather`` is a label, not a series id; a feed refuses a text column
    that no role claims, so say what the table is: ``feeds.Schema(key=False)``
    reads it as one series and leaves the label out (see the example), and
    ``categorical=["weather"]`` would make the label an input.

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


def load_glucose():
    """Blood glucose from a continuous glucose monitor, 2010-03-24 to 2010-05-31.

    One series (no key column), one row per reading in time order. Readings
    come about every five minutes, with 59 gaps of more than five minutes (up
    to 18 hours), one time recorded twice and, from 2010-05-28 22:03 to
    2010-05-29 14:09, 194 pairs of readings one minute apart. Nothing is filled
    in: put it on a grid to see the gaps as missing values (see the example).

    Returns
    -------
    pandas.DataFrame
        17 710 rows, 2010-03-24 09:51 to 2010-05-31 23:55, with columns

        ``time`` : datetime64[ns]
            Clock time of the reading as recorded, to the minute, without time
            zone.
        ``glucose`` : float64
            Glucose in mg/dL, whole numbers from 40 to 389.
        ``isig`` : float64
            The sensor's raw signal (an electric current), to 0.01.

    Notes
    -----
    Source: ``CGM.csv.gz`` of the bokeh_sampledata 2026.1 package, first
    17 710 of its 52 281 rows (all readings before June 2010). Licence:
    public domain, as the package records for this file (the readings were
    given to a Bokeh maintainer by a person who is not named); the package's
    own code is BSD-3-Clause.

    The source gives no time zone and names neither the device nor the
    units; mg/dL is the unit that fits the values. Glucose is stored as
    float64 although every value is a whole number. Within each pair of
    readings one minute apart, ``isig`` is the same to within 0.01 while
    ``glucose`` differs by up to 16 mg/dL.

    Examples
    --------
    >>> from feeds.datasets import load_glucose
    >>> df = load_glucose()
    >>> df.shape
    (17710, 3)
    >>> df.dtypes
    time       datetime64[ns]
    glucose           float64
    isig              float64
    dtype: object
    >>> df.head(3)
                     time  glucose   isig
    0 2010-03-24 09:51:00    258.0  22.59
    1 2010-03-24 09:56:00    260.0  22.52
    2 2010-03-24 10:01:00    258.0  22.23

    On a five-minute grid the gaps become missing values, masked for the
    model; readings that share a bin are averaged, and the second reading at
    the repeated time is dropped:

    >>> import feeds
    >>> feed = feeds.Feed(
    ...     feeds.Schema(key=False, targets="glucose"),
    ...     grid="5min", duplicates="first", missing="mask",
    ... )
    >>> rows = len(feed(df)) + len(feed.flush())
    >>> rows, feed.counts["empty_bins"], feed.counts["merged"]
    (19754, 2240, 195)
    """
    return _load("glucose.parquet", {"time": _TIME, "glucose": _FLOAT, "isig": _FLOAT})


def load_fulda():
    """Daily discharge of the river Fulda with weather in its catchment, 1979 to 1988.

    One series (no key column), one row per day in date order, every day of
    the ten years exactly once and no missing values.

    Returns
    -------
    pandas.DataFrame
        3 653 rows, 1979-01-01 to 1988-12-31, with columns

        ``date`` : datetime64[ns]
            Calendar day at midnight, without time zone.
        ``tmax``, ``tmin`` : float64
            Daily maximum and minimum air temperature in degrees Celsius, to
            0.1 degree.
        ``tmean`` : float64
            The mean of ``tmax`` and ``tmin`` (not a separate measurement).
        ``precipitation`` : float64
            Daily precipitation in millimetres, to 0.1 mm.
        ``discharge`` : float64
            Mean river discharge in cubic metres per second, to three
            significant figures.

    Notes
    -----
    Source: ``examples/cmf_data/fulda_climate.csv`` of the spotpy 1.6.7
    package, which is MIT-licensed and gives the file no source or licence
    of its own. The units are those of the file's second header line. The
    example that reads it calls the weather station "Grebenau avg" and
    takes the catchment to be 2 976.41 square kilometres.

    Discharge is highest from December to April and lowest in August and
    September; it ranges from 8.55 to 360 and jumps by up to 198 from one
    day to the next.

    Examples
    --------
    >>> from feeds.datasets import load_fulda
    >>> df = load_fulda()
    >>> df.shape
    (3653, 6)
    >>> df.dtypes
    date             datetime64[ns]
    tmax                    float64
    tmin                    float64
    tmean                   float64
    precipitation           float64
    discharge               float64
    dtype: object
    >>> df.head(3)
            date  tmax  tmin  tmean  precipitation  discharge
    0 1979-01-01 -12.9 -20.1 -16.50            1.0      143.0
    1 1979-01-02 -10.9 -19.8 -15.35            0.6      110.0
    2 1979-01-03  -6.2 -19.1 -12.65            0.7       62.6

    One series, discharge as the target and all five measurements as inputs:

    >>> import feeds
    >>> chunk = feeds.Feed(feeds.Schema(targets="discharge"))(df)
    >>> chunk.keys is None, len(chunk), chunk.targets
    (True, 3653, ('discharge',))
    """
    measures = ["tmax", "tmin", "tmean", "precipitation", "discharge"]
    return _load("fulda.parquet", {"date": _TIME, **dict.fromkeys(measures, _FLOAT)})


def load_brent():
    """Daily Brent crude oil spot price, 1987-05-20 to 2019-08-26.

    One series (no key column), one row per trading day in date order. There
    are no weekend dates, and 224 weekdays (mostly holidays such as
    Christmas and New Year) are absent, so steps between rows are 1 to 6
    days.

    Returns
    -------
    pandas.DataFrame
        8 195 rows, with columns

        ``date`` : datetime64[ns]
            Trading day at midnight, without time zone.
        ``price`` : float64
            Spot price in US dollars per barrel, to the cent.

    Notes
    -----
    Source: U.S. Energy Information Administration, from
    ``drift/datasets/brent_crude_oil.csv`` of the river 0.26.1 package.
    Licence: public domain (a work of the United States government, as
    river's description of the data also says); the river package is
    BSD-3-Clause.

    The river description says the series starts in 2000 and keeps every
    tenth observation; the file holds every trading day from 1987. The
    price runs from 9.10 (1998-12-10) to 143.95 (2008-07-03), and falls by
    30% in one day on 1991-01-17.

    Examples
    --------
    >>> from feeds.datasets import load_brent
    >>> df = load_brent()
    >>> df.shape
    (8195, 2)
    >>> df.dtypes
    date     datetime64[ns]
    price           float64
    dtype: object
    >>> df.head(3)
            date  price
    0 1987-05-20  18.63
    1 1987-05-21  18.45
    2 1987-05-22  18.55

    One series; ``time_delta`` gives the model the days between rows:

    >>> import feeds
    >>> chunk = feeds.Feed(feeds.Schema(targets="price"), time_delta=True)(df)
    >>> chunk.columns, float(chunk.x[:, 1].max()) / 86400
    (('price', 'dt'), 6.0)
    """
    return _load("brent.parquet", {"date": _TIME, "price": _FLOAT})


def seattle_weather_csv():
    """Path of ``seattle_weather_raw.csv``: the daily Seattle weather of
    :func:`load_seattle_weather` written as a raw export looks.

    Columns ``year``, ``month``, ``day`` (the date in parts), ``precipitation``,
    ``temp_max``, ``temp_min``, ``wind`` and ``weather`` (quoted text); whole
    numbers are written without a decimal point (``0``, ``5``) and missing values
    as ``NA``: 3% of the ``wind`` readings and 1% of ``temp_min``, removed at
    random (seeded) so that the file has gaps to handle. ``feeds/data/SOURCES.md``
    says how it was made.

    Examples
    --------
    >>> from feeds.datasets import seattle_weather_csv
    >>> print(seattle_weather_csv().read_text().splitlines()[1])
    2012,1,1,0,12.8,5,4.7,"drizzle"
    """
    return DATA_DIR / "seattle_weather_raw.csv"
