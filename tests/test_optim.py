"""FlatAdam against torch.optim.Adam with clip_grad_norm_: the same weights and state bit for bit, either layout loads."""
import pytest
import torch
from torch import nn

from sgm_bench.optim import FlatAdam


class Net(nn.Module):
    """Tensors of assorted shapes, one parameter the forward never uses (like the `score` family's noise embedding)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.unused = nn.Linear(3, 5)
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.out = nn.Linear(4 * 6 * 6, 7)

    def forward(self, x):
        return self.out(self.norm(self.conv(x)).flatten(1))


def train(net, opt, steps, max_norm, seed=1):
    g = torch.Generator().manual_seed(seed)
    norms = []
    for _ in range(steps):
        x = torch.randn(16, 2, 6, 6, generator=g)
        loss = net(x).pow(2).mean() * 50
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if isinstance(opt, FlatAdam):
            norms.append(opt.clip_grad_norm_(max_norm))
        else:
            norms.append(torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm))
        opt.step()
    return torch.stack(norms)


@pytest.mark.parametrize("max_norm", [0.5, 1e9])  # clipping at every step, and never
def test_flat_adam_is_torch_adam_bit_for_bit(max_norm):
    ref, flat = Net(), Net()
    torch_opt = torch.optim.Adam(ref.parameters(), lr=1e-2, foreach=True)
    flat_opt = FlatAdam(flat.parameters(), lr=1e-2)
    n_ref, n_flat = train(ref, torch_opt, 30, max_norm), train(flat, flat_opt, 30, max_norm)
    assert torch.equal(n_ref, n_flat)
    assert (n_ref > max_norm).all() == (max_norm < 1)
    for a, b in zip(ref.parameters(), flat.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(flat.unused.weight, Net().unused.weight)  # never given a gradient: never moved
    mine, theirs = flat_opt.state_dict(), torch_opt.state_dict()
    assert mine["param_groups"] == theirs["param_groups"] and mine["state"].keys() == theirs["state"].keys()
    for i, s in theirs["state"].items():
        assert all(torch.equal(s[k], mine["state"][i][k]) for k in s)


def test_either_layout_resumes_into_the_other():
    """A checkpoint of torch's Adam resumes in FlatAdam and the reverse, and training goes on as if never stopped."""
    straight = Net()
    opt = torch.optim.Adam(straight.parameters(), lr=1e-2, foreach=True)
    train(straight, opt, 20, 0.5)
    first = Net()
    torch_opt = torch.optim.Adam(first.parameters(), lr=1e-2, foreach=True)
    train(first, torch_opt, 10, 0.5)
    resumed = Net()
    resumed.load_state_dict(first.state_dict())
    flat_opt = FlatAdam(resumed.parameters(), lr=1e-2)
    flat_opt.load_state_dict(torch_opt.state_dict())
    train(resumed, flat_opt, 5, 0.5, seed=1)
    back = Net()
    back.load_state_dict(resumed.state_dict())
    torch_again = torch.optim.Adam(back.parameters(), lr=1e-2, foreach=True)
    torch_again.load_state_dict(flat_opt.state_dict())
    train(back, torch_again, 5, 0.5, seed=1)
    check = Net()  # the same data order as the interrupted runs: steps 1-10, then 1-5 twice
    check_opt = torch.optim.Adam(check.parameters(), lr=1e-2, foreach=True)
    for steps in (10, 5, 5):
        train(check, check_opt, steps, 0.5)
    for a, b in zip(check.parameters(), back.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_parameter_used_at_only_some_steps_is_refused():
    net = Net()
    opt = FlatAdam(net.parameters(), lr=1e-2)
    x = torch.randn(4, 2, 6, 6)
    for step in range(2):
        opt.zero_grad()
        loss = net(x).sum() + (net.unused(torch.ones(1, 3)).sum() if step == 1 else 0)
        loss.backward()
        if step == 1:
            with pytest.raises(RuntimeError, match="parameters with gradients changed between steps"):
                opt.step()
        else:
            opt.step()
