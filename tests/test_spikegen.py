"""snnedu.spikegen against snnTorch 1.0.0: deterministic encoders give identical tensors, rate coding the same
draws under the same seed and the right statistics; every bad input raises a clear error."""
import pytest
import torch
from torch.testing import assert_close

from snnedu import spikegen

ref = pytest.importorskip('snntorch.spikegen')

def unit_data(shape=(4, 7), seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    x.view(-1)[:4] = torch.tensor([0.0, 1.0, 0.01, 0.005])  # edges: 0, 1, at and below the threshold
    return x

# ---------------------------------------------------------------- rate
@pytest.mark.parametrize('num_steps,gain,offset,fst', [(1, 1, 0, 0), (5, 1, 0, 0), (10, 0.5, 0, 3), (7, 0.5, 0.25, 0), (3, 1, 0, 2)])
@pytest.mark.parametrize('shape', [(6,), (2, 3, 4)])
def test_rate_same_draws_as_snntorch(num_steps, gain, offset, fst, shape):
    x = unit_data(shape)
    torch.manual_seed(1); ours = spikegen.rate(x, num_steps=num_steps, gain=gain, offset=offset, first_spike_time=fst)
    torch.manual_seed(1); theirs = ref.rate(x, num_steps=num_steps, gain=gain, offset=offset, first_spike_time=fst)
    assert ours.shape == (num_steps, *shape)
    assert_close(ours, theirs)

@pytest.mark.parametrize('fst', [0, 2])
def test_rate_time_varying_same_draws(fst):
    x = unit_data((5, 3, 2))
    torch.manual_seed(3); ours = spikegen.rate(x, time_var_input=True, first_spike_time=fst)
    torch.manual_seed(3); theirs = ref.rate(x, time_var_input=True, first_spike_time=fst)
    assert_close(ours, theirs)
    assert ours.shape == (5 + fst, 3, 2)

def test_rate_conv_same_draws():
    x = unit_data((8, 8))
    torch.manual_seed(5); ours = spikegen.rate_conv(x)
    torch.manual_seed(5); theirs = ref.rate_conv(x)
    assert_close(ours, theirs)

@pytest.mark.parametrize('p', [0.0, 0.1, 0.5, 0.9, 1.0])
def test_rate_statistics(p):
    torch.manual_seed(0)
    T, n = 50, 4000
    spk = spikegen.rate(torch.full((n,), p), num_steps=T, gain=0.5, offset=p / 2)   # P = p
    assert set(spk.unique().tolist()) <= {0.0, 1.0}
    rate_hat = spk.mean().item()
    assert abs(rate_hat - p) < 4 * (p * (1 - p) / (T * n)) ** 0.5 + 1e-9              # 4 sigma
    # independent steps: the count variance is binomial
    assert abs(spk.sum(0).var().item() - T * p * (1 - p)) < 0.15 * T * 0.25 + 1e-9

def test_rate_dtype_follows_input():
    assert spikegen.rate(torch.rand(3, dtype=torch.float64), num_steps=2).dtype == torch.float64
    assert spikegen.rate(torch.tensor([0, 1]), num_steps=2).dtype == torch.get_default_dtype()
    assert spikegen.rate_conv(torch.rand(3, dtype=torch.float16)).dtype == torch.float16

def test_rate_time_varying_applies_gain():
    torch.manual_seed(0)
    assert spikegen.rate(torch.ones(4, 100), time_var_input=True, gain=0).sum() == 0    # snnTorch ignores gain here

@pytest.mark.parametrize('call,match', [
    (lambda x: spikegen.rate(x), 'num_steps'),
    (lambda x: spikegen.rate(x, num_steps=0), 'num_steps'),
    (lambda x: spikegen.rate(x, num_steps=-3), 'num_steps'),
    (lambda x: spikegen.rate(x, num_steps=2.5), 'num_steps'),
    (lambda x: spikegen.rate(x, num_steps=5, first_spike_time=5), 'first_spike_time'),
    (lambda x: spikegen.rate(x, num_steps=5, first_spike_time=-1), 'first_spike_time'),
    (lambda x: spikegen.rate(x, num_steps=5, gain=3), r'gain·data \+ offset'),
    (lambda x: spikegen.rate(x - 1, num_steps=5), 'spike probabilities in \\[0, 1\\]'),
    (lambda x: spikegen.rate(x, num_steps=5, time_var_input=True), 'num_steps must not be given'),
    (lambda x: spikegen.rate_conv(x + 0.5), 'rate_conv: data'),
    (lambda x: spikegen.rate_conv(torch.tensor([float('nan')])), 'rate_conv: data'),
])
def test_rate_bad_input(call, match):
    with pytest.raises(ValueError, match=match): call(unit_data((5,)))

def test_rate_not_a_tensor():
    with pytest.raises(TypeError, match='torch.Tensor'): spikegen.rate([0.5], num_steps=2)

# ---------------------------------------------------------------- latency
LAT_GRID = [dict(num_steps=10, bypass=True), dict(num_steps=10, normalize=True), dict(num_steps=10, normalize=True, linear=True),
            dict(num_steps=10, linear=True, tau=5), dict(num_steps=20, tau=3, bypass=True), dict(bypass=True),
            dict(num_steps=12, normalize=True, first_spike_time=3), dict(num_steps=12, normalize=True, linear=True, first_spike_time=4),
            dict(num_steps=10, normalize=True, clip=True), dict(num_steps=10, normalize=True, on_target=2, off_target=0.5),
            dict(num_steps=15, threshold=0.2, tau=2, normalize=True), dict(num_steps=8, normalize=True, interpolate=True),
            dict(num_steps=8, normalize=True, linear=True, interpolate=True, on_target=3, off_target=1),
            dict(num_steps=30, tau=2, interpolate=True, bypass=True), dict(num_steps=6, linear=True, tau=5, epsilon=1e-4)]

@pytest.mark.parametrize('kw', LAT_GRID, ids=[str(k) for k in LAT_GRID])
@pytest.mark.parametrize('shape', [(7,), (3, 5, 2)])
def test_latency_matches_snntorch(kw, shape):
    x = unit_data(shape)
    assert_close(spikegen.latency(x, **kw), ref.latency(x, **kw))

CODE_GRID = [dict(), dict(tau=3), dict(threshold=0.3), dict(num_steps=9, normalize=True), dict(num_steps=9, normalize=True, first_spike_time=2),
             dict(first_spike_time=4), dict(epsilon=1e-3)]

@pytest.mark.parametrize('kw', CODE_GRID, ids=[str(k) for k in CODE_GRID])
def test_latency_codes_match_snntorch(kw):
    x = unit_data((4, 6))
    assert_close(spikegen.latency_code_log(x, **kw), ref.latency_code_log(x, **kw))
    lin = {k: v for k, v in kw.items() if k != 'epsilon'}
    assert_close(spikegen.latency_code_linear(x, **lin), ref.latency_code_linear(x, **lin))
    for linear in (False, True):
        (t, idx), (t_ref, idx_ref) = spikegen.latency_code(x, linear=linear, **kw), ref.latency_code(x, linear=linear, **kw)
        assert_close(t, t_ref); assert torch.equal(idx, idx_ref)

@pytest.mark.parametrize('num_steps', [1, 4, 9])
@pytest.mark.parametrize('on,off', [(1, 0), (2, -1), (1, 1), (0.5, 0.25)])
def test_latency_interpolate_matches_snntorch(num_steps, on, off):
    t = torch.tensor([[0.0, 0.4, 1.0, 2.6, 3.0], [4.0, 8.0, 8.7, 9.0, 20.0]])
    assert_close(spikegen.latency_interpolate(t, num_steps, on, off), ref.latency_interpolate(t.clone(), num_steps, on, off))

def test_latency_census_examples():
    x = torch.tensor([0, .005, .02, .1, .5, .9, 1])
    at = lambda s: [c.nonzero().flatten().tolist() for c in s.T]
    assert at(spikegen.latency(x, num_steps=10, bypass=True)) == [[], [], [1], [0], [0], [0], [0]]
    assert at(spikegen.latency(x, num_steps=10, normalize=True, linear=True)) == [[9], [9], [9], [8], [4], [1], [0]]
    assert spikegen.latency(x, bypass=True).shape == (13, 7)

def test_latency_dtype_follows_input():
    x = unit_data((5,)).double()
    assert spikegen.latency(x, num_steps=5, normalize=True).dtype == torch.float64
    assert spikegen.latency(x, num_steps=5, normalize=True, interpolate=True).dtype == torch.float64

def test_latency_negative_off_target():
    s = spikegen.latency(torch.tensor([1.0, 0.5]), num_steps=3, normalize=True, linear=True, on_target=1, off_target=-1)
    assert s.tolist() == [[1, -1], [-1, 1], [-1, -1]]            # snnTorch leaves the silent steps at 0

@pytest.mark.parametrize('call,match', [
    (lambda x: spikegen.latency(x * 2, num_steps=5), r'data must hold intensities in \[0, 1\]'),
    (lambda x: spikegen.latency(x - 0.5, num_steps=5), r'data must hold intensities in \[0, 1\]'),
    (lambda x: spikegen.latency(x), 'num_steps must be given'),
    (lambda x: spikegen.latency(x, num_steps=-2, bypass=True), 'num_steps'),
    (lambda x: spikegen.latency(x, num_steps=5, threshold=0), r'threshold must be in \(0, 1\)'),
    (lambda x: spikegen.latency(x, num_steps=5, threshold=1.5), r'threshold must be in \(0, 1\)'),
    (lambda x: spikegen.latency(x, num_steps=5, tau=0), 'tau must be > 0'),
    (lambda x: spikegen.latency(x, num_steps=5, first_spike_time=5, normalize=True), 'first_spike_time'),
    (lambda x: spikegen.latency(x, num_steps=5, first_spike_time=-1), 'first_spike_time'),
    (lambda x: spikegen.latency(x, num_steps=5, tau=5), 'beyond num_steps'),
    (lambda x: spikegen.latency_code_log(x, normalize=True), 'num_steps must be given when normalize'),
    (lambda x: spikegen.latency_interpolate(x, 5, on_target=0, off_target=1), 'on_target must be >= off_target'),
    (lambda x: spikegen.latency_interpolate(x, 0), 'num_steps'),
])
def test_latency_bad_input(call, match):
    with pytest.raises(ValueError, match=match): call(unit_data((5,)))

# ---------------------------------------------------------------- delta
@pytest.mark.parametrize('threshold', [0.0, 0.1, 0.5, 1.0])
@pytest.mark.parametrize('padding', [False, True])
@pytest.mark.parametrize('off_spike', [False, True])
def test_delta_matches_snntorch(threshold, padding, off_spike):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(12, 3, 4, generator=g).cumsum(0) * 0.5
    x[3] = x[2] + threshold                                    # exactly at the threshold (inclusive)
    assert_close(spikegen.delta(x, threshold, padding, off_spike), ref.delta(x, threshold, padding, off_spike))

def test_delta_census_examples():
    assert spikegen.delta(torch.tensor([1, 2, 2.9, 3, 3.9]), threshold=1).tolist() == [1, 1, 0, 0, 0]
    assert spikegen.delta(torch.tensor([1, 2, 2.9, 3, 3.9]), threshold=1, padding=True).tolist() == [0, 1, 0, 0, 0]
    assert spikegen.delta(torch.tensor([1, 2, 0, 2, 2.9]), threshold=1, off_spike=True).tolist() == [1, 1, -1, 1, 0]
    assert spikegen.delta(torch.rand(3, dtype=torch.float64)).dtype == torch.float64

def test_delta_bad_input():
    with pytest.raises(ValueError, match='time-first tensor'): spikegen.delta(torch.tensor(1.0))
    with pytest.raises(ValueError, match='time-first tensor'): spikegen.delta([1, 2])

# ---------------------------------------------------------------- one-hot
def test_one_hot_matches_snntorch():
    y = torch.tensor([0, 3, 1, 1, 2])
    assert_close(spikegen.to_one_hot(y, 5), ref.to_one_hot(y, 5))
    oh = ref.to_one_hot(y, 5)
    assert_close(spikegen.to_one_hot_inverse(oh), ref.to_one_hot_inverse(oh))
    assert torch.equal(spikegen.from_one_hot(oh[1]), ref.from_one_hot(oh[1]))        # 1-D: same as snnTorch
    assert spikegen.from_one_hot(oh).tolist() == y.tolist()                          # batch: the classes (fix)
    assert spikegen.to_one_hot(torch.tensor([[1, 0]]), 2).shape == (1, 2, 2)

@pytest.mark.parametrize('targets,match', [(torch.tensor([3]), r'class indices in \[0, 2\]'), (torch.tensor([-1]), 'class indices'),
                                           (torch.tensor([0.5]), 'integer class indices')])
def test_one_hot_bad_input(targets, match):
    with pytest.raises(ValueError, match=match): spikegen.to_one_hot(targets, 3)

def test_one_hot_bad_types():
    with pytest.raises(TypeError, match='targets must be a tensor'): spikegen.to_one_hot([1], 3)
    with pytest.raises(ValueError, match='num_classes'): spikegen.to_one_hot(torch.tensor([0]), 0)
    with pytest.raises(ValueError, match='exactly one 1'): spikegen.from_one_hot(torch.tensor([[1.0, 1.0], [0.0, 1.0]]))

# ---------------------------------------------------------------- targets
@pytest.mark.parametrize('num_steps,fst,rate', [(8, 0, 1), (8, 1, 0.5), (10, 0, 0.3), (10, 3, 0.25), (5, 0, 0), (6, 6, 1), (7, 2, 0.7)])
@pytest.mark.parametrize('pattern', ['regular', 'uniform', 'poisson', 'Regular'])
def test_target_rate_code_matches_snntorch(num_steps, fst, rate, pattern):
    torch.manual_seed(4); train, times = spikegen.target_rate_code(num_steps, fst, rate, pattern)
    torch.manual_seed(4); train_ref, times_ref = ref.target_rate_code(num_steps, fst, rate, pattern)
    assert_close(train, train_ref)
    assert times.tolist() == times_ref.tolist()

@pytest.mark.parametrize('times', [[0, 4], [2], [0, 1, 2], [1, 3, 7], [0, 5, 6], [], [3, 3, 5]])
@pytest.mark.parametrize('num_steps', [8, 10])
@pytest.mark.parametrize('on,off', [(1, 0), (2, 0.5), (0, -1)])
def test_rate_interpolate_matches_snntorch(times, num_steps, on, off):
    t = torch.tensor(times, dtype=torch.long)
    assert_close(spikegen.rate_interpolate(t, num_steps, on, off), ref.rate_interpolate(t, num_steps, on, off))

@pytest.mark.parametrize('kw', [dict(), dict(on_target=3, off_target=1), dict(on_target=0.5, off_target=2), dict(num_steps=6, first_spike_time=2),
                                dict(num_steps=6, first_spike_time=1, on_target=2, off_target=0.5)])
def test_targets_rate_matches_snntorch(kw):
    y = torch.tensor([2, 0, 1, 2])
    assert_close(spikegen.targets_rate(y, 3, **kw), ref.targets_rate(y, 3, **kw))
    assert_close(spikegen.targets_convert(y, 3, code='rate', **kw), ref.targets_convert(y, 3, code='rate', **kw))

def test_targets_rate_time_varying_docstring_case():
    "Even snnTorch's docstring case (B = 1, C = T = 5) comes back 5-D there; ours is (T, B, C) with the regular train."
    y = torch.tensor([2])
    ours = spikegen.targets_rate(y, 5, num_steps=5, correct_rate=0.5)
    assert ref.targets_rate(y, 5, num_steps=5, correct_rate=0.5).dim() == 5
    assert ours.shape == (5, 1, 5)
    assert ours[:, 0].tolist() == [[0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]

def test_targets_rate_time_varying_any_batch():
    y = torch.tensor([1, 0, 2, 1, 1, 0, 2, 2])                 # snnTorch: 5-D garbage / RuntimeError here
    s = spikegen.targets_rate(y, 3, num_steps=8, correct_rate=0.5, incorrect_rate=0.25)
    assert s.shape == (8, 8, 3)
    oh = spikegen.to_one_hot(y, 3)
    assert_close(s, oh * torch.tensor([1., 0, 1, 0, 1, 0, 1, 0]).reshape(-1, 1, 1) + (1 - oh) * torch.tensor([1., 0, 0, 0, 1, 0, 0, 0]).reshape(-1, 1, 1))
    ramp = spikegen.targets_rate(y, 3, num_steps=4, correct_rate=0.5, interpolate=True)
    assert_close(ramp[:, 0], torch.tensor([[0., 1, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0]]))

def test_targets_rate_negative_off_target_fixed():
    y = torch.tensor([1, 0])
    assert spikegen.targets_rate(y, 3, on_target=0, off_target=-1).tolist() == [[-1, 0, -1], [0, -1, -1]]
    assert spikegen.targets_rate(y, 2, num_steps=3, first_spike_time=1, on_target=2, off_target=-1)[:, 0].tolist() == [[-1, -1], [-1, 2], [-1, 2]]

@pytest.mark.parametrize('kw', [dict(num_steps=5, normalize=True), dict(num_steps=8, normalize=True, linear=True, first_spike_time=2),
                                dict(num_steps=20, tau=2, bypass=True), dict(bypass=True)])
def test_targets_latency_matches_snntorch(kw):
    y = torch.tensor([0, 3, 1])
    assert_close(spikegen.targets_latency(y, 4, **kw), ref.targets_latency(y, 4, **kw))
    assert_close(spikegen.targets_convert(y, 4, code='latency', **kw), ref.targets_convert(y, 4, code='latency', **kw))

def test_targets_convert_latency_passes_on_off():
    s = spikegen.targets_convert(torch.tensor([1]), 2, code='latency', num_steps=3, normalize=True, on_target=5, off_target=0)
    assert s.max().item() == 5

@pytest.mark.parametrize('call,match', [
    (lambda: spikegen.targets_rate(torch.tensor([0]), 2, correct_rate=1.5), 'correct_rate and incorrect_rate'),
    (lambda: spikegen.targets_rate(torch.tensor([0]), 2, num_steps=4, correct_rate=0.2, incorrect_rate=0.5), 'correct_rate must be >= incorrect_rate'),
    (lambda: spikegen.targets_rate(torch.tensor([0]), 2, correct_rate=0.5), 'num_steps'),
    (lambda: spikegen.targets_rate(torch.tensor([0]), 2, first_spike_time=2), 'num_steps'),
    (lambda: spikegen.targets_rate(torch.tensor([0]), 2, num_steps=4, correct_rate=0.5, firing_pattern='burst'), 'firing_pattern'),
    (lambda: spikegen.target_rate_code(5, rate=2), r'rate must be in \[0, 1\]'),
    (lambda: spikegen.target_rate_code(5, first_spike_time=6), 'first_spike_time'),
    (lambda: spikegen.target_rate_code(0), 'num_steps'),
    (lambda: spikegen.targets_convert(torch.tensor([0]), 2, code='phase'), "code must be 'rate' or 'latency'"),
    (lambda: spikegen.rate_interpolate(torch.tensor([1]), -1), 'num_steps'),
])
def test_targets_bad_input(call, match):
    with pytest.raises(ValueError, match=match): call()

# ---------------------------------------------------------------- property tests (hypothesis)
from hypothesis import given, settings, strategies as st  # noqa: E402

@settings(max_examples=60, deadline=None)
@given(times=st.sets(st.integers(0, 14), max_size=8), num_steps=st.integers(15, 20),
       on=st.sampled_from([1, 2, 0.5]), off=st.sampled_from([0, -1, 0.25]))
def test_rate_interpolate_property(times, num_steps, on, off):
    t = torch.tensor(sorted(times), dtype=torch.long)
    assert_close(spikegen.rate_interpolate(t, num_steps, on, off), ref.rate_interpolate(t, num_steps, on, off))

@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), num_steps=st.integers(2, 30), linear=st.booleans(), tau=st.sampled_from([0.5, 1, 3]),
       fst=st.integers(0, 3), threshold=st.sampled_from([0.01, 0.1, 0.5]), clip=st.booleans())
def test_latency_normalized_property(seed, num_steps, linear, tau, fst, threshold, clip):
    x = torch.rand(3, 4, generator=torch.Generator().manual_seed(seed))
    kw = dict(num_steps=num_steps, normalize=True, linear=linear, tau=tau, first_spike_time=min(fst, num_steps - 1), threshold=threshold, clip=clip)
    ours = spikegen.latency(x, **kw)
    assert_close(ours, ref.latency(x, **kw))
    assert (ours.sum(0) <= 1).all()                         # at most one spike per input
