"""Optimizers, clipping and schedules against torch.optim, step by step."""

import pickle

import numpy as np
import pytest
import torch
from numba import njit

from streamrnn.errors import ConfigError
from streamrnn.optim import (
    HYPER_CLIP_NORM,
    HYPER_SIZE,
    KIND_ADAM,
    KIND_ADAMW,
    KIND_SGD,
    SGD,
    Adam,
    AdamW,
    Constant,
    ExponentialDecay,
    WarmUp,
    apply_update,
    clip_scale,
    grad_norm,
)

N = 300
SEGS = np.array([[3, 90], [110, 1], [130, 150]], dtype=np.int64)
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-13)}

OPTIMIZERS = {
    "sgd": (
        lambda: SGD(lr=0.05),
        lambda ps: torch.optim.SGD(ps, lr=0.05, foreach=False),
    ),
    "sgd_momentum": (
        lambda: SGD(lr=0.05, momentum=0.9),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=False),
    ),
    "sgd_nesterov": (
        lambda: SGD(lr=0.05, momentum=0.8, nesterov=True),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, foreach=False),
    ),
    "sgd_weight_decay": (
        lambda: SGD(lr=0.05, momentum=0.5, weight_decay=0.1),
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.5, weight_decay=0.1, foreach=False),
    ),
    "adam": (
        lambda: Adam(lr=0.01),
        lambda ps: torch.optim.Adam(ps, lr=0.01, foreach=False),
    ),
    "adam_weight_decay": (
        lambda: Adam(lr=0.01, betas=(0.3, 0.99), eps=1e-6, weight_decay=0.2),
        lambda ps: torch.optim.Adam(
            ps, lr=0.01, betas=(0.3, 0.99), eps=1e-6, weight_decay=0.2, foreach=False
        ),
    ),
    "adamw": (
        lambda: AdamW(lr=0.01, weight_decay=0.3),
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.3, foreach=False),
    ),
}


def trained_mask():
    mask = np.zeros(N, dtype=bool)
    for start, length in SEGS:
        mask[start : start + length] = True
    return mask


def run_against_torch(ours, make_torch, dtype, seed, steps=20, make_sched=None, clip_every=None):
    """Run both for ``steps`` updates and compare after every one.

    Returns how many updates were clipped (``clip_every``: max_norm for torch).
    """
    rng = np.random.default_rng(seed)
    mask = trained_mask()
    P = rng.standard_normal(N).astype(dtype)
    P[~mask] = 7.0  # padding
    P0 = P.copy()
    M1 = np.zeros(N if ours.slots >= 1 else 0, dtype=dtype)
    M2 = np.zeros(N if ours.slots >= 2 else 0, dtype=dtype)
    params = [torch.tensor(P[s : s + n], requires_grad=True) for s, n in SEGS]
    topt = make_torch(params)
    sched = make_sched(topt) if make_sched else None
    kind, hyper = ours.kernel_args()
    clipped = 0
    for t in range(1, steps + 1):
        G = (rng.standard_normal(N) * rng.uniform(0.5, 2.0)).astype(dtype)
        G[~mask] = np.nan  # never read
        G_before = G.copy()
        for p, (s, n) in zip(params, SEGS):
            p.grad = torch.tensor(G[s : s + n])
        if clip_every is not None:
            torch.nn.utils.clip_grad_norm_(params, clip_every)
        lr_torch = topt.param_groups[0]["lr"]
        topt.step()
        if sched is not None:
            sched.step()

        norm = grad_norm(G, SEGS)
        scale = clip_scale(hyper, norm)
        clipped += scale < 1.0
        lr = ours.lr_at(t)
        np.testing.assert_allclose(lr, lr_torch, rtol=1e-12)
        apply_update(kind, hyper, t, lr, scale, P, G, M1, M2, SEGS)

        np.testing.assert_array_equal(G, G_before)
        np.testing.assert_array_equal(P[~mask], P0[~mask])
        for M in (M1, M2):
            assert M.size == 0 or not M[~mask].any()
        for p, (s, n) in zip(params, SEGS):
            want = p.detach().numpy()
            np.testing.assert_allclose(P[s : s + n], want, **TOL[dtype], err_msg=f"step {t}")
            state = topt.state[p]
            if "momentum_buffer" in state:
                buf = state["momentum_buffer"].numpy()
                np.testing.assert_allclose(M1[s : s + n], buf, **TOL[dtype])
            if "exp_avg" in state:
                np.testing.assert_allclose(M1[s : s + n], state["exp_avg"].numpy(), **TOL[dtype])
                np.testing.assert_allclose(M2[s : s + n], state["exp_avg_sq"].numpy(), **TOL[dtype])
    return clipped


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_matches_torch_after_every_update(name, dtype):
    ours, make_torch = OPTIMIZERS[name]
    run_against_torch(ours(), make_torch, dtype, seed=len(name))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clipped_adam_matches_torch(dtype):
    # gradients of norm about 8 to 34: some updates clip, others do not
    ours = Adam(lr=0.01, clip_norm=16.0)
    clipped = run_against_torch(
        ours, lambda ps: torch.optim.Adam(ps, lr=0.01, foreach=False), dtype, 5, clip_every=16.0
    )
    assert 0 < clipped < 20


def test_clipped_sgd_momentum_matches_torch():
    ours = SGD(lr=0.05, momentum=0.9, clip_norm=16.0)
    clipped = run_against_torch(
        ours,
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=False),
        np.float64,
        6,
        clip_every=16.0,
    )
    assert 0 < clipped < 20


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scheduled_adamw_matches_torch(dtype):
    ours = AdamW(lr=0.02, weight_decay=0.1, schedule=WarmUp(5, 0.2, ExponentialDecay(0.9)))

    def make_sched(opt):
        return torch.optim.lr_scheduler.SequentialLR(
            opt,
            [
                torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.2, total_iters=5),
                torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
            ],
            milestones=[5],
        )

    run_against_torch(
        ours,
        lambda ps: torch.optim.AdamW(ps, lr=0.02, weight_decay=0.1, foreach=False),
        dtype,
        7,
        make_sched=make_sched,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_matches_clip_grad_norm(max_norm, dtype):
    rng = np.random.default_rng(3)
    G = rng.standard_normal(N).astype(dtype)
    G[~trained_mask()] = 1e30  # padding: ignored
    grads = [torch.tensor(G[s : s + n]) for s, n in SEGS]
    params = [torch.zeros(n, dtype=grads[0].dtype, requires_grad=True) for _, n in SEGS]
    for p, g in zip(params, grads):
        p.grad = g
    total = torch.nn.utils.clip_grad_norm_(params, max_norm).item()

    norm = grad_norm(G, SEGS)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(norm, total, rtol=rtol)
    _, hyper = SGD(clip_norm=max_norm).kernel_args()
    scale = clip_scale(hyper, norm)
    assert (scale < 1.0) == (max_norm < total)
    for p, (s, n) in zip(params, SEGS):
        want = p.grad.numpy()
        got = G[s : s + n] * dtype(scale)
        np.testing.assert_allclose(got, want, rtol=rtol)


def test_no_clipping_without_clip_norm():
    _, hyper = Adam().kernel_args()
    assert hyper[HYPER_CLIP_NORM] == 0.0
    assert clip_scale(hyper, 1e30) == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_grad_norm_is_non_finite_for_a_non_finite_gradient(bad, dtype):
    G = np.ones(N, dtype=dtype)
    G[~trained_mask()] = bad
    assert grad_norm(G, SEGS) == pytest.approx(np.sqrt(trained_mask().sum()), rel=1e-12)
    G[SEGS[2, 0] + 7] = bad
    norm = grad_norm(G, SEGS)
    if np.isnan(bad):
        assert np.isnan(norm)
    else:
        assert norm == np.inf


def test_grad_norm_survives_overflowing_squares():
    G = np.array([3e200, 0.0, 4e200])
    segs = np.array([[0, 3]])
    assert grad_norm(G, segs) == pytest.approx(5e200, rel=1e-15)
    G[1] = np.nan
    assert np.isnan(grad_norm(G, segs))
    G[1] = -np.inf
    assert grad_norm(G, segs) == np.inf


def test_grad_norm_of_nothing_is_zero():
    assert grad_norm(np.ones(3), np.zeros((0, 2), dtype=np.int64)) == 0.0


def lrs_of(make_sched, steps, lr=0.1):
    """The learning rate torch uses for updates 1..steps."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = make_sched(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


LR = torch.optim.lr_scheduler
SCHEDULES = {
    "exponential": (
        ExponentialDecay(0.9),
        lambda o: LR.ExponentialLR(o, gamma=0.9),
    ),
    "step": (
        ExponentialDecay(0.5, every=3),
        lambda o: LR.StepLR(o, step_size=3, gamma=0.5),
    ),
    "warm_up": (
        WarmUp(6, start_factor=0.25),
        lambda o: LR.LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=6),
    ),
    "warm_up_then_exponential": (
        WarmUp(4, start_factor=0.1, then=ExponentialDecay(0.8)),
        lambda o: LR.SequentialLR(
            o,
            [LR.LinearLR(o, start_factor=0.1, total_iters=4), LR.ExponentialLR(o, gamma=0.8)],
            milestones=[4],
        ),
    ),
    "warm_up_then_step": (
        WarmUp(3, start_factor=0.5, then=ExponentialDecay(0.7, every=4)),
        lambda o: LR.SequentialLR(
            o,
            [LR.LinearLR(o, start_factor=0.5, total_iters=3), LR.StepLR(o, 4, gamma=0.7)],
            milestones=[3],
        ),
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(name):
    schedule, make_sched = SCHEDULES[name]
    opt = SGD(lr=0.1, schedule=schedule)
    want = lrs_of(make_sched, 30)
    got = [opt.lr_at(t) for t in range(1, 31)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_constant_schedule_and_no_schedule():
    assert Adam(lr=0.3).lr_at(50) == 0.3
    assert Adam(lr=0.3, schedule=Constant()).lr_at(50) == 0.3
    assert Constant().factor(1) == 1.0


def test_kernel_args_and_slots():
    cases = [
        (SGD(), KIND_SGD, 0),
        (SGD(momentum=0.5), KIND_SGD, 1),
        (Adam(), KIND_ADAM, 2),
        (AdamW(), KIND_ADAMW, 2),
    ]
    for opt, kind, slots in cases:
        k, hyper = opt.kernel_args()
        assert (k, opt.slots) == (kind, slots)
        assert hyper.dtype == np.float64 and hyper.shape == (HYPER_SIZE,)


def test_kernels_run_inside_compiled_code():
    @njit
    def learn(kind, hyper, lr, P, G, M1, M2, segs, steps):
        for t in range(1, steps + 1):
            scale = clip_scale(hyper, grad_norm(G, segs))
            apply_update(kind, hyper, t, lr, scale, P, G, M1, M2, segs)

    opt = Adam(lr=0.01, clip_norm=1.0)
    kind, hyper = opt.kernel_args()
    P, G = np.ones(N), np.full(N, 0.5)
    M1, M2 = np.zeros(N), np.zeros(N)
    learn(kind, hyper, 0.01, P, G, M1, M2, SEGS, 3)
    P2, M12, M22 = np.ones(N), np.zeros(N), np.zeros(N)
    for t in (1, 2, 3):
        apply_update(
            kind, hyper, t, 0.01, clip_scale(hyper, grad_norm(G, SEGS)), P2, G, M12, M22, SEGS
        )
    np.testing.assert_array_equal(P, P2)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: SGD(lr=0), "lr"),
        (lambda: SGD(lr=-1), "lr"),
        (lambda: SGD(lr=np.nan), "lr"),
        (lambda: SGD(lr="0.1"), "lr"),
        (lambda: SGD(lr=True), "lr"),
        (lambda: SGD(momentum=-0.1), "momentum"),
        (lambda: SGD(weight_decay=np.inf), "weight_decay"),
        (lambda: SGD(nesterov=True), "nesterov"),
        (lambda: SGD(momentum=0.9, nesterov=1), "nesterov"),
        (lambda: SGD(clip_norm=0), "clip_norm"),
        (lambda: SGD(schedule=0.9), "schedule"),
        (lambda: Adam(lr=np.inf), "lr"),
        (lambda: Adam(betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda: Adam(betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda: Adam(betas=0.9), "betas"),
        (lambda: Adam(betas=(0.9, 0.99, 0.9)), "betas"),
        (lambda: Adam(eps=-1e-8), "eps"),
        (lambda: Adam(weight_decay=-0.1), "weight_decay"),
        (lambda: Adam(clip_norm=-1.0), "clip_norm"),
        (lambda: AdamW(weight_decay=None), "weight_decay"),
        (lambda: AdamW(schedule=Constant), "schedule"),
        (lambda: ExponentialDecay(0.0), "gamma"),
        (lambda: ExponentialDecay(0.9, every=0), "every"),
        (lambda: ExponentialDecay(0.9, every=1.5), "every"),
        (lambda: WarmUp(0), "steps"),
        (lambda: WarmUp(5, start_factor=0.0), "start_factor"),
        (lambda: WarmUp(5, start_factor=1.5), "start_factor"),
        (lambda: WarmUp(5, then="exp"), "then"),
        (lambda: SGD().lr_at(0), "t"),
        (lambda: Constant().factor(1.0), "t"),
    ],
)
def test_bad_arguments_name_the_argument(make, name):
    with pytest.raises(ConfigError, match=rf"^{name}\W"):
        make()


ALL = [
    SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, clip_norm=2.0),
    Adam(lr=0.01, betas=(0.8, 0.99), schedule=ExponentialDecay(0.9, every=10)),
    AdamW(clip_norm=1.0, schedule=WarmUp(10, then=ExponentialDecay(0.99))),
]


@pytest.mark.parametrize("opt", ALL, ids=repr)
def test_pickle_round_trip(opt):
    back = pickle.loads(pickle.dumps(opt))
    assert type(back) is type(opt) and repr(back) == repr(opt)
    kind, hyper = back.kernel_args()
    assert kind == opt.kernel_args()[0]
    np.testing.assert_array_equal(hyper, opt.kernel_args()[1])
    assert [back.lr_at(t) for t in range(1, 40)] == [opt.lr_at(t) for t in range(1, 40)]


@pytest.mark.parametrize("opt", ALL, ids=repr)
def test_clone(opt):
    copy = opt.clone()
    assert copy is not opt and type(copy) is type(opt) and repr(copy) == repr(opt)
    if opt.schedule is not None:
        assert copy.schedule is not opt.schedule
    np.testing.assert_array_equal(copy.kernel_args()[1], opt.kernel_args()[1])


def test_repr_and_stored_arguments():
    opt = Adam(lr=1, betas=[0.5, 0.9])
    assert (opt.lr, opt.betas, opt.schedule) == (1.0, (0.5, 0.9), None)
    assert repr(opt) == (
        "Adam(lr=1.0, betas=(0.5, 0.9), eps=1e-08, weight_decay=0.0, clip_norm=None, schedule=None)"
    )
    assert repr(WarmUp(3)) == "WarmUp(steps=3, start_factor=0.1, then=None)"
