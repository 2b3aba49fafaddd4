"""Bad input: every case gets a typed error that names the problem, and changes nothing."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import streamrnn
from streamrnn import (
    ConfigError,
    InputError,
    KeyTypeError,
    StateError,
    TimeOrderError,
    UnknownKeyError,
)


@pytest.fixture
def model():
    return streamrnn.GRU(3, 4, output_size=2, seed=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(input_size=0, hidden_size=4), "input_size must be an integer >= 1"),
        (dict(input_size=3, hidden_size=2.5), "hidden_size must be an integer"),
        (dict(input_size=3, hidden_size=4, num_layers=True), "num_layers"),
        (dict(input_size=3, hidden_size=4, output_size=-1), "output_size"),
        (dict(input_size=3, hidden_size=4, dtype="float16"), "dtype must be 'float32' or"),
        (dict(input_size=3, hidden_size=4, bias="yes"), "bias must be True or False"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        streamrnn.GRU(**kwargs)


def test_bad_nonlinearity():
    with pytest.raises(ConfigError, match="nonlinearity must be 'tanh' or 'relu'"):
        streamrnn.RNN(2, 2, nonlinearity="sigmoid")


@pytest.mark.parametrize(
    "x, match",
    [
        (np.ones((4, 2)), "x has 2 features in its last axis, expected input_size=3"),
        (np.ones(3), r"x must have shape \(T, input_size\)"),
        (np.ones((1, 1, 1, 3)), "x must have shape"),
        (np.array([["a", "b", "c"]]), "x must hold real numbers"),
        (np.ones((2, 3), complex), "x must hold real numbers"),
    ],
)
def test_forward_rejects_bad_shapes_and_dtypes(model, x, match):
    with pytest.raises(InputError, match=match):
        model.forward(x)


def test_forward_names_the_non_finite_entry(model):
    x = np.ones((5, 3))
    x[3, 1] = np.nan
    with pytest.raises(InputError, match=r"non-finite value nan at row 3, column 1"):
        model.forward(x)


def test_bad_state(model):
    with pytest.raises(StateError, match=r"state h has shape \(2, 4\), expected \(1, 4\)"):
        model.forward(np.ones((2, 3)), np.zeros((2, 4)))
    with pytest.raises(StateError, match="non-finite"):
        model.forward(np.ones((2, 3)), np.full((1, 4), np.inf))
    lstm = streamrnn.LSTM(3, 4)
    with pytest.raises(StateError, match=r"LSTM state must be a pair \(h, c\)"):
        lstm.forward(np.ones((2, 3)), np.zeros((1, 4)))


def test_load_state_dict_names_the_bad_entry(model):
    good = model.state_dict()
    bad = dict(good)
    del bad["head.bias"]
    with pytest.raises(StateError, match=r"missing \['head.bias'\]"):
        model.load_state_dict(bad)
    bad = dict(good, weight_ih_l0=np.zeros((12, 2)))
    with pytest.raises(StateError, match=r"weight_ih_l0 has shape \(12, 2\), expected \(12, 3\)"):
        model.load_state_dict(bad)
    bad = dict(good, bias_hh_l0=np.full(12, np.nan))
    with pytest.raises(StateError, match="bias_hh_l0 has non-finite values"):
        model.load_state_dict(bad)
    assert all(np.array_equal(v, model.state_dict()[k]) for k, v in good.items())


def test_series_step_errors_leave_state_unchanged(model):
    series = streamrnn.Series(model)
    series.step(np.ones(3, np.float32))
    before = series.state
    with pytest.raises(InputError, match="non-finite value inf in column 2"):
        series.step(np.array([1.0, 2.0, np.inf], np.float32))
    with pytest.raises(InputError, match=r"x must have shape \(3,\) for one step"):
        series.step(np.ones(4))
    with pytest.raises(InputError, match="x must hold real numbers"):
        series.step(["a", "b", "c"])
    assert np.array_equal(series.state, before)


class TestStreamUpdate:
    def stream(self, model):
        s = streamrnn.Stream(model)
        s.update([1, 2], [10, 10], np.ones((2, 3)))
        return s

    def unchanged(self, s, snapshot):
        assert s.keys() == [1, 2]
        for k in (1, 2):
            assert np.array_equal(s.get_state(k), snapshot[k])

    def check(self, model, call, error, match):
        s = self.stream(model)
        snapshot = {k: s.get_state(k) for k in s.keys()}
        with pytest.raises(error, match=match):
            call(s)
        self.unchanged(s, snapshot)

    def test_time_going_backwards_across_chunks(self, model):
        self.check(
            model,
            lambda s: s.update([3, 2], [1, 9], np.ones((2, 3))),
            TimeOrderError,
            "key 2: time 9 at row 1 is not after its previous time 10",
        )

    def test_duplicate_time_within_chunk(self, model):
        self.check(
            model,
            lambda s: s.update([1, 3, 1], [11, 1, 11], np.ones((3, 3))),
            TimeOrderError,
            "key 1: time 11 at row 2 is not after time 11 at row 0",
        )

    def test_non_finite_row(self, model):
        x = np.ones((2, 3))
        x[1, 0] = -np.inf
        self.check(
            model,
            lambda s: s.update([1, 3], [11, 1], x),
            InputError,
            "non-finite value -inf at row 1, column 0",
        )

    def test_mixed_key_types_in_chunk(self, model):
        self.check(
            model,
            lambda s: s.update([1, "a"], None, np.ones((2, 3))),
            KeyTypeError,
            "all integers or all strings",
        )

    def test_key_type_change_between_chunks(self, model):
        self.check(
            model,
            lambda s: s.update(["a"], None, np.ones((1, 3))),
            KeyTypeError,
            "keys are ints, got str keys",
        )

    def test_float_keys(self, model):
        self.check(
            model,
            lambda s: s.update(np.array([1.5]), None, np.ones((1, 3))),
            KeyTypeError,
            "dtype float64",
        )

    def test_length_mismatch(self, model):
        self.check(
            model,
            lambda s: s.update([1, 2, 3], None, np.ones((2, 3))),
            InputError,
            "keys has 3 entries but x has 2 rows",
        )
        self.check(
            model,
            lambda s: s.update([1, 2], [20], np.ones((2, 3))),
            InputError,
            "times has 1 entries but x has 2 rows",
        )

    def test_nan_time(self, model):
        self.check(
            model,
            lambda s: s.update([1, 2], [20.0, np.nan], np.ones((2, 3))),
            InputError,
            "times has nan at row 1",
        )

    def test_time_kind_change(self, model):
        self.check(
            model,
            lambda s: s.update([1], [20.5], np.ones((1, 3))),
            InputError,
            "times are float but earlier chunks had int times",
        )

    def test_wrong_width(self, model):
        self.check(
            model, lambda s: s.update([1], None, np.ones((1, 4))), InputError, "x has 4 features"
        )

    def test_unknown_key_read(self, model):
        self.check(model, lambda s: s.get_state(99), UnknownKeyError, "unknown key 99")
        self.check(model, lambda s: s.forecast([1, 99], 2), UnknownKeyError, "unknown key 99")

    def test_empty_chunk_is_a_no_op(self, model):
        s = self.stream(model)
        snapshot = {k: s.get_state(k) for k in s.keys()}
        y = s.update([], [], np.zeros((0, 3)))
        assert y.shape == (0, 2)
        keys, y = s.update(np.array([], np.int64), None, np.zeros((0, 3)), outputs="last")
        assert keys == [] and y.shape == (0, 2)
        self.unchanged(s, snapshot)


def test_forecast_argument_errors(model):
    s = streamrnn.Stream(model, feedback={0: 1})
    s.update(["a"], None, np.ones((1, 3)))
    with pytest.raises(ConfigError, match="horizon must be an integer >= 1"):
        s.forecast(["a"], 0)
    with pytest.raises(InputError, match=r"future has shape \(1, 3, 3\), expected \(1, 2, 3\)"):
        s.forecast(["a"], 3, future=np.zeros((1, 3, 3)))
    with pytest.raises(InputError, match="future has a non-finite value"):
        s.forecast(["a"], 3, future=np.full((1, 2, 3), np.nan))
    # the fed-back input may be left unknown
    fut = np.zeros((1, 2, 3))
    fut[:, :, 1] = np.nan
    assert np.isfinite(s.forecast(["a"], 3, future=fut)).all()
    s.set_state("b", np.zeros((1, 4)))
    with pytest.raises(StateError, match="series 'b' has seen no input"):
        s.forecast(["b"], 2)
    with pytest.raises(ConfigError, match=r"feedback pair \(5, 0\) is out of range"):
        streamrnn.Stream(model, feedback={5: 0})


@settings(max_examples=40, deadline=None)
@given(x=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=3, max_size=3))
def test_any_non_finite_input_is_refused_everywhere(x):
    model = streamrnn.RNN(3, 2, seed=0)
    row = np.array([x], np.float32)
    finite = bool(np.isfinite(row).all())
    stream = streamrnn.Stream(model)
    series = streamrnn.Series(model)
    for call in (
        lambda: model.forward(row),
        lambda: stream.update([0], None, row),
        lambda: series.step(row[0]),
        lambda: series.run(row),
    ):
        if finite:
            assert np.isfinite(call()[0]).all()
        else:
            with pytest.raises(InputError, match="non-finite"):
                call()
    if not finite:
        assert len(stream) == 0 and not series.state.any()


def test_feedback_must_be_integer_pairs(model):
    with pytest.raises(ConfigError, match="feedback must map output index -> input index"):
        streamrnn.Stream(model, feedback={0.5: 1})
    with pytest.raises(ConfigError, match="same input"):
        streamrnn.Stream(model, feedback=[(0, 1), (1, 1)])


def test_forecast_with_every_input_fed_back_ignores_future_values():
    model = streamrnn.GRU(2, 3, output_size=2, seed=0)
    series = streamrnn.Series(model)  # outputs feed inputs 0 and 1
    series.step(np.ones(2, np.float32))
    fc = series.forecast(3, future=np.full((2, 2), np.nan))
    assert np.array_equal(fc, series.forecast(3))


def test_relu_saturates_like_torch_instead_of_turning_nan():
    import torch

    model = streamrnn.RNN(8, 6, nonlinearity="relu", seed=0)
    x = np.full((3, 8), 3e38, np.float32)
    x[:, ::2] *= -1
    y, _ = model.forward(x)
    rnn, _ = model.to_torch()
    with torch.no_grad():
        ref = rnn(torch.from_numpy(x))[0].numpy()
    assert not np.isnan(y).any() and not (y < 0).any()
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_values_that_overflow_the_model_dtype_are_refused():
    model = streamrnn.GRU(2, 4, seed=0)  # float32
    stream = streamrnn.Stream(model)
    with pytest.raises(StateError, match=r"state h has non-finite values \(in float32\)"):
        stream.set_state("a", np.full((1, 4), 1e300))
    assert len(stream) == 0
    with pytest.raises(StateError, match="non-finite"):
        streamrnn.Series(model, state=np.full((1, 4), 1e300))
    bad = dict(model.state_dict(), weight_hh_l0=np.full((12, 4), 1e300))
    with pytest.raises(StateError, match=r"weight_hh_l0 has non-finite values \(in float32\)"):
        model.load_state_dict(bad)
    with pytest.raises(InputError, match=r"x holds 1e\+300 at row 0, column 1, beyond the range"):
        model.forward(np.array([[0.0, 1e300]]))


@pytest.mark.parametrize(
    "times",
    [
        np.array(["2200-01-01", "1700-01-01"], "datetime64[ns]"),
        np.array([2**63 - 1, -(2**63) + 1], np.int64),
    ],
)
def test_times_far_apart_going_backwards_are_caught(times):
    stream = streamrnn.Stream(streamrnn.GRU(1, 2))
    with pytest.raises(TimeOrderError, match="key 1"):
        stream.update([1, 1], times, np.zeros((2, 1)))


def test_times_outside_the_nanosecond_range_are_refused():
    stream = streamrnn.Stream(streamrnn.GRU(1, 2))
    times = np.array(["2024-01-01", "3000-01-01"], "datetime64[D]")
    with pytest.raises(InputError, match="3000-01-01 at row 1, outside"):
        stream.update([1, 2], times, np.zeros((2, 1)))


def test_time_zone_aware_nat_is_refused():
    import pandas as pd

    stream = streamrnn.Stream(streamrnn.GRU(1, 2))
    times = pd.Series(pd.to_datetime(["2024-01-01", None]).tz_localize("UTC"))
    with pytest.raises(InputError, match="times has NaT at row 1"):
        stream.update(["a", "b"], times, np.zeros((2, 1)))
    assert len(stream) == 0


def test_mixed_or_unparseable_timestamps_are_refused():
    import pandas as pd

    stream = streamrnn.Stream(streamrnn.GRU(1, 2))
    for times in (
        [pd.Timestamp("2024-01-01"), "garbage"],
        [pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-01", tz="Asia/Tokyo")],
    ):
        arr = np.empty(2, object)
        arr[:] = times
        with pytest.raises(InputError, match="times must all be timestamps"):
            stream.update(["a", "b"], arr, np.zeros((2, 1)))


@pytest.mark.parametrize("shape", [(0, 3), (0, 2, 3), (4, 0, 3)])
def test_forward_on_empty_input_returns_empty_output(model, shape):
    y, state = model.forward(np.zeros(shape))
    assert y.shape == (*shape[:-1], 2)
    assert state.shape == ((1, 4) if len(shape) == 2 else (1, shape[1], 4))
    assert not state.any()


def test_wrong_kinds_of_argument_get_typed_errors(model):
    stream = streamrnn.Stream(model)
    stream.update([5], None, np.zeros((1, 3)))
    with pytest.raises(InputError, match="keys must be a sequence"):
        stream.forecast(5, 2)
    with pytest.raises(InputError, match="times has 1 entries but x has 0 rows"):
        stream.update([], 5, np.zeros((0, 3)))
    with pytest.raises(ConfigError, match="seed must be an integer or None"):
        streamrnn.GRU(2, 2, seed="x")
    with pytest.raises(KeyTypeError, match="keys must fit in int64"):
        stream.update(np.array([2**64 - 1], np.uint64), None, np.zeros((1, 3)))
    with pytest.raises(KeyTypeError, match="keys must fit in int64"):
        stream.update([2**70], None, np.zeros((1, 3)))


def test_non_finite_row_names_its_key(model):
    stream = streamrnn.Stream(model)
    x = np.ones((3, 3))
    x[2, 0] = np.nan
    with pytest.raises(InputError, match=r"at row 2, column 0 \(key 'pump-7'\)"):
        stream.update(["pump-1", "pump-2", "pump-7"], None, x)
    with pytest.raises(InputError, match="at time step 1, series 0, column 2"):
        x3 = np.ones((2, 2, 3))
        x3[1, 0, 2] = np.inf
        model.forward(x3)


def test_read_only_rows_step_without_recompiling(model):
    series = streamrnn.Series(model)
    x = np.ones(3, np.float32)
    x.flags.writeable = False
    step_one = streamrnn.core.kernels.STEP_ONE[int(model._spec[0])]
    before = len(step_one.signatures)
    series.step(x)
    series.step(np.ones(6, np.float32)[::2])
    assert len(step_one.signatures) <= max(before, 1)
