"""Adam over one flat tensor: torch's update with one kernel per operation instead of one per parameter tensor."""
from __future__ import annotations

import torch


class FlatAdam(torch.optim.Adam):
    """torch.optim.Adam (foreach) over one flat tensor that the parameters are views of. Each step copies the gradients
    into one flat gradient, clips it with one multiplication and updates it with one kernel per Adam operation, where
    torch loops over the ~100 small tensors of a U-Net. Adam's arithmetic is elementwise, so the updates, the norm and
    the clipping equal torch's per-tensor ones bit for bit. Like torch, a parameter that never gets a gradient is left
    out of the norm and never moves; one that gets gradients only at some steps is refused, since the flat step would
    move it at the others. state_dict() and load_state_dict() use torch's per-parameter layout: a checkpoint of either
    optimizer loads into the other."""

    def __init__(self, params, lr: float):
        self.views = list(params)
        sizes = [p.numel() for p in self.views]
        flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in self.views]))
        ends = torch.tensor(sizes).cumsum(0).tolist()
        self.slices = [slice(end - n, end) for n, end in zip(sizes, ends)]
        for p, s in zip(self.views, self.slices):
            p.data = flat.data[s].view_as(p)
        flat.grad = torch.zeros_like(flat)
        self.grad_views = [flat.grad[s].view_as(p) for p, s in zip(self.views, self.slices)]
        self.used = None  # the indices of the parameters with gradients, fixed at the first step
        self.gathered = None  # this step's gradients, once copied into the flat one
        super().__init__([flat], lr=lr, foreach=True)
        self.flat = flat

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.views:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _gather(self) -> list:
        """Copy the gradients into the flat one, once per step (clip_grad_norm_, then step); returns them."""
        if self.gathered is not None:
            return self.gathered
        used = [i for i, p in enumerate(self.views) if p.grad is not None]
        if self.used is None:
            self.used = used
        elif used != self.used:
            raise RuntimeError("FlatAdam: the parameters with gradients changed between steps "
                               f"({len(self.used)} -> {len(used)}); a parameter used at only some steps would move at "
                               "the others: train such a model with torch.optim.Adam")
        self.gathered = [self.views[i].grad for i in used]
        torch._foreach_copy_([self.grad_views[i] for i in used], self.gathered)
        return self.gathered

    def clip_grad_norm_(self, max_norm: float) -> torch.Tensor:
        """torch.nn.utils.clip_grad_norm_: the norm of the gradients' norms; the flat gradient scaled by one kernel."""
        total = torch.nn.utils.get_total_norm(self._gather(), 2.0)
        torch.nn.utils.clip_grads_with_norm_([self.flat], max_norm, total)
        return total

    def step(self, closure=None):
        self._gather()
        try:
            return super().step(closure)
        finally:
            self.gathered = None

    def state_dict(self) -> dict:
        """torch's per-parameter layout: the flat moments cut into the parameters' shapes, a step count each."""
        sd = super().state_dict()
        flat = sd["state"].get(0)
        state = {i: {k: v[self.slices[i]].view_as(self.views[i]) if _moment(v) else _own(v) for k, v in flat.items()}
                 for i in self.used} if flat else {}
        return {"state": state, "param_groups": [{**sd["param_groups"][0], "params": list(range(len(self.views)))}]}

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's per-parameter layout (this optimizer's or torch.optim.Adam's), joined into the flat moments."""
        group, per = state_dict["param_groups"][0], state_dict["state"]
        if len(state_dict["param_groups"]) != 1 or len(group["params"]) != len(self.views):
            raise ValueError(f"FlatAdam: the state is of {len(group['params'])} parameters, this optimizer has "
                             f"{len(self.views)}")
        state = {}
        if per:
            self.used = sorted(per)
            first = per[self.used[0]]
            state[0] = {k: torch.zeros_like(self.flat.data) if _moment(v) else v for k, v in first.items()}
            for k, buf in state[0].items():
                if _moment(buf):
                    for i in self.used:
                        buf[self.slices[i]] = per[i][k].reshape(-1)
        super().load_state_dict({"state": state, "param_groups": [{**group, "params": [0]}]})


def _moment(v) -> bool:
    """A per-element state tensor (Adam's moments), not the 0-d step count."""
    return torch.is_tensor(v) and v.dim() > 0


def _own(v):
    """A parameter's own copy of a shared 0-d state tensor (torch's Adam adds 1 to each parameter's step tensor)."""
    return v.clone() if torch.is_tensor(v) else v


def adam(params, lr: float) -> FlatAdam:
    """Adam as everything in the suite trains with it: torch's multi-tensor (foreach) update over one flat tensor."""
    return FlatAdam(params, lr)
