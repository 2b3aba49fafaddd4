"""First-time compilation is said before the wait, once per machine, and can be done ahead."""

import io
import warnings

import numpy as np
import pytest

import streamrnn
from streamrnn import compiling


@pytest.fixture
def fresh_machine(tmp_path, monkeypatch):
    """A process that has compiled nothing, on a machine whose cache holds no notes."""
    monkeypatch.setattr(compiling, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(compiling, "_ready", set())
    return tmp_path


def _forward(dtype=np.float32):
    model = streamrnn.GRU(2, 4, output_size=1, seed=0, dtype=dtype)
    return model.forward(np.zeros((3, 2), dtype))


def test_the_first_call_on_a_machine_says_what_it_compiles_and_where_it_is_cached(
    fresh_machine,
):
    with pytest.warns(streamrnn.CompileWarning) as said:
        _forward()
    (notice,) = said
    text = str(notice.message)
    assert "forward passes" in text and "float32" in text and str(fresh_machine) in text
    assert "seconds" in text and "streamrnn compile" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _forward()  # once per process
    compiling._ready.clear()  # a later process on the same machine
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _forward()


def test_each_dtype_and_family_is_said_once(fresh_machine, monkeypatch):
    with pytest.warns(streamrnn.CompileWarning):
        _forward(np.float32)
    with pytest.warns(streamrnn.CompileWarning, match="float64"):
        _forward(np.float64)
    learner = streamrnn.OnlineLearner(streamrnn.GRU(1, 4, output_size=1, seed=0), tbptt=(2, 4))
    y = np.ones((8, 1), np.float32)
    with pytest.warns(streamrnn.CompileWarning, match="learning kernels") as said:
        learner.predict_learn(np.zeros(8, int), np.arange(8), y, y)
    assert len([w for w in said if w.category is streamrnn.CompileWarning]) == 1


def test_a_changed_source_is_said_again(fresh_machine, monkeypatch):
    with pytest.warns(streamrnn.CompileWarning):
        _forward()
    compiling._ready.clear()
    monkeypatch.setattr(compiling, "_sources_stamp", lambda: "edited")
    with pytest.warns(streamrnn.CompileWarning):
        _forward()


def test_the_notice_can_be_silenced_and_written_as_one_line(fresh_machine):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=streamrnn.CompileWarning)
        _forward()
    compiling._ready.clear()
    (fresh_machine / "streamrnn-inference-float32.compiled").unlink()
    out = io.StringIO()
    with compiling.said_on(out):
        _forward()
    assert out.getvalue().startswith("streamrnn: compiling streamrnn's forward passes")
    assert out.getvalue().count("\n") == 1


def test_compile_ahead_of_time_leaves_nothing_to_say(fresh_machine):
    took = streamrnn.compile(cells=["gru", "lstm"], modes="inference")
    assert set(took) == {("inference", "gru", "float32"), ("inference", "lstm", "float32")}
    assert all(t >= 0 for t in took.values())
    compiling._ready.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _forward()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"cells": ["gru", "transformer"]}, "cells must be among"),
        ({"modes": ["training"]}, "modes must be among"),
        ({"dtypes": ["float16"]}, "dtypes must be among"),
        ({"modes": []}, "modes must be among"),
    ],
)
def test_compile_refuses_what_it_does_not_know(kwargs, match):
    with pytest.raises(streamrnn.ConfigError, match=match):
        streamrnn.compile(**kwargs)
