"""Models sized from data: no input or output size counted by hand, and mismatches that
name the columns on both sides."""

import pickle

import numpy as np
import pandas as pd
import pytest

import feeds
import streamrnn


def _frame(n=120):
    t = np.arange(n)
    return pd.DataFrame({
        "time": pd.date_range("2024-01-01", periods=n, freq="h"),
        "temp": np.sin(t / 5.0),
        "wind": np.where(t % 17 == 3, np.nan, np.cos(t / 7.0)),
    })  # fmt: skip


def _feed(**kw):
    return feeds.Feed(feeds.Schema(key=False, targets="temp"), missing="mask", **kw)


def test_a_learner_sizes_an_open_model_from_its_first_chunk_as_if_built_by_hand():
    df = _frame()
    open_learner = streamrnn.OnlineLearner(streamrnn.GRU(hidden_size=8, seed=3), feed=_feed())
    got = open_learner.predict_learn(df)
    feed = _feed()
    columns = feed(df[:1]).columns  # what a user had to count before
    assert columns == ("temp", "wind", "temp_missing", "wind_missing")
    by_hand = streamrnn.OnlineLearner(
        streamrnn.GRU(len(columns), 8, output_size=1, seed=3), feed=_feed()
    )
    want = by_hand.predict_learn(df)
    assert open_learner.model.input_size == 4 and open_learner.model.output_size == 1
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        open_learner.model.state_dict()["weight_ih_l0"], by_hand.model.state_dict()["weight_ih_l0"]
    )


def test_quantile_heads_and_streams_without_targets_are_sized_too():
    df = _frame()
    q = streamrnn.OnlineLearner(
        streamrnn.LSTM(hidden_size=4), loss=streamrnn.losses.Pinball([0.1, 0.5, 0.9]), feed=_feed()
    )
    assert q.predict_learn(df).shape == (len(df), 3)
    assert q.model.output_size == 3
    stream = streamrnn.Stream(streamrnn.RNN(hidden_size=5))
    assert stream.update(np.zeros(6, int), None, np.ones((6, 2))).shape == (6, 5)
    assert stream.model.input_size == 2 and stream.model.output_size is None
    with_targets = streamrnn.Stream(streamrnn.GRU(hidden_size=4), feed=_feed())
    assert with_targets.update(df).shape == (len(df), 1)


def test_an_open_model_says_how_it_gets_its_sizes():
    model = streamrnn.GRU(hidden_size=8)
    assert not model.sized
    with pytest.raises(streamrnn.ConfigError, match=r"sizes are open.*model.size"):
        model.forward(np.ones((3, 2), np.float32))
    with pytest.raises(streamrnn.ConfigError, match="needs hidden_size"):
        streamrnn.GRU()
    again = pickle.loads(pickle.dumps(model))
    assert not again.sized
    assert model.size(2, 1).sized
    with pytest.raises(streamrnn.ConfigError, match="already set"):
        model.size(2, 1)
    np.testing.assert_array_equal(
        model.state_dict()["weight_ih_l0"],
        streamrnn.GRU(2, 8, output_size=1).state_dict()["weight_ih_l0"],
    )


def test_size_mismatches_name_the_columns_on_both_sides():
    df = _frame()
    wrong_inputs = streamrnn.OnlineLearner(streamrnn.GRU(3, 8, output_size=1), feed=_feed())
    with pytest.raises(
        streamrnn.InputError,
        match=r"4 input columns \['temp', 'wind', 'temp_missing', 'wind_missing'\].*input_size=3",
    ):
        wrong_inputs.predict_learn(df)
    wrong_outputs = streamrnn.OnlineLearner(streamrnn.GRU(4, 8, output_size=3), feed=_feed())
    with pytest.raises(
        streamrnn.InputError, match=r"1 target column\(s\) \['temp'\].*3 outputs.*output_size=1"
    ):
        wrong_outputs.predict_learn(df)
    stream = streamrnn.Stream(streamrnn.GRU(2, 8, output_size=1), feed=_feed())
    with pytest.raises(streamrnn.InputError, match=r"\['temp', 'wind', 'temp_missing'"):
        stream.update(df)


def test_a_value_beyond_float32_is_named_as_given_not_as_inf():
    stream = streamrnn.Stream(streamrnn.GRU(2, 4))
    x = np.array([[1.0, 2.0], [1e300, 3.0]])
    with pytest.raises(streamrnn.InputError, match=r"x holds 1e\+300 at row 1, column 0, beyond "
                       r"the range of float32 .* use a float64 model"):  # fmt: skip
        stream.update([1, 1], [1, 2], x)
    assert len(stream) == 0  # nothing changed
    with pytest.raises(streamrnn.InputError, match="non-finite value inf"):
        stream.update([1, 1], [1, 2], np.array([[1.0, 2.0], [np.inf, 3.0]]))
    assert streamrnn.Stream(streamrnn.GRU(2, 4, dtype="float64")).update([1], [1], x[1:]).shape


def test_a_learner_with_open_sizes_knows_its_options_and_says_what_waits_for_data():
    from streamrnn.evaluate import progressive

    learner = streamrnn.OnlineLearner(streamrnn.GRU(hidden_size=4, seed=1), feed=_feed())
    assert learner.horizon == 1 and learner.loss.name == "huber" and len(learner) == 0
    with pytest.raises(streamrnn.StateError, match="seen no data yet"):
        learner.forecast([0], 3)
    with pytest.raises(streamrnn.StateError, match="seen no data yet"):
        streamrnn.Stream(streamrnn.GRU(hidden_size=4)).keys()
    result = progressive(_frame(), learner, report=lambda snapshot: None)
    assert result.rows > 0 and learner.model.input_size == 4
