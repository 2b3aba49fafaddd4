"""First-time compilation is said before the wait, once per machine, and can be done ahead."""

import io
import warnings
from pathlib import Path

import numpy as np
import pytest

import streamrnn
from streamrnn import compiling
from streamrnn.core import _cache


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
    assert notice.filename == __file__  # the line that called into the package
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
    (fresh_machine / "streamrnn-inference-gru-float32.compiled").unlink()
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


def test_the_command_compiles_ahead_and_says_where_the_cache_is(fresh_machine, capsys):
    from streamrnn import cli

    assert cli.main(["compile", "--cells", "gru,lstm", "--modes", "inference"]) == 0
    out = capsys.readouterr().out
    assert "inference gru  float32" in out and "inference lstm float32" in out
    assert f"cache: {fresh_machine}" in out
    assert cli.main(["compile", "--modes", "training"]) == 2
    assert "--modes: must be among" in capsys.readouterr().err


def test_the_command_line_says_a_first_compilation_in_its_words(fresh_machine, tmp_path, capsys):
    import pandas as pd

    from streamrnn import cli

    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=30, freq="h"),
                          "temp": np.sin(np.arange(30) / 3.0)})  # fmt: skip
    frame.to_parquet(tmp_path / "in.parquet")
    args = [str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out"), "--targets", "temp"]
    assert cli.main(["backfill", *args, "--hidden", "4", "--no-report"]) == 0
    err = capsys.readouterr().err
    assert err.count("streamrnn backfill: warning: compiling streamrnn's forward passes") == 1


def _finished(process):
    """The exit status of ``process``; it is killed if it runs for more than ten minutes."""
    try:
        return process.wait(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_compile_in_background_fills_the_cache_in_another_process(fresh_machine):
    ahead = streamrnn.compile_in_background(cells=["gru"], modes=["inference"])
    assert ahead is not None and ahead.args[1:4] == ["-m", "streamrnn", "compile"]
    assert _finished(ahead) == 0
    # the process notes what it compiled in the machine's real cache folder
    real = Path(_cache.cache_folder()) / "streamrnn-inference-gru-float32.compiled"
    assert real.read_text() == compiling._sources_stamp()


def test_compile_in_background_starts_nothing_for_kernels_compiled_before(fresh_machine):
    with pytest.warns(streamrnn.CompileWarning):
        _forward()  # compiles (or loads) and notes the inference kernels of GRU float32
    assert streamrnn.compile_in_background(cells="gru", modes="inference") is None
    lstm = streamrnn.compile_in_background(cells="lstm", modes="inference")
    assert lstm is not None and _finished(lstm) == 0


def test_compile_in_background_refuses_what_it_does_not_know():
    with pytest.raises(streamrnn.ConfigError, match="modes must be among"):
        streamrnn.compile_in_background(modes=["training"])
