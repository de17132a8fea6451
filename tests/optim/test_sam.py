"""SAM/ASAM: closed forms, exact restore, frozen params, accumulation, DDP, checkpoints."""

from __future__ import annotations

import io
import os
import socket
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from knowlearn.optim import SAM, SAMConfigError, check_precision, sam_step

RHO = 0.05


def _mlp(seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1)).to(dtype)


def _batch(step: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(n, 4, generator=g)
    return x, x.sum(dim=1, keepdim=True).sin() + 0.1 * torch.randn(n, 1, generator=g)


def _mse(model: nn.Module) -> Callable[[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    return lambda mb: (model(mb[0]) - mb[1]).pow(2).mean()


def _split(batch: tuple[torch.Tensor, torch.Tensor], k: int) -> list[tuple[torch.Tensor, ...]]:
    return list(zip(batch[0].split(k), batch[1].split(k), strict=True))


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _adamw(model: nn.Module) -> torch.optim.AdamW:
    return torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)


# --- reduces to the base optimizer / closed forms -------------------------------------------


def test_rho_zero_is_the_base_step() -> None:
    m_sam, m_ref = _mlp(), _mlp()
    sam, ref = SAM(_adamw(m_sam), rho=0.0), _adamw(m_ref)
    for step in range(3):
        batch = _batch(step)
        sam_step(sam, [batch], _mse(m_sam))
        ref.zero_grad()
        _mse(m_ref)(batch).backward()
        ref.step()
    torch.testing.assert_close(_flat(m_sam), _flat(m_ref), rtol=0, atol=1e-7)
    assert not torch.equal(_flat(m_sam), _flat(_mlp()))  # it did train


@pytest.mark.parametrize(
    ("adaptive", "scope"), [(False, "weights"), (True, "weights"), (True, "all")]
)
def test_quadratic_matches_closed_form(adaptive: bool, scope: str) -> None:
    """L(w) = 0.5 w^T A w, SGD(lr): w' = w - lr * A (w + e); w split over a tensor named
    "weight" and one named "bias" (which ASAM's default scope leaves at T = 1)."""
    torch.manual_seed(0)
    d, rho, lr, eta = 5, 0.3, 0.1, 0.01
    m = torch.randn(d, d, dtype=torch.float64)
    a = m @ m.T + torch.eye(d, dtype=torch.float64)
    w0 = torch.randn(d, dtype=torch.float64)
    w1, w2 = nn.Parameter(w0[:3].clone()), nn.Parameter(w0[3:].clone())
    sam = SAM(
        torch.optim.SGD([w1, w2], lr=lr),
        rho=rho,
        adaptive=adaptive,
        eta=eta,
        adaptive_scope=scope,
        param_names=[("layer.weight", w1), ("layer.bias", w2)],
    )

    def loss(_: object) -> torch.Tensor:
        w = torch.cat([w1, w2])
        return 0.5 * w @ a @ w

    sam_step(sam, [None], loss)

    g = a @ w0
    if adaptive:
        t = w0.abs() + eta
        if scope == "weights":
            t[3:] = 1.0
        e = rho * t**2 * g / torch.linalg.vector_norm(t * g)
    else:
        e = rho * g / torch.linalg.vector_norm(g)
    expected = w0 - lr * a @ (w0 + e)
    torch.testing.assert_close(torch.cat([w1, w2]).detach(), expected, rtol=1e-12, atol=1e-12)


def test_step_is_base_step_with_g_sam_from_perturbed_point() -> None:
    """Two steps of SAM(AdamW) == AdamW fed, by hand, grad L(w + e) at w."""
    m_sam, m_hand = _mlp(), _mlp()
    sam, hand_opt = SAM(_adamw(m_sam), rho=RHO), _adamw(m_hand)
    hand_params = list(m_hand.parameters())
    for step in range(2):
        batch = _batch(step)
        sam_step(sam, [batch], _mse(m_sam))

        w = [p.detach().clone() for p in hand_params]
        g = torch.autograd.grad(_mse(m_hand)(batch), hand_params)
        norm = torch.linalg.vector_norm(torch.stack([gi.norm() for gi in g]))
        with torch.no_grad():
            for p, gi in zip(hand_params, g, strict=True):
                p.add_(RHO * gi / norm)
        g_sam = torch.autograd.grad(_mse(m_hand)(batch), hand_params)
        with torch.no_grad():
            for p, wi, gi in zip(hand_params, w, g_sam, strict=True):
                p.copy_(wi)
                p.grad = gi.clone()
        hand_opt.step()
    torch.testing.assert_close(_flat(m_sam), _flat(m_hand), rtol=1e-6, atol=1e-7)


# --- exact restore, frozen params, edge cases -------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_restore_is_bit_exact(dtype: torch.dtype) -> None:
    model = _mlp(dtype=dtype)
    sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1), rho=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = _batch(0)
    (model(x.to(dtype)) - y.to(dtype)).pow(2).mean().backward()
    sam.perturb()
    assert sam.is_perturbed
    assert all(p.grad is None for p in model.parameters())  # ready for the second pass
    assert not torch.equal(_flat(model), torch.cat([b.reshape(-1) for b in before]))
    if dtype == torch.bfloat16:  # the naive "subtract e" restore would not be exact here
        e = [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]
        naive = [p.detach() - ei for p, ei in zip(model.parameters(), e, strict=True)]
        assert not all(torch.equal(n, b) for n, b in zip(naive, before, strict=True))
    sam.unperturb()
    assert not sam.is_perturbed
    for p, b in zip(model.parameters(), before, strict=True):
        assert torch.equal(p.detach(), b)


def test_frozen_and_gradless_params_never_move_and_are_not_counted() -> None:
    torch.manual_seed(0)
    frozen, trained = nn.Linear(4, 6), nn.Linear(6, 1)
    frozen.requires_grad_(False)
    unused = nn.Parameter(torch.randn(3))  # requires grad, never gets one
    params = [*frozen.parameters(), *trained.parameters(), unused]
    sam = SAM(torch.optim.AdamW(params, lr=1e-2, weight_decay=0.5), rho=RHO)

    def loss(mb: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return (trained(torch.tanh(frozen(mb[0]))) - mb[1]).pow(2).mean()

    untouched = [p.detach().clone() for p in [*frozen.parameters(), unused]]
    w = [p.detach().clone() for p in trained.parameters()]
    loss(_batch(0)).backward()
    g = [p.grad.clone() for p in trained.parameters()]
    sam.perturb()
    norm = torch.sqrt(sum(gi.pow(2).sum() for gi in g))  # trained params only
    for p, wi, gi in zip(trained.parameters(), w, g, strict=True):
        torch.testing.assert_close(p.detach(), wi + RHO * gi / norm, rtol=0, atol=1e-7)
    assert sam.last_grad_norm == pytest.approx(float(norm), rel=1e-6)
    sam.step()
    for step in range(1, 3):
        sam_step(sam, _split(_batch(step), 4), loss)
    for p, u in zip([*frozen.parameters(), unused], untouched, strict=True):
        assert torch.equal(p.detach(), u)
    assert not torch.equal(_flat(trained), torch.cat([wi.reshape(-1) for wi in w]))


def test_zero_or_nonfinite_norm_skips_the_perturbation() -> None:
    model = _mlp()
    sam = SAM(torch.optim.SGD(model.parameters(), lr=0.1))
    before = _flat(model).clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    sam.perturb()  # zero norm: silently no perturbation
    assert torch.equal(_flat(model), before)
    sam.unperturb()
    for p in model.parameters():
        p.grad = torch.full_like(p, float("inf"))
    with pytest.warns(RuntimeWarning, match="skipping the perturbation"):
        sam.perturb()
    assert torch.equal(_flat(model), before)
    with pytest.raises(RuntimeError, match="twice"):
        sam.perturb()
    sam.unperturb()


def test_invalid_settings_are_refused() -> None:
    opt = torch.optim.SGD(_mlp().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="rho"):
        SAM(opt, rho=-0.1)
    with pytest.raises(ValueError, match="sync"):
        SAM(opt, sync="sometimes")
    with pytest.raises(ValueError, match="every"):
        SAM(opt, every=0)


def test_check_precision() -> None:
    with pytest.raises(ValueError, match="SAM does not support fp16 with a gradient scaler"):
        check_precision("fp16")
    with pytest.raises(SAMConfigError):  # also a KnowlearnError, for the CLI
        check_precision("FP16")
    check_precision("bf16")
    check_precision("no")


# --- accumulation, amortization --------------------------------------------------------------


@pytest.mark.parametrize("average", [True, False])
def test_two_micro_batches_of_4_equal_one_of_8(average: bool) -> None:
    """average=True: per-micro-batch mean losses; False: losses normalized by the batch (8)."""
    m_acc, m_one = _mlp(), _mlp()
    s_acc, s_one = SAM(_adamw(m_acc), rho=RHO), SAM(_adamw(m_one), rho=RHO)

    def loss_fn(model: nn.Module) -> Callable[[tuple[torch.Tensor, ...]], torch.Tensor]:
        if average:
            return _mse(model)
        return lambda mb: (model(mb[0]) - mb[1]).pow(2).sum() / 8

    for step in range(3):
        batch = _batch(step)
        l_acc = sam_step(s_acc, _split(batch, 4), loss_fn(m_acc), average=average)
        l_one = sam_step(s_one, [batch], loss_fn(m_one), average=average)
        assert l_acc == pytest.approx(l_one, rel=1e-5)
        assert s_acc.last_grad_norm == pytest.approx(s_one.last_grad_norm, rel=1e-5)
    torch.testing.assert_close(_flat(m_acc), _flat(m_one), rtol=1e-5, atol=1e-6)


def test_every_two_alternates_sam_and_plain_steps() -> None:
    model = _mlp()
    sam = SAM(_adamw(model), rho=RHO, every=2)
    calls = [0]

    def counting(mb: tuple[torch.Tensor, ...]) -> torch.Tensor:
        calls[0] += 1
        return _mse(model)(mb)

    per_step = []
    for step in range(4):
        before = calls[0]
        sam_step(sam, _split(_batch(step), 4), counting)
        per_step.append(calls[0] - before)
    assert per_step == [4, 2, 4, 2]  # 2 micro-batches x (2 passes | 1 pass)
    assert sam.step_count == 4


def test_closure_step_equals_sam_step() -> None:
    m_a, m_b = _mlp(), _mlp()
    s_a, s_b = SAM(_adamw(m_a), rho=RHO), SAM(_adamw(m_b), rho=RHO)
    for step in range(2):
        batch = _batch(step)
        sam_step(s_a, [batch], _mse(m_a))

        def closure(batch: tuple[torch.Tensor, ...] = batch) -> torch.Tensor:
            loss = _mse(m_b)(batch)
            loss.backward()
            return loss

        s_b.step(closure)
        s_b.zero_grad()
    torch.testing.assert_close(_flat(m_a), _flat(m_b), rtol=0, atol=0)


# --- schedulers, checkpoints -----------------------------------------------------------------


def test_lr_scheduler_on_base_or_on_sam() -> None:
    for on_base in (True, False):
        model = _mlp()
        sam = SAM(_adamw(model), rho=RHO)
        target = sam.base_optimizer if on_base else sam
        sched = torch.optim.lr_scheduler.LambdaLR(target, lambda k: 1.0 / (k + 1))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
            for step in range(2):
                sam_step(sam, [_batch(step)], _mse(model))
                sched.step()
        assert sam.base_optimizer.param_groups[0]["lr"] == pytest.approx(1e-2 / 3)
        assert sam.param_groups is sam.base_optimizer.param_groups


def test_state_dict_round_trip_gives_the_same_trajectory() -> None:
    m_ref, m_run = _mlp(), _mlp()
    s_ref, s_run = SAM(_adamw(m_ref), rho=RHO, every=2), SAM(_adamw(m_run), rho=RHO, every=2)
    for step in range(5):
        sam_step(s_ref, _split(_batch(step), 4), _mse(m_ref))
    for step in range(3):
        sam_step(s_run, _split(_batch(step), 4), _mse(m_run))
    buf = io.BytesIO()
    torch.save({"model": m_run.state_dict(), "optim": s_run.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)

    m_new = _mlp(seed=123)  # different init: everything must come from the checkpoint
    m_new.load_state_dict(ckpt["model"])
    s_new = SAM(_adamw(m_new), rho=RHO, every=2)
    s_new.load_state_dict(ckpt["optim"])
    assert s_new.step_count == 3  # so step 3 is a plain step, as in the reference
    for step in range(3, 5):
        sam_step(s_new, _split(_batch(step), 4), _mse(m_new))
    torch.testing.assert_close(_flat(m_new), _flat(m_ref), rtol=0, atol=0)


def test_state_dict_refused_while_perturbed() -> None:
    model = _mlp()
    sam = SAM(_adamw(model), rho=RHO)
    _mse(model)(_batch(0)).backward()
    sam.perturb()
    with pytest.raises(RuntimeError, match="perturbed"):
        sam.state_dict()
    with pytest.raises(RuntimeError, match="perturbed"):
        sam.load_state_dict(sam.base_optimizer.state_dict())
    sam.step()
    assert "sam" in sam.state_dict()


def test_with_accelerate_single_process() -> None:
    """The documented accelerate wiring: prepare the base optimizer, then wrap it."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState

    # Leave accelerate's process-wide state as found (other tests may hold an Accelerator).
    fresh, fresh_partial = not AcceleratorState._shared_state, not PartialState._shared_state
    try:
        acc = Accelerator(cpu=not torch.cuda.is_available())
        m_acc, m_ref = _mlp().to(acc.device), _mlp().to(acc.device)
        s_ref = SAM(_adamw(m_ref), rho=RHO)
        model, base = acc.prepare(m_acc, _adamw(m_acc))
        sam = SAM(base, rho=RHO)
        for step in range(2):
            mbs = [tuple(t.to(acc.device) for t in mb) for mb in _split(_batch(step), 4)]
            sam_step(
                sam,
                mbs,
                _mse(model),
                backward=acc.backward,
                no_sync=lambda: acc.no_sync(model),
                clip=lambda: acc.clip_grad_norm_(model.parameters(), 1.0),
            )
            sam_step(
                s_ref,
                mbs,
                _mse(m_ref),
                clip=lambda: torch.nn.utils.clip_grad_norm_(m_ref.parameters(), 1.0),
            )
        torch.testing.assert_close(_flat(model), _flat(m_ref), rtol=1e-6, atol=1e-7)
    finally:
        if fresh:
            AcceleratorState._reset_state(reset_partial_state=fresh_partial)


# --- two processes (gloo) --------------------------------------------------------------------

WORLD, DDP_STEPS = 2, 3


def _ddp_run(rank: int, sync: str) -> dict[str, torch.Tensor]:
    """DDP_STEPS SAM steps on this rank's half of each batch; checks the collectives."""
    model = nn.parallel.DistributedDataParallel(_mlp())
    hook_calls, reduce_calls = [0], [0]

    def hook(state, bucket):  # unannotated: DDP checks real annotations, ours are strings
        hook_calls[0] += 1  # one DDP gradient all-reduce (one bucket here)
        fut = dist.all_reduce(bucket.buffer().div_(WORLD), async_op=True).get_future()
        return fut.then(lambda f: f.value()[0])

    model.register_comm_hook(None, hook)
    sam = SAM(_adamw(model), rho=RHO, sync=sync)
    real_all_reduce, real_perturb = dist.all_reduce, sam.perturb

    def counting_all_reduce(*args: object, **kwargs: object) -> object:
        reduce_calls[0] += 1
        return real_all_reduce(*args, **kwargs)

    at_perturb: list[tuple[int, int, int]] = []  # (hooks before, hooks after, all_reduces)

    def perturb() -> None:
        before, reduces = hook_calls[0], reduce_calls[0]
        real_perturb()
        at_perturb.append((before, hook_calls[0], reduce_calls[0] - reduces))

    sam.perturb = perturb  # type: ignore[method-assign]
    hooks_after_step, norms = [], []
    dist.all_reduce = counting_all_reduce
    try:
        for step in range(DDP_STEPS):
            x, y = _batch(step)
            mine = (x[rank * 4 : rank * 4 + 4], y[rank * 4 : rank * 4 + 4])
            sam_step(sam, _split(mine, 2), _mse(model), no_sync=model.no_sync)
            hooks_after_step.append(hook_calls[0])
            norms.append(sam.last_grad_norm)
    finally:
        dist.all_reduce = real_all_reduce
    assert len(at_perturb) == DDP_STEPS
    for step, (before, after, reduces) in enumerate(at_perturb):
        prev = hooks_after_step[step - 1] if step else 0
        assert before == prev, "the first pass did a DDP gradient all-reduce"
        assert after == before
        assert reduces == (1 if sync == "global" else 0), reduces
        assert hooks_after_step[step] > after, "the second pass did not sync"
    flat = _flat(model.module)
    gathered = [torch.empty_like(flat) for _ in range(WORLD)]
    dist.all_gather(gathered, flat)
    assert torch.equal(gathered[0], gathered[1]), "ranks diverged"
    return {"params": flat, "norms": torch.tensor(norms, dtype=torch.float64)}


def _join_gloo(rank: int, port: int) -> None:
    """One of WORLD 1-thread CPU processes in a gloo group on localhost."""
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=WORLD,
        timeout=timedelta(seconds=60),
    )


def _ddp_worker(rank: int, port: int, out: str) -> None:
    _join_gloo(rank, port)
    try:
        results = {sync: _ddp_run(rank, sync) for sync in ("global", "local")}
        if rank == 0:
            torch.save(results, Path(out) / "ddp.pt")
        # Both ranks leave together: a rank tearing gloo down while its peer still holds the
        # connection sometimes aborted at interpreter exit ("terminate called without an
        # active exception", about 1 run in 10).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_the_full_batch(tmp_path: Path) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_ddp_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    got = torch.load(tmp_path / "ddp.pt", weights_only=True)

    ref = _mlp()
    sam, norms = SAM(_adamw(ref), rho=RHO), []
    for step in range(DDP_STEPS):
        sam_step(sam, [_batch(step)], _mse(ref))
        norms.append(sam.last_grad_norm)
    torch.testing.assert_close(got["global"]["params"], _flat(ref), rtol=0, atol=1e-5)
    # The norm is that of the full-batch mean gradient (e alone would not show a missing mean).
    torch.testing.assert_close(got["global"]["norms"], torch.tensor(norms, dtype=torch.float64))
    # "local" perturbs with each rank's half-batch gradient: a different (documented) method.
    assert not torch.allclose(got["local"]["params"], _flat(ref), rtol=0, atol=1e-7)


def test_no_copy_or_gradients_kept_between_steps() -> None:
    """The one weight copy lives only from perturb() to step(); sam_step leaves no grads."""
    model = _mlp()
    sam = SAM(_adamw(model), rho=RHO)
    sam_step(sam, [_batch(0)], _mse(model))
    assert sam._backup == [] and not sam.is_perturbed
    assert all(p.grad is None for p in model.parameters())


# --- fine print: ASAM's scope, dropout masks --------------------------------------------------


def _tiny_qwen2(seed: int = 0, dropout: float = 0.0) -> nn.Module:
    """A tiny Qwen2: q/k/v projections have biases, as in the real model."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        attention_dropout=dropout,
    )
    return Qwen2ForCausalLM(cfg)


def _tokens(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(seed))


def _official_asam_perturbation(
    model: nn.Module, rho: float, eta: float
) -> dict[str, torch.Tensor]:
    """e as the official ASAM code (SamsungLabs/ASAM, `ascent_step`) computes it: T = |w| +
    eta for names containing "weight", T = 1 otherwise; e = rho T^2 g / ||T g||."""
    scaled = {}
    for n, p in model.named_parameters():
        t = p.detach().abs() + eta if "weight" in n else torch.ones_like(p)
        scaled[n] = (p.grad * t, t)
    norm = torch.norm(torch.stack([torch.norm(tg) for tg, _ in scaled.values()])) + 1e-16
    return {n: tg * t * (rho / norm) for n, (tg, t) in scaled.items()}


@pytest.mark.parametrize("scope", ["weights", "all"])
def test_asam_scope_matches_the_official_rule(scope: str) -> None:
    """Default scope: the official ASAM (biases unscaled); "all": every tensor scaled."""
    rho, eta = 0.5, 0.01
    model = _tiny_qwen2().double()  # fp64: (w + e) - w recovers e to 1e-12
    assert any(n.endswith("q_proj.bias") for n, _ in model.named_parameters())
    sam = SAM(
        torch.optim.SGD(model.parameters(), lr=0.1),
        rho=rho,
        adaptive=True,
        eta=eta,
        adaptive_scope=scope,
        param_names=model.named_parameters(),
    )
    ids = _tokens()
    model(input_ids=ids, labels=ids).loss.backward()
    w = {n: p.detach().clone() for n, p in model.named_parameters()}
    if scope == "weights":
        expected = _official_asam_perturbation(model, rho, eta)
    else:
        ts = {n: p.detach().abs() + eta for n, p in model.named_parameters()}
        gs = {n: p.grad.clone() for n, p in model.named_parameters()}
        norm = torch.sqrt(sum((ts[n] * gs[n]).pow(2).sum() for n in gs))
        expected = {n: rho * ts[n] ** 2 * gs[n] / norm for n in gs}
    sam.perturb()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach() - w[n], expected[n], rtol=1e-9, atol=1e-12)
    sam.unperturb()


def test_asam_without_names_is_refused_unless_scope_all() -> None:
    params = list(_mlp().parameters())
    with pytest.raises(SAMConfigError, match="param_names"):
        SAM(torch.optim.SGD(params, lr=0.1), adaptive=True)
    with pytest.raises(SAMConfigError, match="adaptive_scope"):
        SAM(torch.optim.SGD(params, lr=0.1), adaptive=True, adaptive_scope="biases")
    SAM(torch.optim.SGD(params, lr=0.1), adaptive=True, adaptive_scope="all")
    SAM(torch.optim.SGD(params, lr=0.1), adaptive=False)  # plain SAM needs no names


def test_both_passes_draw_the_same_dropout_masks() -> None:
    """rho = 0 with dropout: SAM's step equals the plain step that drew the same masks (it
    would not if the second pass drew fresh masks), and the RNG ends where the plain one does."""
    m_sam, m_ref = _tiny_qwen2(dropout=0.3), _tiny_qwen2(dropout=0.3)
    sam, ref = SAM(_adamw(m_sam), rho=0.0), _adamw(m_ref)
    ids = _tokens()
    for step in range(2):
        torch.manual_seed(100 + step)
        sam_step(sam, [ids], lambda x: m_sam(input_ids=x, labels=x).loss)
        after_sam = torch.get_rng_state()
        torch.manual_seed(100 + step)
        ref.zero_grad()
        m_ref(input_ids=ids, labels=ids).loss.backward()
        ref.step()
        assert torch.equal(after_sam, torch.get_rng_state())
    torch.testing.assert_close(_flat(m_sam), _flat(m_ref), rtol=0, atol=0)


def test_closure_step_reuses_the_dropout_masks() -> None:
    m_a, m_b = _tiny_qwen2(dropout=0.3), _tiny_qwen2(dropout=0.3)
    s_a, s_b = SAM(_adamw(m_a), rho=RHO), SAM(_adamw(m_b), rho=RHO)
    ids = _tokens()
    torch.manual_seed(7)
    sam_step(s_a, [ids], lambda x: m_a(input_ids=x, labels=x).loss)

    def closure() -> torch.Tensor:
        loss = m_b(input_ids=ids, labels=ids).loss
        loss.backward()
        return loss

    torch.manual_seed(7)
    s_b.step(closure)
    torch.testing.assert_close(_flat(m_a), _flat(m_b), rtol=0, atol=0)


# --- sharded parameters (FSDP2, two gloo processes) -----------------------------------------


def _norm_mlp(seed: int = 0) -> nn.Module:
    """Linear layers with biases and a LayerNorm: ASAM's scope matters here."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.LayerNorm(16), nn.Tanh(), nn.Linear(16, 1))


FSDP_SETTINGS = {
    "sam": dict(rho=RHO),
    "asam": dict(rho=0.5, adaptive=True),
    "asam_all": dict(rho=0.5, adaptive=True, adaptive_scope="all"),
}


def _sam_for(model: nn.Module, setting: str) -> SAM:
    return SAM(_adamw(model), **FSDP_SETTINGS[setting], param_names=model.named_parameters())


def _fsdp_run(rank: int, setting: str) -> dict[str, torch.Tensor]:
    """DDP_STEPS SAM steps, 2 micro-batches each, on this rank's half of each batch, with
    the MLP sharded by fully_shard; counts the perturbation's all_reduces and copy size."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from knowlearn.train.sharding import full_state_dict, no_gradient_sync

    model = _norm_mlp()
    mesh = init_device_mesh("cpu", (WORLD,))
    for layer in (model[0], model[3]):
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    with pytest.raises(SAMConfigError, match="replicated"):  # shards are not replicas
        SAM(_adamw(model), sync="local")
    sam = _sam_for(model, setting)
    assert sam.sharded
    real_all_reduce, real_perturb = dist.all_reduce, sam.perturb
    reduces, copies = [0], []

    def counting_all_reduce(*args: object, **kwargs: object) -> object:
        reduces[0] += 1
        return real_all_reduce(*args, **kwargs)

    def perturb() -> None:
        before = reduces[0]
        real_perturb()
        assert reduces[0] - before == 1, "the norm took more than one all_reduce"
        copies.append(sum(saved.numel() * saved.element_size() for _, saved in sam._backup))

    sam.perturb = perturb  # type: ignore[method-assign]
    norms = []
    dist.all_reduce = counting_all_reduce
    try:
        for step in range(DDP_STEPS):
            x, y = _batch(step)
            mine = (x[rank * 4 : rank * 4 + 4], y[rank * 4 : rank * 4 + 4])
            sam_step(sam, _split(mine, 2), _mse(model), no_sync=lambda: no_gradient_sync(model))
            norms.append(sam.last_grad_norm)
    finally:
        dist.all_reduce = real_all_reduce
    full = full_state_dict(model)
    full_bytes = sum(t.numel() * t.element_size() for t in _norm_mlp().parameters())
    return {
        "params": torch.cat([full[k].reshape(-1) for k in _norm_mlp().state_dict()])
        if rank == 0
        else torch.zeros(0),
        "norms": torch.tensor(norms, dtype=torch.float64),
        "copy_share": torch.tensor(max(copies) / full_bytes, dtype=torch.float64),
    }


def _fsdp_worker(rank: int, port: int, out: str) -> None:
    _join_gloo(rank, port)
    try:
        results = {s: _fsdp_run(rank, s) for s in FSDP_SETTINGS}
        torch.save(results, Path(out) / f"fsdp{rank}.pt")
        dist.barrier()  # leave together (see _ddp_worker)
    finally:
        dist.destroy_process_group()


def test_sharded_sam_equals_one_process_with_one_all_reduce_and_a_half_copy(
    tmp_path: Path,
) -> None:
    """FSDP2 shards: e from the local shards (norm: one all_reduce), perturbed and restored
    in place; equals one process with the full batch, for SAM and both ASAM scopes. Each
    rank's saved copy is its shard: about 1/2 of the parameters, the two halves the whole."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_fsdp_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"fsdp{r}.pt", weights_only=True) for r in range(WORLD)]
    for setting in FSDP_SETTINGS:
        ref = _norm_mlp()
        sam, norms = _sam_for(ref, setting), []
        for step in range(DDP_STEPS):
            sam_step(sam, [_batch(step)], _mse(ref))
            norms.append(sam.last_grad_norm)
        torch.testing.assert_close(ranks[0][setting]["params"], _flat(ref), rtol=0, atol=1e-6)
        for r in ranks:
            torch.testing.assert_close(
                r[setting]["norms"], torch.tensor(norms, dtype=torch.float64), rtol=1e-6, atol=0
            )  # fp32 gradients summed in another order
        shares = [float(r[setting]["copy_share"]) for r in ranks]
        assert all(0.4 < s < 0.6 for s in shares), shares
        assert sum(shares) == pytest.approx(1.0), shares


# --- cheap SAM: the perturbation from part of the batch --------------------------------------


def test_perturbation_from_a_subset_then_the_whole_batch() -> None:
    """perturb_with: e from the subset's gradient (its scale does not matter), g_sam and the
    step from the whole batch; the loss returned is the second pass's (at w + e)."""
    m_cheap, m_hand = _mlp(), _mlp()
    cheap, hand = SAM(_adamw(m_cheap), rho=RHO), SAM(_adamw(m_hand), rho=RHO)
    for step in range(2):
        batch = _batch(step)
        subset = (batch[0][:2], batch[1][:2])
        loss = sam_step(cheap, [batch], _mse(m_cheap), perturb_with=[subset])

        hand.zero_grad()
        (3.0 * _mse(m_hand)(subset)).backward()  # any scale: e = rho g / ||g||
        hand.perturb()
        at_w_plus_e = _mse(m_hand)(batch)
        at_w_plus_e.backward()
        hand.step()
        assert loss == pytest.approx(float(at_w_plus_e), rel=1e-6)
    torch.testing.assert_close(_flat(m_cheap), _flat(m_hand), rtol=1e-6, atol=1e-7)
