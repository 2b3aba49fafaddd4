"""Encoder-decoder forecasts learned online (:class:`streamrnn.Seq2SeqLearner`): against
PyTorch's autograd on the same encoder and decoders, against itself cut into chunks,
saved and reloaded, and through a feed that scales the targets."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import feeds
import streamrnn
from streamrnn import optim
from streamrnn.losses import Pinball

# -- helpers ---------------------------------------------------------------------------------------


def make_pair(cell="gru", layers=1, inputs=2, targets=1, hidden=3, *, outputs=None,
              dtype="float64", seed=0):  # fmt: skip
    """An encoder reading ``inputs`` and a decoder reading ``targets`` and emitting
    ``outputs`` (default: one per target), with the same cell, size and layers."""
    encoder = make_model(cell, inputs, hidden, layers, dtype=dtype, seed=seed)
    decoder = make_model(cell, targets, hidden, layers, output_size=outputs or targets,
                         dtype=dtype, seed=seed + 100)  # fmt: skip
    return encoder, decoder


def make_learner(cell="gru", layers=1, inputs=2, targets=1, hidden=3, *, dtype="float64",
                 seed=0, horizon=2, outputs=None, **options):  # fmt: skip
    """A learner on a fresh encoder and decoder; Adam(lr=0.02) unless an optimizer is given."""
    encoder, decoder = make_pair(cell, layers, inputs, targets, hidden, outputs=outputs,
                                 dtype=dtype, seed=seed)  # fmt: skip
    options.setdefault("optimizer", optim.Adam(lr=0.02))
    return streamrnn.Seq2SeqLearner(encoder, decoder, horizon, **options)


def keyed_rows(lengths, inputs=2, targets=1, *, seed=0, mask=0.0, dtype="float64"):
    """Rows of ``len(lengths)`` keys interleaved at random (each key's rows in order):
    ``(keys, x, y)`` with a fraction ``mask`` of the targets NaN."""
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.arange(len(lengths)), lengths)
    rng.shuffle(keys)
    N = len(keys)
    x = rng.standard_normal((N, inputs)).astype(dtype)
    y = (np.sin(np.arange(N) / 3.0)[:, None] + 0.3 * rng.standard_normal((N, targets))).astype(
        dtype
    )
    y[rng.random(y.shape) < mask] = np.nan
    return keys, x, y


def learn_in_chunks(learner, keys, x, y, cuts):
    """``predict_learn`` over the rows cut at ``cuts`` (sorted, may repeat: empty chunks)."""
    edges = [0, *cuts, len(keys)]
    outs = [
        learner.predict_learn(keys[a:b], None, x[a:b], y[a:b]) for a, b in zip(edges, edges[1:])
    ]
    return np.concatenate(outs)


def snapshot(learner):
    """Everything a caller can see: both models' weights, counts, keys and states."""
    keys = learner.keys()
    states = []
    for key in keys:
        state = learner.get_state(key)
        states.append(tuple(np.array(s) for s in (state if isinstance(state, tuple) else (state,))))
    return {
        "encoder": learner.model.state_dict(),
        "decoder": learner.decoder.state_dict(),
        "counts": learner.counts,
        "keys": keys,
        "states": states,
    }


def assert_same_learning(a, b):
    """Two snapshots agree bit for bit."""
    assert a["counts"] == b["counts"]
    assert a["keys"] == b["keys"]
    for part in ("encoder", "decoder"):
        assert a[part].keys() == b[part].keys()
        for name, value in a[part].items():
            worst = float(np.abs(value - b[part][name]).max())
            assert np.array_equal(value, b[part][name]), f"{part} {name} differs by {worst:.3g}"
    for key, s, t in zip(a["keys"], a["states"], b["states"]):
        for p, q in zip(s, t):
            assert np.array_equal(p, q), f"state of key {key!r}"


def torch_weights(rnn, head=None):
    out = {k: v.detach().numpy().copy() for k, v in rnn.state_dict().items()}
    if head is not None:
        out.update({f"head.{k}": v.detach().numpy().copy() for k, v in head.state_dict().items()})
    return out


def torch_rollout(rnn, head, state, first, horizon, feedback):
    """The decoder's ``horizon`` outputs from ``state``, its first input ``first`` (NaN
    read as 0), each later input its previous outputs ``feedback``."""
    inp = torch.nan_to_num(torch.as_tensor(first)).view(1, 1, -1)
    out = []
    for _ in range(horizon):
        h, state = rnn(inp, state)
        y = head(h)
        out.append(y.view(-1))
        inp = y[..., feedback]
    return torch.stack(out)


def torch_seq2seq(encoder, decoder, x, y, horizon, k1, k2, lr, batch=1, clip=None):
    """One series learned as the module doc of :mod:`streamrnn.seq2seq` says, with
    autograd and ``torch.optim.SGD``: ``(outputs, encoder weights, decoder weights)``.

    Rows are taken one at a time: the encoder steps with the weights of the moment,
    the decoder rolls out the prediction, then, when the targets of step ``m + horizon``
    arrive and ``m`` is a multiple of ``k1``, the encoder reruns steps ``a + 1 .. m`` from
    its online state after step ``a = max(0, m - k2)`` and a teacher-forced decoder runs
    from each of its last ``k1`` states. Every ``batch`` windows, the mean loss over their
    labeled entries is stepped, its gradient clipped to a global norm of ``clip`` over
    both networks.
    """
    enc, _ = encoder.to_torch()
    dec, head = decoder.to_torch()
    params = [*enc.parameters(), *dec.parameters(), *head.parameters()]
    opt = torch.optim.SGD(params, lr=lr)
    windows, total, count = 0, 0.0, 0
    L, H = encoder.num_layers, encoder.hidden_size
    zero = torch.zeros(L, 1, H, dtype=torch.float64)
    state = (zero, zero) if encoder.cell == "lstm" else zero
    X, Y = torch.from_numpy(x), torch.from_numpy(y)
    Y0 = torch.nan_to_num(Y)
    feedback = list(range(y.shape[1]))
    online = [state]  # the encoder's state after steps 0, 1, ...
    outs = []
    for r in range(len(x)):
        with torch.no_grad():
            _, state = enc(X[r].view(1, 1, -1), state)
            outs.append(torch_rollout(dec, head, state, Y[r], horizon, feedback).numpy())
        online.append(state)
        m = r + 1 - horizon
        if m < k1 or m % k1:
            continue
        a = max(0, m - k2)
        s, after = online[a], {}
        for j in range(a + 1, m + 1):  # step j reads row j - 1
            _, s = enc(X[j - 1].view(1, 1, -1), s)
            after[j] = s
        for j in range(m - k1 + 1, m + 1):
            inputs = Y0[j - 1 : j - 1 + horizon].unsqueeze(1)  # targets of steps j .. j+h-1
            labels = Y[j : j + horizon].unsqueeze(1)  # ... scored against steps j+1 .. j+h
            yhat = head(dec(inputs, after[j])[0])
            seen = ~torch.isnan(labels)
            total = total + ((yhat - torch.nan_to_num(labels)) ** 2)[seen].sum()
            count += int(seen.sum())
        windows += 1
        if windows % batch:
            continue
        opt.zero_grad()
        (total / count).backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        total, count = 0.0, 0
    return np.stack(outs), torch_weights(enc), torch_weights(dec, head)


def assert_close(got, want, what, rtol=1e-9, atol=1e-12):
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol,
                                   err_msg=f"{what} {name}")  # fmt: skip


# -- against PyTorch -------------------------------------------------------------------------------


@pytest.mark.parametrize("k1, k2, targets", [(4, 4, 1), (2, 5, 2)])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_one_series_learns_as_torch(cell, layers, k1, k2, targets):
    """Plain SGD, batch 1, horizon 2, masked targets: every prequential rollout and both
    networks' weights after every window agree with autograd and torch.optim.SGD."""
    horizon, lr, T = 2, 0.3, 22
    encoder, decoder = make_pair(cell, layers, inputs=2, targets=targets, seed=layers)
    start_enc, start_dec = encoder.state_dict(), decoder.state_dict()
    rng = np.random.default_rng(7)
    x = rng.standard_normal((T, 2))
    y = np.sin(np.arange(T) / 2.0)[:, None] + 0.2 * rng.standard_normal((T, targets))
    y[[5, 11]] = np.nan  # no label there; 0 as the first input of those rows
    y[14, -1] = np.nan
    out_ref, enc_ref, dec_ref = torch_seq2seq(encoder, decoder, x, y, horizon, k1, k2, lr)

    learner = streamrnn.Seq2SeqLearner(encoder, decoder, horizon, tbptt=(k1, k2),
                                       optimizer=optim.SGD(lr=lr))  # fmt: skip
    out = learner.predict_learn(np.zeros(T, np.int64), None, x, y)
    assert out.shape == (T, horizon, targets)
    windows = (T - horizon) // k1
    assert learner.counts["windows"] == learner.counts["updates"] == windows
    np.testing.assert_allclose(out, out_ref, rtol=1e-9, atol=1e-12)
    assert_close(encoder.state_dict(), enc_ref, "encoder")
    assert_close(decoder.state_dict(), dec_ref, "decoder")
    # both networks learned, in place: the decoders' gradients reached the encoder
    for start, model in ((start_enc, encoder), (start_dec, decoder)):
        moved = max(float(np.abs(model.state_dict()[k] - v).max()) for k, v in start.items())
        assert moved > 1e-3
    assert learner.model is encoder and learner.decoder is decoder


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_batches_and_one_clipped_norm_follow_torch(cell):
    """batch=2, k1 < k2, horizon 3: the windows' summed gradients, divided by all their
    labeled entries and clipped to one global norm over both networks, as
    ``clip_grad_norm_`` over the parameters of both; clipping does change the result."""
    horizon, k1, k2, lr, T = 3, 2, 3, 0.5, 25
    encoder, decoder = make_pair(cell, 2, inputs=1, seed=4)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, 1))
    y = np.cos(np.arange(T) / 2.0)[:, None] + 0.2 * rng.standard_normal((T, 1))
    y[9] = np.nan
    unclipped = torch_seq2seq(encoder, decoder, x, y, horizon, k1, k2, lr, batch=2)
    out_ref, enc_ref, dec_ref = torch_seq2seq(encoder, decoder, x, y, horizon, k1, k2, lr,
                                              batch=2, clip=0.05)  # fmt: skip
    learner = streamrnn.Seq2SeqLearner(encoder, decoder, horizon, tbptt=(k1, k2), batch=2,
                                       optimizer=optim.SGD(lr=lr, clip_norm=0.05))  # fmt: skip
    out = learner.predict_learn(np.zeros(T, np.int64), None, x, y)
    assert learner.counts["updates"] == (T - horizon) // k1 // 2
    np.testing.assert_allclose(out, out_ref, rtol=1e-9, atol=1e-12)
    assert_close(encoder.state_dict(), enc_ref, "encoder")
    assert_close(decoder.state_dict(), dec_ref, "decoder")
    gap = max(float(np.abs(dec_ref[k] - unclipped[2][k]).max()) for k in dec_ref)
    assert gap > 1e-3


def test_non_finite_updates_are_skipped_counted_and_warned():
    """A loss that overflows skips the update and keeps both networks' weights; the
    learner warns, as :class:`streamrnn.OnlineLearner` does."""
    learner = make_learner("gru", horizon=1, tbptt=(2, 2), optimizer=optim.SGD(lr=0.1))
    before = snapshot(learner)
    y = np.full((6, 1), 1e200)  # finite targets whose squared error overflows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        learner.learn(np.zeros(6, np.int64), None, np.ones((6, 2)), y)
    assert learner.counts == {"updates": 0, "skipped": 2, "labels": 0, "windows": 2}
    after = snapshot(learner)
    for part in ("encoder", "decoder"):
        for name, value in after[part].items():
            assert np.array_equal(value, before[part][name]), f"{part} {name}"
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("2 update(s) skipped" in m for m in messages), f"warnings: {messages}"


def test_windows_without_labels_make_no_update():
    """Windows whose targets are all missing close, but nothing is learned or skipped;
    the next window with a label learns from it alone."""
    learner = make_learner("lstm", horizon=2, tbptt=(2, 3))
    before = snapshot(learner)
    y = np.full((9, 1), np.nan)
    out = learner.predict_learn(np.zeros(9, np.int64), None, np.ones((9, 2)), y)
    assert learner.counts == {"updates": 0, "skipped": 0, "labels": 0, "windows": 3}
    assert np.isfinite(out).all()
    after = snapshot(learner)
    for part in ("encoder", "decoder"):
        for name, value in after[part].items():
            assert np.array_equal(value, before[part][name]), f"{part} {name}"
    learner.learn([0], None, np.ones((1, 2)), np.zeros((1, 1)))  # the next window has one
    assert learner.counts == {"updates": 1, "skipped": 0, "labels": 1, "windows": 4}


def test_encoder_head_is_not_used():
    """An encoder with a head learns and predicts as the same encoder without one; the
    head itself is never trained."""
    plain, decoder = make_pair("gru", inputs=2, seed=3)
    headed = make_model("gru", 2, 3, 1, output_size=4, dtype="float64", seed=9)
    head_before = {k: v for k, v in headed.state_dict().items() if k.startswith("head.")}
    headed.load_state_dict({**plain.state_dict(), **head_before})
    keys, x, y = keyed_rows([20, 15], seed=4)
    outs, learned = [], []
    for encoder in (plain, headed):
        learner = streamrnn.Seq2SeqLearner(encoder, decoder.copy(), 2, tbptt=(2, 4),
                                           optimizer=optim.SGD(lr=0.2))  # fmt: skip
        outs.append(learner.predict_learn(keys, None, x, y))
        learned.append((encoder.state_dict(), learner.decoder.state_dict()))
    assert np.array_equal(outs[0], outs[1])
    for name, value in learned[0][0].items():
        assert np.array_equal(value, learned[1][0][name]), name
    for name, value in learned[0][1].items():
        assert np.array_equal(value, learned[1][1][name]), name
    for name, value in head_before.items():
        assert np.array_equal(headed.state_dict()[name], value), name


# -- chunks ----------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cell=st.sampled_from(["gru", "lstm", "rnn_tanh"]),
    layers=st.integers(1, 2),
    horizon=st.integers(1, 3),
    k1=st.integers(1, 3),
    extra=st.integers(1, 3),
    batch=st.integers(1, 3),
    lengths=st.lists(st.integers(1, 20), min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    adam=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_cuts_learn_the_same(cell, layers, horizon, k1, extra, batch, lengths, cuts,
                                    adam, seed):  # fmt: skip
    """Interleaved keys, masked targets, k1 < k2, any batch: cut anywhere (empty chunks
    too), the outputs, both networks' weights, the states and the counts are the same
    bit for bit as in one chunk."""
    keys, x, y = keyed_rows(lengths, targets=2, seed=seed, mask=0.2)
    cuts = sorted(min(c, len(keys)) for c in cuts)

    def fresh():
        opt = optim.Adam(lr=0.02) if adam else optim.SGD(lr=0.1, momentum=0.5)
        return make_learner(cell, layers, targets=2, horizon=horizon, tbptt=(k1, k1 + extra),
                            batch=batch, optimizer=opt)  # fmt: skip

    whole, parts = fresh(), fresh()
    out = whole.predict_learn(keys, None, x, y)
    assert out.shape == (len(keys), horizon, 2)
    assert np.array_equal(learn_in_chunks(parts, keys, x, y, cuts), out)
    assert_same_learning(snapshot(parts), snapshot(whole))


def test_more_updates_in_a_chunk_than_rows_over_k1():
    """Three keys each close a window in the last chunk of three rows: three updates in
    a chunk of three rows, more than ``rows // k1 + 1 = 2``. Cut there or not, the
    learning is the same (each update a plain SGD step of ``lr``)."""
    keys = np.tile([0, 1, 2], 3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 1))
    y = rng.standard_normal((9, 1))

    def fresh():
        return make_learner("gru", inputs=1, horizon=1, tbptt=(2, 2), optimizer=optim.SGD(lr=0.1))

    whole, parts = fresh(), fresh()
    out = whole.predict_learn(keys, None, x, y)
    assert whole.counts["updates"] == 3
    got = learn_in_chunks(parts, keys, x, y, [6])  # the last chunk: rows 6, 7, 8
    assert np.array_equal(got, out)
    assert_same_learning(snapshot(parts), snapshot(whole))


def test_float32_is_the_same_in_chunks_and_close_to_float64():
    """float32 learns bit for bit the same however cut, and stays near float64 learning
    from the same weights."""
    keys, x, y = keyed_rows([16, 13], seed=11, mask=0.1)
    enc32, dec32 = make_pair("lstm", 2, dtype="float32", seed=5)
    enc64, dec64 = make_pair("lstm", 2, dtype="float64", seed=5)
    enc64.load_state_dict(enc32.state_dict())  # float32 values, exactly
    dec64.load_state_dict(dec32.state_dict())
    results = []
    for encoder, decoder in ((enc32, dec32), (enc64, dec64)):
        whole, parts = (streamrnn.Seq2SeqLearner(encoder.copy(), decoder.copy(), 2, tbptt=(2, 4),
                                                 batch=2, optimizer=optim.SGD(lr=0.2))
                        for _ in range(2))  # fmt: skip
        xd, yd = x.astype(encoder.dtype), y.astype(encoder.dtype)
        out = whole.predict_learn(keys, None, xd, yd)
        assert out.dtype == encoder.dtype
        assert np.array_equal(learn_in_chunks(parts, keys, xd, yd, [5, 5, 17]), out)
        assert_same_learning(snapshot(parts), snapshot(whole))
        results.append((out, snapshot(whole)))
    (out32, learned32), (out64, learned64) = results
    assert learned32["counts"] == learned64["counts"] and learned32["counts"]["updates"] >= 5
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    for part in ("encoder", "decoder"):
        assert_close(learned32[part], learned64[part], part, rtol=1e-4, atol=1e-5)


# -- forecasts -------------------------------------------------------------------------------------


def test_forecast_repeats_the_last_rows_prediction():
    """Right after a chunk that made no update, each key's forecast is its last row's
    prediction (same state, same first input, NaN read as 0); shorter and longer
    horizons roll out the same steps."""
    learner = make_learner("gru", horizon=3, tbptt=(3, 5), optimizer=optim.SGD(lr=0.1))
    keys, x, y = keyed_rows([12, 9], seed=2)
    learner.learn(keys, None, x, y)
    updates = learner.counts["updates"]
    assert updates > 0
    last_y = np.array([[0.5], [np.nan]])  # key 1's last targets are missing
    pred = learner.predict_learn([0, 1], None, x[:2], last_y)
    assert learner.counts["updates"] == updates  # nothing learned since the predictions
    assert np.array_equal(learner.forecast([0, 1], 3), pred)
    assert np.array_equal(learner.forecast([1, 0]), pred[::-1])
    assert np.array_equal(learner.forecast([0, 1], 1), pred[:, :1])
    longer = learner.forecast([1], 5)
    assert longer.shape == (1, 5, 1)
    assert np.array_equal(longer[:, :3], pred[1:])
    assert learner.counts["updates"] == updates and sorted(learner.keys()) == [0, 1]


def test_forecast_rolls_the_decoder_as_torch():
    """The forecast from a key's state is the decoder fed back its own outputs."""
    learner = make_learner("lstm", layers=2, targets=2, horizon=2, tbptt=(2, 3))
    keys, x, y = keyed_rows([10], targets=2, seed=3)
    learner.learn(keys, None, x, y)
    h, c = learner.get_state(0)
    dec, head = learner.decoder.to_torch()
    state = (torch.from_numpy(h)[:, None], torch.from_numpy(c)[:, None])
    with torch.no_grad():
        want = torch_rollout(dec, head, state, torch.from_numpy(y[-1]), 4, [0, 1]).numpy()
    np.testing.assert_allclose(learner.forecast([0], 4)[0], want, rtol=1e-10, atol=1e-12)


def test_forecast_after_reset_starts_from_the_zero_state():
    """After ``reset``, a forecast rolls the decoder from the zero state, its first input
    the key's last targets (or nothing, 0): not the targets of some older step."""
    learner = make_learner("gru", horizon=1, tbptt=(4, 4), optimizer=optim.SGD(lr=0.1))
    y = np.arange(1.0, 8.0)[:, None]  # steps 1 .. 7; the last targets are 7
    learner.learn(np.zeros(7, np.int64), None, np.ones((7, 2)), y)
    learner.reset(0)
    dec, head = learner.decoder.to_torch()
    zero = torch.zeros(1, 1, 3, dtype=torch.float64)
    got = learner.forecast([0], 2)[0]
    with torch.no_grad():
        rolls = {v: torch_rollout(dec, head, zero, torch.tensor([v], dtype=torch.float64), 2,
                                  [0]).numpy() for v in (7.0, 0.0, 6.0)}  # fmt: skip
    first = [v for v, roll in rolls.items() if np.allclose(got, roll, rtol=1e-12, atol=1e-14)]
    assert first and first[0] in (7.0, 0.0), f"the forecast starts from the targets {first}"


# -- saving ----------------------------------------------------------------------------------------


def test_save_load_and_pickle_continue_bit_for_bit(tmp_path):
    """Saved in the middle of a batch (one window's gradients waiting) with Adam's
    moments: the reloaded and the unpickled learners go on exactly as the original."""
    keys, x, y = keyed_rows([25, 18], seed=6, mask=0.1)
    learner = make_learner("lstm", horizon=2, tbptt=(2, 4), batch=2)
    learner.learn(keys[:27], None, x[:27], y[:27])
    assert learner.counts["windows"] % 2 == 1  # a window waits for the next update
    path = tmp_path / "s2s.learner"
    learner.save(path)
    loaded = streamrnn.Seq2SeqLearner.load(path)
    copied = pickle.loads(pickle.dumps(learner))
    assert_same_learning(snapshot(loaded), snapshot(learner))
    out = learner.predict_learn(keys[27:], None, x[27:], y[27:])
    for other in (loaded, copied):
        assert np.array_equal(other.predict_learn(keys[27:], None, x[27:], y[27:]), out)
        assert_same_learning(snapshot(other), snapshot(learner))
        assert np.array_equal(other.forecast([0, 1], 3), learner.forecast([0, 1], 3))
    assert learner.counts["updates"] > 5


def test_weights_loaded_into_either_model_are_learned_from():
    """After ``load_state_dict`` on the encoder or the decoder, the learner learns from
    the new weights, as a copy made after the load (which rebuilds everything) does."""
    keys, x, y = keyed_rows([14, 14], seed=8)
    for part in ("model", "decoder"):
        learner = make_learner("gru", horizon=2, tbptt=(2, 3), optimizer=optim.SGD(lr=0.2))
        learner.learn(keys[:10], None, x[:10], y[:10])
        model = getattr(learner, part)
        other = make_model("gru", model.input_size, 3, 1, output_size=model.output_size,
                           dtype="float64", seed=42)  # fmt: skip
        model.load_state_dict(other.state_dict())
        copied = pickle.loads(pickle.dumps(learner))
        out = learner.predict_learn(keys[10:], None, x[10:], y[10:])
        assert np.array_equal(copied.predict_learn(keys[10:], None, x[10:], y[10:]), out)
        assert_same_learning(snapshot(copied), snapshot(learner))


# -- losses and feeds ------------------------------------------------------------------------------


@pytest.mark.parametrize("targets", [1, 2])
def test_pinball_decoder_feeds_back_its_middle_quantile(targets):
    """Three quantiles per target: outputs ``(N, horizon, 3 * targets)``; a rollout feeds
    each target's median forecast (output ``3 j + 1``) back into input ``j``."""
    horizon = 3
    learner = make_learner("gru", targets=targets, outputs=3 * targets, horizon=horizon,
                           tbptt=(3, 4), loss=Pinball((0.1, 0.5, 0.9)))  # fmt: skip
    encoder = learner.model.copy()
    dec, head = learner.decoder.to_torch()
    keys, x, y = keyed_rows([20], targets=targets, seed=9, mask=0.1)
    out = learner.predict_learn(keys, None, x, y)
    assert out.shape == (20, horizon, 3 * targets)
    assert np.isfinite(out).all()
    assert learner.counts["windows"] == (20 - horizon) // 3
    # the first rows, before any update, against torch from the initial weights
    enc, _ = encoder.to_torch()
    state = torch.zeros(1, 1, 3, dtype=torch.float64)
    middle = [3 * j + 1 for j in range(targets)]
    with torch.no_grad():
        for r in range(horizon + 3):
            _, state = enc(torch.from_numpy(x[r]).view(1, 1, -1), state)
            want = torch_rollout(dec, head, state, torch.from_numpy(y[r]), horizon, middle)
            want = np.sort(want.numpy().reshape(horizon, targets, 3), axis=-1)  # never crossed
            np.testing.assert_allclose(out[r], want.reshape(horizon, -1), rtol=1e-10, atol=1e-12)


def sensor_frame(n=24, seed=0, gaps=0.1):
    """Three sensors at very different levels, in time order, a few values missing."""
    rng = np.random.default_rng(seed)
    keys = np.repeat(np.array(["north", "south", "east"]), n)
    times = np.tile(np.arange(n), 3)
    values = np.repeat([10.0, -3.0, 250.0], n) + np.cumsum(rng.standard_normal(3 * n))
    missing = rng.random(3 * n) < gaps
    missing[::n] = False  # each sensor starts with a value
    values[missing] = np.nan
    frame = pd.DataFrame({"key": keys, "time": times, "value": values})
    return frame.sort_values(["time", "key"], kind="stable").reset_index(drop=True)


def scaling_feed():
    schema = feeds.Schema(key="key", time="time", features=["value"], targets=["value"])
    return feeds.Feed(schema, scale="per_key", missing="ffill", dtype="float64")


def feed_learner(feed=None):
    return make_learner("gru", inputs=1, horizon=2, tbptt=(3, 5), feed=feed)


def test_feed_outputs_are_in_data_units():
    """Through a per-key scaling feed, every output (each row, each horizon step) is the
    scaled output times the row's scale plus its location; forecasts too."""
    frame = sensor_frame()
    learner = feed_learner(scaling_feed())
    out = learner.predict_learn(frame)
    chunk = scaling_feed()(frame)
    bare = feed_learner()
    scaled = bare.predict_learn(chunk.keys, chunk.times, chunk.x, chunk.y)
    assert out.shape == scaled.shape == (len(frame), 2, 1)
    assert np.array_equal(out, scaled * chunk.y_scale[:, None] + chunk.y_loc[:, None])
    assert_same_learning(snapshot(learner), snapshot(bare))
    assert learner.counts["updates"] >= 6
    means = pd.Series(out[:, :, 0].mean(axis=1)).groupby(frame["key"].to_numpy()).mean()
    assert means["east"] > 200 and abs(means["south"] + 3) < 20
    names = ["east", "north"]
    loc, scale = learner.feed.target_scaling(names)
    fc = learner.forecast(names, 3)
    assert np.array_equal(fc, bare.forecast(names, 3) * scale[:, None] + loc[:, None])


def test_feed_chunks_and_empty_chunks():
    """Cut anywhere, empty frames included, the outputs stack into those of one chunk:
    an empty chunk gives ``(0, horizon, outputs)``, as empty arrays do, and so does a
    flush with nothing held back."""
    frame = sensor_frame(seed=1)
    whole = feed_learner(scaling_feed())
    out = whole.predict_learn(frame)
    parts = feed_learner(scaling_feed())
    none = parts.predict_learn(np.zeros(0, np.int64), None, np.zeros((0, 1)), np.zeros((0, 1)))
    assert none.shape == (0, 2, 1)
    cuts = [0, 1, 1, 17, 40, 41, len(frame)]
    outs = [parts.predict_learn(frame.iloc[a:b]) for a, b in zip(cuts, cuts[1:])]
    assert np.array_equal(np.concatenate(outs[:1] + outs[2:]), out)
    assert_same_learning(snapshot(parts), snapshot(whole))
    assert outs[1].shape == (0, 2, 1), f"an empty frame gave shape {outs[1].shape}"
    assert parts.flush().shape == (0, 2, 1)


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoder, decoder, named",
    [
        (("gru", 3, 1, "float64"), ("lstm", 3, 1, "float64"), "cell"),
        (("rnn_tanh", 3, 1, "float64"), ("rnn_relu", 3, 1, "float64"), "cell"),
        (("gru", 3, 1, "float64"), ("gru", 4, 1, "float64"), "hidden_size"),
        (("lstm", 3, 1, "float64"), ("lstm", 3, 2, "float64"), "num_layers"),
        (("gru", 3, 1, "float64"), ("gru", 3, 1, "float32"), "dtype"),
        (("gru", 3, 2, "float64"), ("lstm", 5, 2, "float32"), "cell, hidden_size, dtype"),
    ],
)
def test_encoder_and_decoder_must_agree(encoder, decoder, named):
    """The decoder starts from the encoder's state: the error names what differs."""
    cell, hidden, layers, dtype = encoder
    encoder = make_model(cell, 2, hidden, layers, dtype=dtype)
    cell, hidden, layers, dtype = decoder
    decoder = make_model(cell, 1, hidden, layers, output_size=1, dtype=dtype)
    with pytest.raises(streamrnn.ConfigError, match=f"differ in {named}$"):
        streamrnn.Seq2SeqLearner(encoder, decoder, 2)


def test_configuration_errors():
    encoder = streamrnn.GRU(2, 3, dtype="float64")
    decoder = streamrnn.GRU(1, 3, output_size=1, dtype="float64")
    # the decoder reads the targets: as many as its outputs, or outputs / quantiles
    cases = [
        (2, 1, "mse", "input_size=1, got 2"),
        (1, 2, "mse", "input_size=2, got 1"),
        (1, 4, Pinball((0.2, 0.8)), "input_size=2, got 1"),
    ]
    for inputs, outputs, loss, want in cases:
        other = streamrnn.GRU(inputs, 3, output_size=outputs, dtype="float64")
        with pytest.raises(streamrnn.ConfigError, match=want):
            streamrnn.Seq2SeqLearner(encoder, other, 2, loss=loss)
    for horizon in (0, -1):
        with pytest.raises(streamrnn.ConfigError, match="horizon"):
            streamrnn.Seq2SeqLearner(encoder, decoder, horizon)
    with pytest.raises(streamrnn.ConfigError, match="decoder must be a streamrnn"):
        streamrnn.Seq2SeqLearner(encoder, torch.nn.GRU(1, 3), 2)
    with pytest.raises(streamrnn.ConfigError, match="bias=True"):
        streamrnn.Seq2SeqLearner(streamrnn.GRU(2, 3, bias=False, dtype="float64"), decoder, 2)
    with pytest.raises(streamrnn.ConfigError, match="k2 >= k1"):
        streamrnn.Seq2SeqLearner(encoder, decoder, 2, tbptt=(4, 2))


def test_input_errors_change_nothing():
    learner = make_learner("gru", horizon=2, tbptt=(2, 3))
    keys, x, y = keyed_rows([6], seed=1)
    learner.learn(keys, None, x, y)
    before = snapshot(learner)
    with pytest.raises(streamrnn.InputError, match="predict_learn"):
        learner.predict([0], None, x[:1])
    with pytest.raises(streamrnn.InputError, match="future= is not used"):
        learner.forecast([0], 3, future=np.zeros((1, 2, 2)))
    with pytest.raises(streamrnn.InputError, match=r"y has shape \(3, 2\), expected \(3, 1\)"):
        learner.predict_learn([0, 0, 0], None, x[:3], np.zeros((3, 2)))
    with pytest.raises(streamrnn.InputError, match="needs targets"):
        learner.predict_learn([0], None, x[:1])
    with pytest.raises(streamrnn.UnknownKeyError):
        learner.forecast([5], 2)
    with pytest.raises(streamrnn.ConfigError, match="horizon"):
        learner.forecast([0], 0)
    assert_same_learning(snapshot(learner), before)


def test_update_raises_and_adds_no_key():
    """``update`` (a Stream's) cannot run a Seq2SeqLearner: it raises, and, as every
    error of a stream, leaves the learner as it was (no new key)."""
    learner = make_learner("gru", horizon=2, tbptt=(2, 3))
    with pytest.raises(streamrnn.InputError, match="predict_learn"):
        learner.update([7], None, np.ones((1, 2)))
    assert learner.keys() == [], f"the failed update left keys {learner.keys()}"
