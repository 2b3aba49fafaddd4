"""Files written by streamrnn 0.1.0 still load: a saved learner goes on predicting
exactly as it would have, and a backfill checkpoint (format 2, whose running scores
were pickled under a class name since changed) loads with every state and weight."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import streamrnn
from streamrnn import checkpoint
from streamrnn.errors import StateError

DATA = Path(__file__).parent / "data"


def test_a_learner_saved_by_0_1_0_loads_and_predicts_the_same_bits():
    # OnlineLearner(GRU(2, 3, output_size=1, seed=0), tbptt=(2, 4)) after 24 rows of 3 keys,
    # saved by 0.1.0, and its predictions of the next rows, made then
    learner = streamrnn.OnlineLearner.load(DATA / "learner-0.1.0.pkl")
    assert isinstance(learner, streamrnn.OnlineLearner) and len(learner) == 3
    got = learner.predict(np.arange(3), None, np.load(DATA / "learner-0.1.0-next-x.npy"))
    assert np.array_equal(got, np.load(DATA / "learner-0.1.0-expect.npy"))


@pytest.fixture
def old_checkpoint(tmp_path):
    # `streamrnn backfill tiny.csv --key station --targets temp --learn --hidden 4` by 0.1.0
    path = tmp_path / "_checkpoint"
    path.write_bytes(gzip.decompress((DATA / "backfill-0.1.0.ckpt.gz").read_bytes()))
    return path


def test_a_backfill_checkpoint_of_0_1_0_loads_with_its_states_and_weights(old_checkpoint):
    with open(old_checkpoint, "rb") as f:
        f.readline()
        assert json.loads(f.readline())["format"] == 2 < checkpoint.FORMAT
    learner = streamrnn.OnlineLearner.load(old_checkpoint)
    want = np.load(DATA / "backfill-0.1.0-expect.npz")
    assert np.array_equal(learner.get_state("a"), want["state_a"])
    assert np.array_equal(learner.get_state("b"), want["state_b"])
    for name, value in learner.model.state_dict().items():
        assert np.array_equal(value, want[f"w_{name}"])


def test_a_checkpoint_of_an_unknown_format_is_refused_naming_both(old_checkpoint, tmp_path):
    lines = old_checkpoint.read_bytes().split(b"\n", 2)
    header = json.loads(lines[1])
    header["format"], header["streamrnn"] = 99, "9.0.0"
    future = tmp_path / "future"
    future.write_bytes(b"\n".join([lines[0], json.dumps(header).encode(), lines[2]]))
    with pytest.raises(StateError, match=r"format 99 \(written by streamrnn 9.0.0\); this "
                       r"streamrnn reads formats 2, 3"):  # fmt: skip
        checkpoint.load_engine(future)
