"""The bf16 rounding of SAM's perturbation: exact cases by hand, and SAM's own e."""

import torch
from torch import nn

from knowlearn.optim import SAM
from knowlearn.optim.precision import perturbation_kept, sam_perturbation


def test_elements_below_half_a_bf16_step_are_rounded_away():
    w = torch.tensor([1.0, 1.0, 1.0, 0.0])
    # bf16 step at 1.0 is 2^-7: 2^-10 vanishes, 2^-6 survives exactly; at 0, 1e-3 survives.
    e = torch.tensor([2.0**-10, 2.0**-6, 0.0, 1e-3])
    got = perturbation_kept([(w, e)])
    assert got["kept"] == 2 / 3
    d = torch.tensor([0.0, 2.0**-6, 0.0, float(torch.tensor(1e-3).bfloat16())])
    cos = float((d.double() @ e.double()) / (d.double().norm() * e.double().norm()))
    assert abs(got["cosine"] - cos) < 1e-12


def test_fp32_keeps_what_bf16_loses():
    w = torch.tensor([1.0, 1.0])
    e = torch.tensor([2.0**-10, 2.0**-12])
    assert perturbation_kept([(w, e)], torch.float32)["kept"] == 1.0
    assert perturbation_kept([(w, e)])["kept"] == 0.0


def test_sam_perturbation_is_the_e_sam_applies():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 1)).double()
    model(torch.randn(5, 4, dtype=torch.float64)).pow(2).mean().backward()
    for adaptive in (False, True):
        before = [p.detach().clone() for p in model.parameters()]
        expected = sam_perturbation(model.named_parameters(), rho=0.3, adaptive=adaptive)
        sam = SAM(
            torch.optim.SGD(model.parameters(), lr=0.1),
            rho=0.3,
            adaptive=adaptive,
            param_names=model.named_parameters(),
        )
        grads = [p.grad.clone() for p in model.parameters()]
        sam.perturb()
        for (_, e), p, b in zip(expected, model.parameters(), before, strict=True):
            torch.testing.assert_close(p.detach() - b, e, rtol=1e-9, atol=1e-12)
        sam.unperturb()
        for p, g in zip(model.parameters(), grads, strict=True):
            p.grad = g
