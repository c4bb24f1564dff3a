"""AssociativeLeaky against snnTorch 1.0.0 (values and gradients), plus snnTorch's own tests of it.

The second half adapts snnTorch's tests/test_snntorch/test_associativeleaky.py (github.com/jeshraghian/snntorch,
MIT licence) with only the import changed.
"""
import inspect

import pytest
import torch
from torch.testing import assert_close

import snnedu as snn
from snnedu.neurons.associative import AssociativeLeaky, associative_states

snntorch = pytest.importorskip("snntorch")
TOL = dict(rtol=1e-5, atol=1e-5)
# snnTorch's prefix-product formula (with its 1e-8 guard) is within float32 rounding of the exact recurrence only
# for the first few steps (measured in float64: 1e-6 apart at T=4, 1e-3 at T=12), so parity is checked for T <= 3.


def _pair(*args, **kw):
    torch.manual_seed(0); ref = snntorch.AssociativeLeaky(*args, **kw)
    torch.manual_seed(0); ours = AssociativeLeaky(*args, **kw)
    return ref, ours


def _run(module, x):
    x = x.clone().requires_grad_(True)
    y = module(x)
    (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
    return y.detach(), x.grad, {n: p.grad for n, p in module.named_parameters()}


@pytest.mark.parametrize("dims", [(6, 2, 3, 6), (8, 4, 4, 16), (5, 1, 1, 1), (7, 3, 2, 6)])
@pytest.mark.parametrize("use_q", [True, False])
@pytest.mark.parametrize("output", [True, False])
@pytest.mark.parametrize("T", [1, 2, 3])
def test_matches_snntorch(dims, use_q, output, T):
    ref, ours = _pair(*dims, use_q_projection=use_q)
    ref.output = ours.output = output
    for (n, p), (m, q) in zip(ref.named_parameters(), ours.named_parameters()):
        assert n == m; assert_close(q, p)                      # same construction order: same weights
    torch.manual_seed(T)
    x = torch.randn(T, 3, dims[0])
    (y_r, gx_r, g_r), (y_o, gx_o, g_o) = _run(ref, x), _run(ours, x)
    assert_close(y_o, y_r, **TOL); assert_close(gx_o, gx_r, **TOL)
    assert set(g_o) == set(g_r)
    for n in g_o: assert_close(g_o[n], g_r[n], **TOL, msg=n)


def test_recurrence_exact_for_long_sequences():
    "snnTorch's one-shot formula loses the memory after ~30 steps; ours equals a float64 reference loop."
    T, in_dim = 80, 4
    ref, ours = _pair(in_dim, 2, 2, 4, use_q_projection=False)
    ref.output = ours.output = False                          # compare the membranes themselves
    x = torch.randn(T, 2, in_dim)
    exact = AssociativeLeaky(in_dim, 2, 2, 4, use_q_projection=False).double()
    exact.load_state_dict(ours.state_dict()); exact.output = False
    truth = exact(x.double())
    assert_close(ours(x), truth.float(), rtol=1e-4, atol=1e-4)
    assert (ref(x) - truth).abs().max() > 1e-2               # snnTorch 1.0.0 drifts


def test_recurrence_equals_closed_form():
    "S[t] = sum_r (prod_{s=r+1..t} alpha[s]) v[r] k[r]^T, summed term by term in float64 (an independent oracle)."
    T = 12
    v, k, alpha = torch.randn(T, 2, 3, dtype=torch.float64), torch.randn(T, 2, 4, dtype=torch.float64), torch.rand(T, 2, 4, dtype=torch.float64)
    S = associative_states(v, k, alpha)
    for t in range(T):
        want = sum(torch.prod(alpha[r + 1:t + 1], 0).unsqueeze(1) * torch.einsum("bd,bn->bdn", v[r], k[r]) for r in range(t + 1))
        assert_close(S[t], want)
    assert torch.autograd.gradcheck(associative_states, (v[:4].requires_grad_(), k[:4].requires_grad_(), alpha[:4].requires_grad_()))


def test_state_dict_and_dtypes(tmp_path):
    ref, ours = _pair(6, 2, 3, 6)
    assert list(ours.state_dict()) == [k for k in ref.state_dict()]
    ours.load_state_dict(ref.state_dict())
    torch.save(ours.state_dict(), tmp_path / "a.pt")
    fresh = AssociativeLeaky(6, 2, 3, 6); fresh.load_state_dict(torch.load(tmp_path / "a.pt"))
    x = torch.randn(4, 2, 6)
    assert_close(fresh(x), ours(x))
    assert fresh.double()(x.double()).dtype == torch.float64
    assert_close(ours.sequence(x), ours(x))


def test_signature_and_top_level():
    assert snn.AssociativeLeaky is AssociativeLeaky
    assert str(inspect.signature(AssociativeLeaky)) == str(inspect.signature(snntorch.AssociativeLeaky))
    assert str(inspect.signature(AssociativeLeaky.from_num_spiking_neurons)) == str(inspect.signature(snntorch.AssociativeLeaky.from_num_spiking_neurons))
    assert AssociativeLeaky(4, 2, 3, None).num_spiking_neurons == 6 and AssociativeLeaky(4, 2, 3, None).to_q.out_features == 6


BAD = [(lambda: AssociativeLeaky(8, 2, 3, 5), ValueError, "num_spiking_neurons=5 must equal d_value * d_key = 2 * 3 = 6"),
       (lambda: AssociativeLeaky(0, 2, 3, 6), ValueError, "in_dim must be a positive integer"),
       (lambda: AssociativeLeaky(8, 2.0, 3, 6), TypeError, "d_value must be a positive integer"),
       (lambda: AssociativeLeaky(8, 2, -3, 6), ValueError, "d_key must be a positive integer"),
       (lambda: AssociativeLeaky.from_num_spiking_neurons(8, 0), ValueError, "must be a positive integer"),
       (lambda: AssociativeLeaky.from_num_spiking_neurons(8, 10), ValueError, "must be a perfect square"),
       (lambda: AssociativeLeaky(8, 2, 3, 6)(torch.rand(4, 2, 7)), ValueError, "(T, B, in_dim) = (T, B, 8)"),
       (lambda: AssociativeLeaky(8, 2, 3, 6)(torch.rand(4, 8)), ValueError, "(T, B, in_dim) = (T, B, 8)"),
       (lambda: AssociativeLeaky(8, 2, 3, 6)("x"), ValueError, "got str")]


@pytest.mark.parametrize("make, error, message", BAD)
def test_bad_input(make, error, message):
    with pytest.raises(error) as info: make()
    assert message in str(info.value)


# ---- snnTorch 1.0.0's own tests (tests/test_snntorch/test_associativeleaky.py), import changed ----

def _make_input(T=5, B=2, in_dim=16):
    x = torch.arange(T * B * in_dim, dtype=torch.float32)
    return (x / (T * B * in_dim)).view(T, B, in_dim)


def test_snntorch_d_value_d_key_positive():
    for d_value, d_key in ((0, 4), (4, 0), (-1, 4), (4, -1)):
        with pytest.raises(ValueError): AssociativeLeaky(in_dim=8, d_value=d_value, d_key=d_key, num_spiking_neurons=16)


def test_snntorch_from_n_requires_perfect_square():
    with pytest.raises(ValueError): AssociativeLeaky.from_num_spiking_neurons(in_dim=8, num_spiking_neurons=18)


def test_snntorch_num_spiking_neurons_consistency():
    with pytest.raises(ValueError): AssociativeLeaky(in_dim=8, d_value=2, d_key=3, num_spiking_neurons=5)


@pytest.mark.parametrize("use_q", [True, False])
def test_snntorch_forward_shape_and_finite(use_q):
    m = AssociativeLeaky(in_dim=16, d_value=4, d_key=4, num_spiking_neurons=16, use_q_projection=use_q)
    y = m(_make_input())
    assert y.shape == (5, 2, 16) and torch.isfinite(y).all()


def test_snntorch_q_projection_shapes_and_output_flag():
    x = _make_input()
    assert AssociativeLeaky(16, 4, 4, 16, use_q_projection=True)(x).shape == (5, 2, 16)
    assert AssociativeLeaky(16, 4, 4, 16, use_q_projection=False)(x).shape == (5, 2, 16)
    model = AssociativeLeaky(in_dim=16, d_value=4, d_key=4, num_spiking_neurons=16, use_q_projection=True)
    model.output = False
    assert model(x).shape == (5, 2, 16)


def test_snntorch_backward_populates_internal_params():
    model_q = AssociativeLeaky(in_dim=16, d_value=4, d_key=4, num_spiking_neurons=16, use_q_projection=True)
    model_q.train()
    model_q(_make_input()).sum().backward()
    for layer in (model_q.to_v, model_q.to_k, model_q.to_alpha, model_q.to_q): assert layer.weight.grad is not None


def test_snntorch_chunking_matches_full():
    torch.manual_seed(0)
    T, B, in_dim, chunk_size = 8, 6, 16, 2
    x = _make_input(T, B, in_dim)
    pre = torch.nn.Linear(in_dim, in_dim, bias=False)
    model = AssociativeLeaky(in_dim=in_dim, d_value=4, d_key=4, num_spiking_neurons=16, use_q_projection=True)
    y_full = model(pre(x)); y_full.sum().backward()
    grad_full = pre.weight.grad.detach().clone()
    pre.zero_grad(set_to_none=True); model.zero_grad(set_to_none=True)
    ys = []
    for b in range(0, B, chunk_size):
        y = model(pre(x[:, b:b + chunk_size, :])); ys.append(y); y.sum().backward()
    assert y_full.shape == torch.cat(ys, dim=1).shape
    assert torch.allclose(y_full, torch.cat(ys, dim=1), atol=1e-6)
    assert torch.allclose(grad_full, pre.weight.grad, atol=1e-6)


def test_snntorch_fixture_smoke():
    for m in (AssociativeLeaky(16, 4, 4, 16, True), AssociativeLeaky(16, 4, 4, 16, False),
              AssociativeLeaky.from_num_spiking_neurons(in_dim=16, num_spiking_neurons=16, use_q_projection=True),
              AssociativeLeaky.from_num_spiking_neurons(in_dim=16, num_spiking_neurons=16, use_q_projection=False)):
        assert isinstance(m, AssociativeLeaky)
