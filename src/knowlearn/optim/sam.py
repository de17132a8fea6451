"""Sharpness-aware minimization (SAM, Foret et al. 2021) and adaptive SAM (ASAM, Kwon et al. 2021).

One optimizer step of SAM::

    g     = grad L_B(w)                      # first pass, over the whole optimizer batch
    e     = rho * g / ||g||                  # SAM
    e     = rho * T^2 g / ||T g||,  T = |w| + eta   # ASAM (elementwise)
    g_sam = grad L_B(w + e)                  # second pass, same micro-batches
    w     <- base_step(w, g_sam)             # weights restored to w exactly first

Choices made here, because the public implementations get them wrong:

* Gradient accumulation: `e` comes from the gradient accumulated over *all* micro-batches
  of the optimizer batch, so b micro-batches of size k equal one batch of size b*k
  (`sam_step` runs the first pass over every micro-batch, perturbs once, then runs the
  second pass over the same micro-batches).
* Many processes (DDP): the first pass runs under `no_sync()` (no gradient all-reduce);
  `perturb()` averages the accumulated gradients across ranks itself, with one all_reduce
  per (device, dtype) bucket (one in practice), so every rank applies the same `e` that one
  process with the whole batch would (`sync="global"`). `sync="local"` perturbs with each
  rank's own gradient instead (cheaper, ranks use different e; g_sam is still synced).
  The second pass syncs as usual.
* Sharded parameters (FSDP2 `fully_shard`, DTensors): the first pass syncs its last
  micro-batch (FSDP reduce-scatters, so each rank holds its shard of the global mean
  gradient); the norm is summed from the local shards with one all_reduce of one number;
  perturbation, the saved copy and the restore touch only the local shard (1/N of the
  parameters). Exact against one process; `sync="local"` is refused (ranks hold shards of
  one replica, not replicas).
* ASAM scales only tensors whose name contains "weight" (the official ASAM code; T = 1 for
  biases); `adaptive_scope="all"` scales every tensor (davda54/sam's behaviour).
* Both passes draw the same randomness (dropout masks): the RNG state before the first pass
  is restored before the second, as Google's SAM code does.
* Norms are computed in fp32, so bf16 weights/autocast are fine. fp16 with a GradScaler
  is refused (`check_precision`): the first-pass gradients would be scaled and possibly inf.
* Parameters whose gradient is None (frozen, LoRA base weights, unused) are neither
  perturbed nor counted in the norm.
* Restore is exact: the original weights are copied (one extra copy of the parameters that
  have gradients) and copied back, never `w + e - e` (which is not w in bf16).
* The perturbation is transient: `state_dict()` refuses while perturbed, so a checkpoint
  never contains perturbed weights.

This file is one optimizer class and the notes above, kept whole (about 500 lines): its
invariant (the weights restored exactly, on every rank and shard) reads in one place.
`sam_step.py` runs it over micro-batches; `shards.py` reads FSDP2's DTensors.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.distributed as dist

from knowlearn.errors import KnowlearnError
from knowlearn.optim.shards import local_shard, shard_group

__all__ = ["SAM", "SAMConfigError", "check_precision"]

_SYNC_MODES = ("global", "local")
_ADAPTIVE_SCOPES = ("weights", "all")
FP16_MESSAGE = "SAM does not support fp16 with a gradient scaler; use bf16 or fp32"


class SAMConfigError(KnowlearnError, ValueError):
    """A bad SAM setting. A ValueError for Python callers, a KnowlearnError for the CLI."""


def check_precision(mixed_precision: str) -> None:
    """Refuse fp16 at config time: SAM's first-pass norm would see scaled (maybe inf) gradients.

    bf16 and fp32 ("no") are fine: norms are computed in fp32 and no scaler is involved.
    """
    if str(mixed_precision).strip().lower() in ("fp16", "float16", "half"):
        raise SAMConfigError(FP16_MESSAGE)


def rng_state() -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    """The CPU and (if in use) CUDA generator states: what dropout draws from."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor] | None]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


def _wide(dtype: torch.dtype) -> torch.dtype:
    """The dtype for norms and e: fp32, or fp64 for fp64 tensors (never narrower)."""
    return torch.promote_types(dtype, torch.float32)


class SAM(torch.optim.Optimizer):
    """SAM/ASAM around a base optimizer (AdamW by default) that the caller builds.

    SAM shares the base optimizer's `param_groups` and `state` (nothing is copied), so an LR
    scheduler works on either object; the documented way is to attach it to the base::

        base = torch.optim.AdamW(model.parameters(), lr=1e-4)
        sam = SAM(base, rho=0.05)
        sched = torch.optim.lr_scheduler.LambdaLR(sam.base_optimizer, lr_lambda)

    and to drive a step with `sam_step` (which handles accumulation and DDP). By hand::

        loss(w).backward()   # all micro-batches, under DDP no_sync
        sam.perturb()        # w <- w + e; grads cleared
        loss(w).backward()   # all micro-batches, last one synced
        sam.step()           # w restored exactly, then base step with g_sam

    Args:
        base_optimizer: any torch optimizer (an accelerate-prepared one is fine).
        rho: perturbation radius (Foret et al.: 0.05). ASAM's e is scaled by |w|, so it
            needs a larger rho (Kwon et al. use ~0.5): sweep it. rho = 0 reproduces the base
            optimizer's step (still paying the two passes).
        adaptive: ASAM; e = rho * T^2 g / ||T g|| with T = |w| + eta (elementwise).
        eps: added to the norm before dividing.
        sync: "global" (default) averages the accumulated gradients across ranks before the
            norm, so e equals the single-process e for the whole batch; "local" uses each
            rank's own gradient (no extra collective, e differs per rank).
        every: amortization. `sam_step` does a SAM step when `step_count % every == 0` and a
            plain base step (one pass) otherwise; both kinds count in `step_count`.
        eta: ASAM's stabilizer (Kwon et al.: 0.01).
        adaptive_scope: which tensors ASAM scales by T: "weights" (default, as the official
            ASAM: names containing "weight"; biases get T = 1) or "all" (every tensor).
        param_names: (name, parameter) pairs, e.g. `model.named_parameters()`; ASAM with
            scope "weights" needs them to tell weights from biases.
    """

    def __init__(
        self,
        base_optimizer: torch.optim.Optimizer,
        rho: float = 0.05,
        adaptive: bool = False,
        eps: float = 1e-12,
        sync: str = "global",
        *,
        every: int = 1,
        eta: float = 0.01,
        adaptive_scope: str = "weights",
        param_names: Iterable[tuple[str, torch.Tensor]] | None = None,
    ) -> None:
        if not isinstance(base_optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"SAM wraps a torch.optim.Optimizer, got {type(base_optimizer).__name__}"
            )
        if isinstance(base_optimizer, SAM):
            raise TypeError("SAM cannot wrap another SAM")
        if not (isinstance(rho, (int, float)) and math.isfinite(rho) and rho >= 0):
            raise SAMConfigError(f"SAM rho must be a finite number >= 0, got {rho!r}")
        if not (math.isfinite(eps) and eps >= 0):
            raise SAMConfigError(f"SAM eps must be >= 0, got {eps!r}")
        if not (math.isfinite(eta) and eta >= 0):
            raise SAMConfigError(f"ASAM eta must be >= 0, got {eta!r}")
        if sync not in _SYNC_MODES:
            raise SAMConfigError(f"SAM sync must be one of {_SYNC_MODES}, got {sync!r}")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise SAMConfigError(f"SAM every must be an integer >= 1, got {every!r}")
        if adaptive_scope not in _ADAPTIVE_SCOPES:
            raise SAMConfigError(
                f"ASAM adaptive_scope must be one of {_ADAPTIVE_SCOPES}, got {adaptive_scope!r}"
            )
        if getattr(base_optimizer, "scaler", None) is not None:
            # accelerate's AcceleratedOptimizer carries the fp16 GradScaler.
            raise SAMConfigError(FP16_MESSAGE)

        self.base_optimizer = base_optimizer
        self.rho = float(rho)
        self.adaptive = bool(adaptive)
        self.eps = float(eps)
        self.eta = float(eta)
        self.sync = sync
        self.every = every
        self.adaptive_scope = adaptive_scope
        self.step_count = 0
        self.last_grad_norm: float | None = None  # the norm used by the last perturb()
        self._last_e_norm: torch.Tensor | float | None = None  # ||e|| of the last perturb()
        self._perturbed = False
        self._backup: list[tuple[torch.Tensor, torch.Tensor]] = []

        # Optimizer.__init__ installs hooks and the step wrapper that LR schedulers expect;
        # it also assigns `param_groups`/`state`, which (see the properties below) go to a
        # throwaway during init and to the base optimizer afterwards. The groups passed are
        # shallow copies so the base's dicts are not touched.
        self._sam_init_done = False
        super().__init__([dict(g) for g in base_optimizer.param_groups], {})
        self._sam_init_done = True
        self.__dict__.pop("_sam_init_param_groups", None)
        self.__dict__.pop("_sam_init_state", None)
        self.defaults = dict(
            base_optimizer.defaults,
            rho=self.rho,
            adaptive=self.adaptive,
            sync=sync,
            every=every,
        )
        params = list(self._params())
        self._group = shard_group(params)
        if self.sharded and sync == "local":
            raise SAMConfigError(
                "SAM sync='local' needs replicated parameters (DDP); sharded (FSDP) ranks "
                "hold parts of one replica: use sync='global'"
            )
        self._unscaled = self._biases(params, param_names) if adaptive else set()

    def _biases(
        self, params: list[torch.Tensor], names: Iterable[tuple[str, torch.Tensor]] | None
    ) -> set[int]:
        """ids of the params ASAM leaves unscaled (T = 1): none with scope "all"; with scope
        "weights", those whose name lacks "weight" (the official ASAM's rule)."""
        if self.adaptive_scope == "all":
            return set()
        if names is None:
            raise SAMConfigError(
                "ASAM with adaptive_scope='weights' needs param_names (model.named_parameters()) "
                "to tell weights from biases; or pass adaptive_scope='all'"
            )
        by_id = {id(p): n for n, p in names}
        missing = [p for p in params if id(p) not in by_id]
        if missing:
            raise ValueError(f"param_names lacks {len(missing)} of the optimizer's parameters")
        return {id(p) for p in params if "weight" not in by_id[id(p)]}

    # --- shared state with the base optimizer -------------------------------------------

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        """The base optimizer's groups (live: survives base.load_state_dict replacing them)."""
        if not self.__dict__.get("_sam_init_done", False):
            return self.__dict__.setdefault("_sam_init_param_groups", [])
        return self.base_optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        if not self.__dict__.get("_sam_init_done", False):
            self.__dict__["_sam_init_param_groups"] = value
        else:
            self.base_optimizer.param_groups = value

    @property  # type: ignore[override]
    def state(self) -> Any:
        """The base optimizer's per-parameter state (SAM keeps none that outlives a step)."""
        if not self.__dict__.get("_sam_init_done", False):
            return self.__dict__.get("_sam_init_state")
        return self.base_optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        if not self.__dict__.get("_sam_init_done", False):
            self.__dict__["_sam_init_state"] = value
        else:
            self.base_optimizer.state = value

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add to the base optimizer (during construction: Optimizer's own bookkeeping)."""
        if not self.__dict__.get("_sam_init_done", False):
            super().add_param_group(param_group)
        else:
            self.base_optimizer.add_param_group(param_group)

    @property
    def is_perturbed(self) -> bool:
        """True between `perturb()` and `unperturb()`/`step()`: the weights are w + e."""
        return self._perturbed

    @property
    def sharded(self) -> bool:
        """Whether the parameters are DTensor shards (FSDP2): each rank holds 1/N of them."""
        return self._group is not None

    @property
    def next_step_is_sam(self) -> bool:
        """Whether the next step (per `every`) is a SAM step rather than a plain one."""
        return self.step_count % self.every == 0

    # --- the two SAM operations ---------------------------------------------------------

    def _params(self) -> Iterable[torch.Tensor]:
        seen: set[int] = set()
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p

    def _clear_grads(self) -> None:
        for p in self._params():
            p.grad = None

    def _gradients(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(param, gradient to perturb with) for every param that counts, as local tensors.

        Single process, sync="local", or sharded parameters (whose gradients FSDP already
        reduce-scattered: each rank holds its shard of the global mean): the params with a
        gradient, as they are. Global sync across DDP ranks: the mean over ranks, via one
        flat buffer and one all_reduce per (device, dtype). A param counts if it has a
        gradient on *any* rank (a presence flag travels in the same buffer), so all ranks
        agree on the set and on e.
        """
        params = list(self._params())
        for p in params:
            if p.grad is not None and p.grad.is_sparse:
                raise NotImplementedError("SAM does not support sparse gradients")
        if self.sharded:
            return [(p, local_shard(p.grad)) for p in params if p.grad is not None]
        distributed = (
            self.sync == "global"
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size() > 1
        )
        if not distributed:
            return [(p, p.grad) for p in params if p.grad is not None]
        return self._mean_over_ranks(params)

    def _mean_over_ranks(
        self, params: list[torch.Tensor]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """DDP: every rank holds the same parameters, so this order and layout agree."""
        candidates = [p for p in params if p.requires_grad or p.grad is not None]
        buckets: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
        for p in candidates:
            buckets.setdefault((p.device, p.dtype), []).append(p)
        world = dist.get_world_size()
        out: list[tuple[torch.Tensor, torch.Tensor]] = []
        for (device, dtype), ps in buckets.items():
            n = sum(p.numel() for p in ps)
            flat = torch.zeros(n + len(ps), dtype=dtype, device=device)
            offset = 0
            for i, p in enumerate(ps):
                if p.grad is not None:
                    flat[offset : offset + p.numel()].copy_(p.grad.reshape(-1))
                    flat[n + i] = 1
                    p.grad = None  # the flat buffer now holds it: keeps peak memory flat
                offset += p.numel()
            dist.all_reduce(flat)
            flat.div_(world)
            present = (flat[n:] > 0).tolist()
            offset = 0
            for p, has in zip(ps, present, strict=True):
                if has:
                    out.append((p, flat[offset : offset + p.numel()].view_as(p)))
                offset += p.numel()
        return out

    @torch.no_grad()
    def perturb(self) -> None:
        """Move to w + e using the accumulated first-pass gradients, then clear gradients.

        Call after the first forward/backward pass(es) of a step, i.e. with the gradient
        accumulated over every micro-batch of the optimizer batch. Saves the current weights
        of the perturbed params (the one extra copy) for an exact restore. If the norm is 0
        or not finite, nothing is perturbed (e = 0; a non-finite norm also warns) and the
        second pass then yields the plain gradient at w.
        """
        if self._perturbed:
            raise RuntimeError("SAM.perturb() called twice without unperturb()/step()")
        pairs = self._gradients()
        norm = self._norm(pairs)
        self.last_grad_norm = norm
        self._backup = []
        self._last_e_norm = 0.0
        if pairs and math.isfinite(norm) and norm > 0:
            scale = self.rho / (norm + self.eps)
            e_norms = []
            for p, g in pairs:
                w = local_shard(p.detach())  # this rank's shard when sharded: the view to write
                e = g.to(_wide(g.dtype)) * scale
                t = self._t(p)
                if t is not None:
                    e.mul_(t.square_())
                if self.adaptive:
                    e_norms.append(
                        torch.linalg.vector_norm(e).to(pairs[0][1].device, torch.float64)
                    )
                self._backup.append((w, w.clone()))
                w.add_(e.to(w.dtype))
            # SAM's ||e|| is rho * ||g|| / (||g|| + eps); ASAM's depends on |w| (measured on
            # this rank's shard when sharded), kept on the device until read (no host sync).
            self._last_e_norm = (
                torch.linalg.vector_norm(torch.stack(e_norms)) if e_norms else scale * norm
            )
        elif not math.isfinite(norm):
            warnings.warn(
                f"SAM: gradient norm is {norm}; skipping the perturbation this step",
                RuntimeWarning,
                stacklevel=2,
            )
        del pairs
        self._clear_grads()
        self._perturbed = True

    @property
    def last_perturbation_norm(self) -> float | None:
        """||e||, the distance the last perturb() moved the weights (None before any):
        rho for SAM; for ASAM it depends on the weights."""
        e = self._last_e_norm
        return float(e) if e is not None else None

    def _t(self, p: torch.Tensor) -> torch.Tensor | None:
        """ASAM's elementwise T_w = |w| + eta on the local shard, in fp32 (fp64 for fp64
        weights); None where T = 1 (plain SAM, or a tensor ASAM leaves unscaled)."""
        if not self.adaptive or id(p) in self._unscaled:
            return None
        w = local_shard(p.detach())
        return w.to(_wide(w.dtype)).abs().add_(self.eta)

    def _norm(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """Global L2 norm in fp32: ||g|| (SAM) or ||T_w g|| (ASAM). One host sync."""
        if self.sharded:
            return self._sharded_norm(pairs)
        if not pairs:
            return 0.0
        device = pairs[0][1].device
        norms = [self._tensor_norm(p, g).to(device) for p, g in pairs]
        wide = functools.reduce(torch.promote_types, (n.dtype for n in norms))
        return float(torch.linalg.vector_norm(torch.stack([n.to(wide) for n in norms]), 2))

    def _tensor_norm(self, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """||g|| or ||T_w g|| of one (local) tensor, in fp32 or wider."""
        t = self._t(p)
        x = g if t is None else g.to(_wide(g.dtype)) * t
        return torch.linalg.vector_norm(x, 2, dtype=_wide(x.dtype))

    def _sharded_norm(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
        """The squared norms of this rank's shards, summed over the ranks in one all_reduce
        (every rank calls it, also one whose shards are empty)."""
        device = local_shard(next(iter(self._params()))).device
        total = torch.zeros((), dtype=torch.float64, device=device)
        for p, g in pairs:
            total += self._tensor_norm(p, g).to(device, total.dtype).square()
        dist.all_reduce(total, group=self._group)
        return math.sqrt(float(total))

    @torch.no_grad()
    def unperturb(self) -> None:
        """Copy the saved weights back (bit-exact) and free the copy. No-op if not perturbed."""
        for p, saved in self._backup:
            p.copy_(saved)
        self._backup = []
        self._perturbed = False

    # --- optimizer API ------------------------------------------------------------------

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Restore w (if perturbed), then the base step with the current (second-pass) grads.

        With a closure (computes the loss and calls backward; gradients must start empty),
        runs the whole SAM step: closure at w, perturb, closure at w + e, base step; on a
        plain step (per `every`) the closure runs once. Returns the first closure's loss.
        """
        loss = None
        if closure is not None:
            if self._perturbed:
                raise RuntimeError("SAM.step(closure) called while perturbed")
            rng = rng_state()
            with torch.enable_grad():
                loss = closure()
            if self.next_step_is_sam:
                self.perturb()
                set_rng_state(rng)  # the same dropout masks as the first pass
                with torch.enable_grad():
                    closure()
        self.unperturb()
        self.base_optimizer.step()
        self.step_count += 1
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The base optimizer's state dict plus {"sam": {"step_count": n}}.

        Refused while perturbed, so a checkpoint can never capture w + e (the model's weights
        would be perturbed at that moment too).
        """
        if self._perturbed:
            raise RuntimeError(
                "SAM.state_dict() called while the weights are perturbed (w + e); "
                "checkpoint after sam.step() or sam.unperturb()"
            )
        sd = dict(self.base_optimizer.state_dict())
        sd["sam"] = {"step_count": self.step_count}
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load into the base optimizer; a plain base-optimizer state dict is accepted too."""
        if self._perturbed:
            raise RuntimeError("SAM.load_state_dict() called while perturbed")
        sd = dict(state_dict)
        extra = sd.pop("sam", None)
        self.base_optimizer.load_state_dict(sd)
        if extra is not None:
            self.step_count = int(extra["step_count"])

    def __repr__(self) -> str:
        return (
            f"SAM(rho={self.rho}, adaptive={self.adaptive}, sync={self.sync!r}, "
            f"every={self.every}, base={self.base_optimizer!r})"
        )
