"""model.lazy_adam: the same steps as torch's SparseAdam with Adam's coupled L2 on the touched rows."""
import pytest
import torch

from model.lazy_adam import LazyAdam


def _steps(make_opt, weight_decay: float, n_steps: int = 6) -> torch.Tensor:
    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(50, 8, mode="mean", sparse=True)
    opt = make_opt(bag.parameters())
    gen = torch.Generator().manual_seed(1)
    for _ in range(n_steps):
        items = torch.randint(0, 20, (16, 5), generator=gen)  # rows 20-49 never touched; duplicates in a step
        loss = (bag(items) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        if weight_decay and isinstance(opt, torch.optim.SparseAdam):  # the coupled L2, by hand, on touched rows
            g = bag.weight.grad.coalesce()
            rows = g.indices()[0]
            vals = g.values() + weight_decay * bag.weight.detach()[rows]
            bag.weight.grad = torch.sparse_coo_tensor(g.indices(), vals, g.shape)
        opt.step()
    return bag.weight.detach().clone()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_lazy_adam_takes_sparse_adams_steps(weight_decay):
    ours = _steps(lambda p: LazyAdam(p, lr=0.05, weight_decay=weight_decay), weight_decay)
    torch_s = _steps(lambda p: torch.optim.SparseAdam(p, lr=0.05), weight_decay)
    torch.manual_seed(0)
    start = torch.nn.EmbeddingBag(50, 8, mode="mean", sparse=True).weight.detach()
    assert not torch.allclose(ours[:20], start[:20])  # the touched rows moved
    assert torch.equal(ours[20:], start[20:])  # the untouched ones did not (lazy)
    assert torch.allclose(ours, torch_s, atol=1e-6, rtol=1e-5)


def test_weight_decay_changes_the_steps():
    assert not torch.allclose(_steps(lambda p: LazyAdam(p, lr=0.05), 0.0),
                              _steps(lambda p: LazyAdam(p, lr=0.05, weight_decay=0.5), 0.5))


def test_a_dense_gradient_is_refused():
    w = torch.nn.Parameter(torch.ones(3, 2))
    (w ** 2).sum().backward()
    with pytest.raises(RuntimeError, match="sparse gradient"):
        LazyAdam([w]).step()
