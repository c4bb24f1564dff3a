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
