"""snnedu.surrogate against snnTorch 1.0.0: same spikes, same gradients, for every surrogate and its parameters."""
import copy
import pickle

import pytest
import torch
from torch.testing import assert_close

from snnedu import surrogate

snntorch_surrogate = pytest.importorskip('snntorch.surrogate')

# (name, kwargs) over the defaults and a spread of parameters
CASES = [('atan', {}), ('atan', {'alpha': 4.0}), ('atan', {'alpha': 0.5}),
         ('fast_sigmoid', {}), ('fast_sigmoid', {'slope': 5}), ('fast_sigmoid', {'slope': 100}),
         ('sigmoid', {}), ('sigmoid', {'slope': 1}), ('sigmoid', {'slope': 10}),
         ('spike_rate_escape', {}), ('spike_rate_escape', {'beta': 3, 'slope': 2}),
         ('straight_through_estimator', {}), ('triangular', {}), ('triangular', {'threshold': 0.5}),
         ('heaviside', {}), ('SFS', {}), ('SFS', {'slope': 10, 'B': 0.2})]

def grad_of(spike_fn, x):
    x = x.clone().requires_grad_()
    out = spike_fn(x)
    (out * torch.linspace(0.5, 2, x.numel()).reshape(x.shape)).sum().backward()  # non-uniform upstream gradient
    return out.detach(), x.grad

@pytest.mark.parametrize('name,kwargs', CASES, ids=[f'{n}-{k}' for n, k in CASES])
@pytest.mark.parametrize('shape', [(101,), (4, 8, 3)])
def test_matches_snntorch(name, kwargs, shape):
    torch.manual_seed(0)
    x = torch.randn(shape) * 1.5
    x.view(-1)[:3] = torch.tensor([0.0, 1.0, -1.0])  # exact threshold and the kinks
    ours, ref = getattr(surrogate, name)(**kwargs), getattr(snntorch_surrogate, name)(**kwargs)
    (spk, grad), (spk_ref, grad_ref) = grad_of(ours, x), grad_of(ref, x)
    assert_close(spk, spk_ref)
    assert_close(grad, grad_ref)

def test_custom_matches_snntorch():
    fn = lambda input_, grad_input, spikes: grad_input * torch.exp(-input_.abs())
    x = torch.linspace(-2, 2, 41)
    (s, g), (sr, gr) = grad_of(surrogate.custom_surrogate(fn), x), grad_of(snntorch_surrogate.custom_surrogate(fn), x)
    assert_close(s, sr); assert_close(g, gr)

def test_sso_matches_in_distribution():
    "SSO's gradient below threshold is uniform noise (u - 1/2 + mean)·variance: compare moments with snnTorch."
    x = -torch.rand(200_000) - 0.1  # all below threshold
    torch.manual_seed(1); _, g = grad_of(surrogate.SSO(mean=0.1, variance=0.4), x)
    torch.manual_seed(2); _, gr = grad_of(snntorch_surrogate.SSO(mean=0.1, variance=0.4), x)
    w = torch.linspace(0.5, 2, x.numel())
    g, gr = g / w, gr / w
    for a, b in [(g.mean(), gr.mean()), (g.std(), gr.std()), (g.min(), gr.min()), (g.max(), gr.max())]:
        assert abs(a - b) < 3e-3
    _, g_spiking = grad_of(surrogate.SSO(), torch.rand(10) + 0.1)
    assert_close(g_spiking, torch.linspace(0.5, 2, 10))

def test_lso_works_where_snntorch_crashes():
    "snnTorch 1.0.0's LSO wraps the wrong Function and raises; ours gives 1 where fired, slope elsewhere."
    _, g = grad_of(surrogate.LSO(slope=0.2), torch.tensor([-1.0, 0.0, 0.5]))
    assert_close(g, torch.tensor([0.2, 0.2, 1.0]) * torch.linspace(0.5, 2, 3))

@pytest.mark.parametrize('dtype', [torch.float64, torch.float16, torch.bfloat16])
def test_dtype_follows_input(dtype):
    x = torch.tensor([-1.0, 0.5], dtype=dtype, requires_grad=True)
    spk = surrogate.atan()(x)
    spk.sum().backward()
    assert spk.dtype == dtype and x.grad.dtype == dtype

def test_gradcheck_float64():
    "The backward is the derivative of the smooth function the surrogate stands for."
    x = torch.linspace(-2, 2, 21, dtype=torch.float64)
    smooth = {'atan': lambda u, a=2.0: torch.atan(torch.pi / 2 * a * u) / torch.pi,
              'fast_sigmoid': lambda u, k=25: u / (1 + k * u.abs()),   # d/du = 1/(1+k|u|)^2
              'sigmoid': lambda u, k=25: torch.sigmoid(k * u)}
    for name, f in smooth.items():
        xg = x.clone().requires_grad_()
        getattr(surrogate, name)()(xg).sum().backward()
        xs = x.clone().requires_grad_()
        f(xs).sum().backward()
        assert_close(xg.grad, xs.grad)

@pytest.mark.parametrize('factory,kwargs,error,message', [
    ('atan', {'alpha': 0}, ValueError, 'alpha must be > 0'),
    ('atan', {'alpha': -1.0}, ValueError, 'alpha must be > 0'),
    ('atan', {'alpha': None}, TypeError, 'alpha must be a positive number'),
    ('fast_sigmoid', {'slope': 0}, ValueError, 'slope must be > 0'),
    ('fast_sigmoid', {'slope': '25'}, TypeError, 'slope must be a positive number'),
    ('sigmoid', {'slope': -3}, ValueError, 'slope must be > 0'),
    ('sigmoid', {'slope': True}, TypeError, 'slope must be a positive number'),
    ('spike_rate_escape', {'beta': 0}, ValueError, 'beta must be > 0'),
    ('spike_rate_escape', {'slope': -1}, ValueError, 'slope must be > 0'),
    ('triangular', {'threshold': 0}, ValueError, 'threshold must be > 0'),
    ('SFS', {'slope': 0}, ValueError, 'slope must be > 0'),
    ('SFS', {'B': 'one'}, TypeError, 'B must be a number'),
    ('LSO', {'slope': 0}, ValueError, 'slope must be > 0'),
    ('SSO', {'variance': 0}, ValueError, 'variance must be > 0'),
    ('SSO', {'mean': 'zero'}, TypeError, 'mean must be a number'),
    ('custom_surrogate', {'custom_surrogate_function': 'not callable'}, TypeError, 'custom_surrogate_function must be a function'),
])
def test_bad_parameters_raise_clearly(factory, kwargs, error, message):
    with pytest.raises(error, match=message): getattr(surrogate, factory)(**kwargs)

def test_spike_functions_pickle_and_deepcopy():
    for fn in [surrogate.atan(alpha=3.0), surrogate.fast_sigmoid(slope=7), surrogate.SSO(mean=0.1)]:
        for clone in (pickle.loads(pickle.dumps(fn)), copy.deepcopy(fn)):
            assert repr(clone) == repr(fn)
            assert_close(clone(torch.tensor([0.3, -0.3])), torch.tensor([1.0, 0.0]))


# --- Issue 19 item 1: finite, exact gradients over the whole input range, in every float dtype -------------------
import math

import mpmath

mpmath.mp.dps = 60
_pi = mpmath.pi

# The exact derivative each surrogate stands for, at an exact (mpmath) input; parameters as in `CASES`.
EXACT = {
    'atan': lambda x, alpha=2.0: (mpmath.mpf(alpha) / 2) / (1 + (_pi / 2 * alpha * x) ** 2),
    'fast_sigmoid': lambda x, slope=25: 1 / (slope * abs(x) + 1) ** 2,
    'sigmoid': lambda x, slope=25: slope * mpmath.exp(-slope * abs(x)) / (1 + mpmath.exp(-slope * abs(x))) ** 2,
    'spike_rate_escape': lambda x, beta=1, slope=25: slope * mpmath.exp(-beta * abs(x - 1)),
    'straight_through_estimator': lambda x: mpmath.mpf(1),
    'triangular': lambda x, threshold=1: mpmath.mpf(threshold) if x < 0 else -mpmath.mpf(threshold),
    'heaviside': lambda x: mpmath.mpf(1) if x > 0 else mpmath.mpf(0),
    'SFS': lambda x, slope=25, B=1: (1 if x - B > 0 else 0) / (slope * abs(x) + 1) ** 2,
    'LSO': lambda x, slope=0.1: mpmath.mpf(1) if x > 0 else mpmath.mpf(slope),
}
RANGE_CASES = CASES + [('LSO', {}), ('LSO', {'slope': 0.5}), ('atan', {'alpha': 10.0})]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]

def whole_range(dtype):
    "Inputs from -inf to inf: zero, tiny, the region around threshold, where exp/x² overflow, and the dtype's extremes."
    fi = torch.finfo(dtype)
    mags = [0.0, fi.tiny, 1e-6, 1e-3, 0.05, 0.2, 0.45, 0.5, 1.0, 1.5, 2.0, 3.0, 3.55, 3.6, 5.0, 10.0, 50.0, 100.0, 256.0,
            300.0, 1e3, 1e4, 6e4, 1e6, 1e12, 1e19, 1e20, 1e30, 1e38, 1e100, 1e300, fi.max, math.inf]
    x = torch.tensor(sorted({s * m for m in mags for s in (1.0, -1.0)}), dtype=torch.float64)
    x = torch.cat([x, torch.linspace(-6, 6, 241, dtype=torch.float64)])
    return x.to(dtype).unique()          # values that round to the same number (or to ±inf) appear once

def exact_grad(name, kwargs, x):
    "The exact derivative at each value of `x` (already in its dtype), rounded once to float64."
    f = EXACT[name]
    return torch.tensor([float(f(mpmath.mpf(v), **kwargs)) for v in x.double().tolist()], dtype=torch.float64)

@pytest.mark.parametrize('dtype', DTYPES, ids=lambda d: str(d).split('.')[-1])
@pytest.mark.parametrize('name,kwargs', RANGE_CASES, ids=[f'{n}-{k}' for n, k in RANGE_CASES])
def test_gradient_is_finite_and_exact_over_the_whole_range(name, kwargs, dtype):
    "Finite everywhere, and equal to the exact derivative rounded to the dtype (to a few ulps, or to the smallest normal)."
    x = whole_range(dtype).requires_grad_()
    spk = getattr(surrogate, name)(**kwargs)(x)
    spk.sum().backward()
    assert spk.dtype == dtype and x.grad.dtype == dtype
    assert torch.isfinite(x.grad).all(), x[~torch.isfinite(x.grad)].tolist()
    # SFS compares x > B in x's dtype (as snnTorch does), so the reference uses B rounded to that dtype
    ref_kwargs = {**kwargs, 'B': torch.tensor(kwargs.get('B', 1), dtype=dtype).item()} if name == 'SFS' else kwargs
    ref = exact_grad(name, ref_kwargs, x.detach())
    fi, xd = torch.finfo(dtype), x.detach().double()
    # the error budget: a few ulps times the derivative's condition number (exp(-k|x|) amplifies the rounding of k|x|
    # k|x|-fold), plus the smallest normal number (values below it may flush to 0)
    cond = {'sigmoid': kwargs.get('slope', 25) * xd.abs(),
            'spike_rate_escape': kwargs.get('beta', 1) * (xd.abs() + 1)}.get(name, torch.full_like(xd, 2.0))
    allowed = 4 * fi.eps * ref.abs() * (1 + cond.nan_to_num(posinf=0)) + fi.tiny
    err = (x.grad.double() - ref).abs()
    assert (err <= allowed).all(), (name, dtype, xd[err > allowed].tolist()[:5], x.grad[err > allowed].tolist()[:5],
                                    ref[err > allowed].tolist()[:5])

@pytest.mark.parametrize('dtype', DTYPES, ids=lambda d: str(d).split('.')[-1])
def test_sso_gradient_is_finite_over_the_whole_range(dtype):
    x = whole_range(dtype).requires_grad_()
    surrogate.SSO(mean=0.1, variance=0.4)(x).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[x.detach() > 0] == 1).all() and (x.grad[x.detach() <= 0].abs() <= 0.4).all()

@pytest.mark.parametrize('dtype', [torch.float32, torch.float64], ids=['float32', 'float64'])
@pytest.mark.parametrize('name,kwargs', CASES, ids=[f'{n}-{k}' for n, k in CASES])
def test_equal_to_snntorch_wherever_snntorch_is_finite(name, kwargs, dtype):
    "The stable forms change no number that snnTorch gets right; snnTorch's sigmoid is NaN below x ≈ -3.55 (float32)."
    x = whole_range(dtype)
    (_, ours), (_, ref) = grad_of(getattr(surrogate, name)(**kwargs), x), grad_of(getattr(snntorch_surrogate, name)(**kwargs), x)
    finite = torch.isfinite(ref)
    assert_close(ours[finite], ref[finite].to(dtype))
    if name == 'sigmoid': assert not finite.all()      # the case this fixes: snnTorch 1.0.0 gives NaN there

def test_one_inhibited_neuron_keeps_the_layer_gradient_finite():
    "The user-visible symptom (issue 19): one neuron far below threshold turned every weight gradient of its layer NaN."
    import snnedu as snn
    torch.manual_seed(0)
    fc, lif = torch.nn.Linear(4, 3), snn.Leaky(beta=0.9, spike_grad=surrogate.sigmoid())
    x = torch.rand(5, 2, 4)
    with torch.no_grad(): fc.bias[0] = -50.0                      # neuron 0: mem - threshold << -3.5
    mem, out = None, []
    for x_t in x:
        spk, mem = lif(fc(x_t), mem)
        out.append(spk)
    (torch.stack(out).sum() + mem.sum()).backward()
    assert torch.isfinite(fc.weight.grad).all() and torch.isfinite(fc.bias.grad).all()
