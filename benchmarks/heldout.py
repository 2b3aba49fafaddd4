"""Forecast quality on real series the defaults were not chosen on.

    pip install statsmodels pmdarima      # where the data come from; not dependencies
    python benchmarks/heldout.py [--sets taylor,co2] [--epochs N]

The defaults of ``streamrnn backfill --learn`` were chosen on the six bundled
sets of ``benchmarks/quality.py``. This script scores them, unchanged, on four
public series of other kinds, read from the datasets that ship inside two
statistics packages, by the same rules and with the same baselines and offline
network as ``quality.py`` (its module docstring has them):

============ ======================================== ======= ========= ======
set          what                                     rows    step      season
============ ======================================== ======= ========= ======
taylor       electricity demand, England and Wales,   4,032   30 min    48
             June-August 2000 (pmdarima ``load_taylor``)
sunspots     monthly mean sunspot numbers from 1749   2,820   month     12
             (pmdarima ``load_sunspots``)
co2          CO2 at Mauna Loa, weekly from 1958, with 2,284   week      52
             gaps (statsmodels ``co2``)
elec_equip   euro-area electrical equipment orders,   257     month     12
             an index (statsmodels ``elec_equip``)
============ ======================================== ======= ========= ======

Each set is one series, and none can be negative (``--min 0``, as in
``quality.py``). Missing CO2 weeks are masked inputs (``missing="mask"``) and
unlabelled rows. Prints the table of ``quality.py`` and one JSON document.
"""

import dataclasses

import pandas as pd
import quality


def _taylor():
    from pmdarima.datasets import load_taylor

    demand = load_taylor()
    times = pd.date_range("2000-06-05", periods=len(demand), freq="30min")
    return pd.DataFrame({"time": times, "demand": demand})


def _sunspots():
    from pmdarima.datasets import load_sunspots

    spots = load_sunspots()
    return pd.DataFrame({"time": pd.date_range("1749-01-01", periods=len(spots), freq="MS"),
                         "sunspots": spots})  # fmt: skip


def _co2():
    from statsmodels.datasets import co2

    data = co2.load_pandas().data
    return pd.DataFrame({"time": data.index, "co2": data["co2"].to_numpy()})


def _elec_equip():
    from statsmodels.datasets import elec_equip

    data = elec_equip.load_pandas().data
    return pd.DataFrame({"time": pd.to_datetime(data.index), "orders": data.iloc[:, 0].to_numpy()})


SETS = (
    quality.DataSet("taylor", _taylor, "time", "demand", 48, minimum=0),
    quality.DataSet("sunspots", _sunspots, "time", "sunspots", 12, minimum=0),
    quality.DataSet("co2", _co2, "time", "co2", 52, missing="mask", minimum=0),
    quality.DataSet("elec_equip", _elec_equip, "time", "orders", 12, minimum=0),
)
NAMES = {s.name: s for s in SETS}


def main():
    parser, chosen, epochs = quality.command_line(__doc__, NAMES)
    try:
        for name in chosen:
            NAMES[name].load()
    except ImportError as exc:
        parser.error(f"{exc.name} is needed for the data: pip install statsmodels pmdarima")
    results, seconds = quality.measure_sets([NAMES[name] for name in chosen], epochs)
    print(quality.table(results))
    print()
    print(quality.dumps({"sets": results, "seconds": seconds,
                         "settings": {s.name: dataclasses.asdict(s) | {"load": s.load.__name__}
                                      for s in SETS if s.name in results},
                         "machine": quality.machine()}))  # fmt: skip


if __name__ == "__main__":
    main()
