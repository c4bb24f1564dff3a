"""GradedSpikes, BatchNormTT1d, BatchNormTT2d against snnTorch 1.0.0, plus snnTorch's own tests of them.

The snnTorch tests are adapted from tests/test_snntorch/test_graded_spikes.py and test_bntt.py
(github.com/jeshraghian/snntorch, MIT licence) with only the import changed. Left out on purpose:
snnTorch's `test_graded_spikes`, whose body is `assert False` (it fails against snnTorch itself).
"""
import pytest
import torch
from torch.testing import assert_close

import snnedu as snn
from snnedu.layers import BatchNormTT1d, BatchNormTT2d, GradedSpikes

snntorch = pytest.importorskip("snntorch")


@pytest.mark.parametrize("constant_factor", [None, 1.0, 2.5, -0.5])
def test_graded_spikes_matches_snntorch(constant_factor):
    torch.manual_seed(3); ref = snntorch.GradedSpikes(4, constant_factor)
    torch.manual_seed(3); ours = GradedSpikes(4, constant_factor)
    assert_close(ours.weights, ref.weights)                                  # same init, same shape (4, 1)
    x = (torch.rand(4, 6) > 0.5).float().requires_grad_(True)               # snnTorch's layout (size, L)
    xr = x.detach().clone().requires_grad_(True)
    out, out_ref = ours(x), ref(xr)
    assert_close(out, out_ref)
    (out * torch.arange(6.0)).sum().backward(); (out_ref * torch.arange(6.0)).sum().backward()
    assert_close(x.grad, xr.grad); assert_close(ours.weights.grad, ref.weights.grad)
    ours.load_state_dict(ref.state_dict())


def test_graded_spikes_neurons_last():
    gs = GradedSpikes(3, None)
    for shape in [(3,), (5, 3), (1, 3), (7, 5, 3), (3, 3)]:
        x = torch.rand(shape)
        assert_close(gs(x), x * gs.weights.flatten())                        # per neuron, on the last axis
    x = torch.rand(10, 2, 3, requires_grad=True)
    gs(x).sum().backward()
    assert_close(gs.weights.grad.flatten(), x.detach().sum((0, 1)))
    assert GradedSpikes(3, 0)(torch.ones(2, 3)).abs().sum() == 0            # 0 means 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_graded_spikes_dtypes(dtype):
    assert GradedSpikes(3, 2.0)(torch.ones(2, 3, dtype=dtype)).dtype == dtype


@pytest.mark.parametrize("make, ref_make, shape", [(BatchNormTT1d, "BatchNormTT1d", (6, 4)), (BatchNormTT1d, "BatchNormTT1d", (6, 4, 5)),
                                                   (BatchNormTT2d, "BatchNormTT2d", (6, 4, 3, 3))])
@pytest.mark.parametrize("kw", [dict(), dict(eps=1e-3, momentum=0.3), dict(affine=False), dict(momentum=None)])
def test_bntt_matches_snntorch(make, ref_make, shape, kw):
    ref, ours = getattr(snntorch, ref_make)(4, 3, **kw), make(4, 3, **kw)
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert repr(ours) == repr(ref)
    torch.manual_seed(0)
    with torch.no_grad():
        for p, q in zip(ref.parameters(), ours.parameters()): p.uniform_(0.5, 1.5); q.copy_(p)
    x = torch.randn(3, *shape) * 2 + 1
    for mode in ("train", "eval"):
        getattr(ref, mode)(); getattr(ours, mode)()
        xr, xo = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        out_r = torch.stack([bn(xr[t]) for t, bn in enumerate(ref)])
        out_o = torch.stack([bn(xo[t]) for t, bn in enumerate(ours)])
        assert_close(out_o, out_r)
        (out_r ** 2).sum().backward(); (out_o ** 2).sum().backward()
        assert_close(xo.grad, xr.grad)
        for p, q in zip(ref.parameters(), ours.parameters()): assert_close(q.grad, p.grad)
    assert_close(ours.state_dict(), ref.state_dict())


def test_top_level_and_save_load(tmp_path):
    assert snn.GradedSpikes is GradedSpikes and snn.BatchNormTT1d is BatchNormTT1d and snn.BatchNormTT2d is BatchNormTT2d
    bntt = BatchNormTT2d(2, 3)
    bntt[1](torch.randn(4, 2, 3, 3))
    torch.save(bntt.state_dict(), tmp_path / "b.pt")
    fresh = BatchNormTT2d(2, 3); fresh.load_state_dict(torch.load(tmp_path / "b.pt"))
    assert_close(fresh[1].running_mean, bntt[1].running_mean)


BAD = [(lambda: GradedSpikes(0, 1.0), ValueError, "size must be a positive integer"),
       (lambda: GradedSpikes(2.5, 1.0), TypeError, "size must be a positive integer"),
       (lambda: GradedSpikes(3, "x"), TypeError, "constant_factor must be a number"),
       (lambda: GradedSpikes(3, 1.0)(torch.ones(2, 4)), ValueError, "size = 3 neurons on its last axis"),
       (lambda: GradedSpikes(3, 1.0)([1, 0, 1]), TypeError, "x must be a tensor"),
       (lambda: BatchNormTT1d(4, 0), ValueError, "time_steps must be a positive integer"),
       (lambda: BatchNormTT1d(-1, 2), ValueError, "input_features must be a positive integer"),
       (lambda: BatchNormTT2d(4, 2.0), TypeError, "time_steps must be a positive integer")]


@pytest.mark.parametrize("make, error, message", BAD)
def test_bad_input(make, error, message):
    with pytest.raises(error) as info: make()
    assert message in str(info.value)


# ---- snnTorch 1.0.0's own tests (test_graded_spikes.py, test_bntt.py), import changed ----

def test_snntorch_graded_spikes_constant_factor_one():
    input_ = torch.Tensor([0.0, 1.0, 2.0]).unsqueeze(-1)
    out = snn.GradedSpikes(size=3, constant_factor=1.0)(input_)
    assert torch.all(torch.eq(input=input_, other=out))


@pytest.mark.parametrize("cls", ["BatchNormTT1d", "BatchNormTT2d"])
@pytest.mark.parametrize("time_steps, num_features", ([1, 1], [3, 2], [6, 3]))
def test_snntorch_batchnormtt_init(cls, time_steps, num_features):
    bntt = getattr(snn, cls)(num_features, time_steps)
    assert len(bntt) == time_steps
    for module in bntt:
        assert module.num_features == num_features and module.eps == 1e-5 and module.momentum == 0.1
        assert module.affine and module.bias is None


@pytest.mark.parametrize("cls, shape", [("BatchNormTT1d", (2, 2, 4)), ("BatchNormTT1d", (2, 2, 4, 5)), ("BatchNormTT2d", (2, 2, 4, 2, 2))])
def test_snntorch_batchnormtt_inputs(cls, shape):
    x = torch.rand(shape)
    for step, module in enumerate(getattr(snn, cls)(4, 2)):
        assert module(x[step]).shape == x[step].shape
