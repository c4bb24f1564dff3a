"""Determinism: with a fixed seed, training the quickstart network (snnedu.train.quickstart_net, trained by
snnedu.train.train through the fused `sequence` path) twice gives bit-identical weights; another seed does not."""
import torch
from torch.utils.data import DataLoader, TensorDataset

from snnedu.train import quickstart_net, train

def trained_weights(seed):
    torch.manual_seed(seed)
    net = quickstart_net()
    g = torch.Generator().manual_seed(0)                          # the data is the same for every seed
    ds = TensorDataset(torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g))
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(seed))
    losses = train(net, loader, num_steps=4, epochs=1, max_batches=2, progress=False)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}, losses

def test_same_seed_same_weights():
    (a, la), (b, lb) = trained_weights(0), trained_weights(0)
    assert la == lb
    for k in a: assert torch.equal(a[k], b[k]), k
    torch.manual_seed(0); init = quickstart_net().state_dict()
    assert any(not torch.equal(a[k], init[k]) for k in a if k.endswith("weight"))   # training moved the weights

def test_other_seed_other_weights():
    a, b = trained_weights(0)[0], trained_weights(1)[0]
    assert any(not torch.equal(a[k], b[k]) for k in a)
