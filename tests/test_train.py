"""train: the quickstart network, the training loop and the main job `python -m snnedu` (a few-second smoke run)."""
import importlib
import subprocess
import sys

import pytest
import torch

from snnedu import train
from snnedu.neurons import Leaky

def _import_or_skip(name):
    "Skip the module when `name` cannot be imported: a torchvision built for another torch raises RuntimeError, not ImportError."
    try: return importlib.import_module(name)
    except Exception as err: pytest.skip(f'{name} unavailable ({type(err).__name__}: {err})', allow_module_level=True)

_import_or_skip('torchvision.datasets')

def test_quickstart_net_shapes():
    net = train.quickstart_net()
    assert [type(m).__name__ for m in net] == ['Conv2d', 'MaxPool2d', 'Leaky', 'Conv2d', 'MaxPool2d', 'Leaky',
                                               'Flatten', 'Linear', 'Leaky']
    assert sum(p.numel() for p in net.parameters()) == (12 * 25 + 12) + (64 * 12 * 25 + 64) + (1024 * 10 + 10)
    lifs = [m for m in net if isinstance(m, Leaky)]
    assert all(m.init_hidden and float(m.beta) == 0.5 for m in lifs) and lifs[-1].output and not lifs[0].output
    spk_seq, mem_seq = train.forward_pass(net, torch.rand(3, 1, 28, 28), num_steps=4)
    assert spk_seq.shape == mem_seq.shape == (4, 3, 10)
    assert set(spk_seq.unique().tolist()) <= {0.0, 1.0}

def test_forward_pass_resets_state():
    net, x = train.quickstart_net(), torch.rand(2, 1, 28, 28) * 3
    first, _ = train.forward_pass(net, x, 6)
    again, _ = train.forward_pass(net, x, 6)                                      # same input, fresh state: same spikes
    torch.testing.assert_close(first, again)

def test_forward_pass_matches_a_step_loop():
    torch.manual_seed(0)
    net, x = train.quickstart_net(), torch.rand(2, 1, 28, 28) * 3
    spk_seq, mem_seq = train.forward_pass(net, x, 5)
    train.reset(net)
    loop = [net(x) for _ in range(5)]
    torch.testing.assert_close(spk_seq, torch.stack([s for s, _ in loop]))
    torch.testing.assert_close(mem_seq, torch.stack([m for _, m in loop]))

def test_train_lowers_the_loss():
    "32 real digits, brightened x5 so that the output layer fires from the start (at x1 it is silent for ~30 batches)."
    from snnedu.data import mnist_subset_arrays
    (x, y), _ = mnist_subset_arrays()
    x, y = torch.tensor(x[:32]).float().unsqueeze(1) / 255 * 5, torch.tensor(y[:32]).long()
    torch.manual_seed(0)
    losses = train.train(train.quickstart_net(), [(x[:16], y[:16]), (x[16:], y[16:])] * 4, num_steps=6, lr=5e-3,
                         progress=False)
    assert len(losses) == 8 and losses[0] == pytest.approx(2.3026, abs=1e-3) and max(losses[-3:]) < 2.1

def test_max_batches_limits_an_epoch():
    loader = [(torch.rand(2, 1, 28, 28), torch.tensor([0, 1]))] * 5
    assert len(train.train(train.quickstart_net(), loader, num_steps=2, epochs=2, max_batches=3, progress=False)) == 6

def test_main_smoke(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv('SNNEDU_DATA', str(tmp_path / 'data'))
    out = tmp_path / 'run'
    res = train.run(['--epochs', '1', '--max-batches', '2', '--batch-size', '8', '--steps', '3', '--out', str(out),
                     '--device', 'cpu', '--seed', '1'])
    text = capsys.readouterr().out
    assert 'Training the quickstart SNN on mnist5k (4000 train / 1000 held-out images, T=3, cpu).' in text
    assert 'Held-out accuracy: ' in text and 0 <= res['accuracy'] <= 1
    assert sorted(p.name for p in out.iterdir()) == ['raster.png', 'snn_weights.pt']
    assert (out / 'raster.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    net = train.quickstart_net()
    net.load_state_dict(torch.load(out / 'snn_weights.pt', weights_only=True))
    assert res['raster'] == out / 'raster.png' and res['weights'] == out / 'snn_weights.pt' and res['seconds'] > 0

def test_main_returns_none_for_the_console_script(tmp_path, monkeypatch):
    "console_scripts call sys.exit(main()): anything but None/0 would exit with status 1."
    monkeypatch.setenv('SNNEDU_DATA', str(tmp_path / 'data'))
    assert train.main(['--epochs', '1', '--max-batches', '1', '--batch-size', '4', '--steps', '2',
                       '--out', str(tmp_path / 'run')]) is None

@pytest.mark.parametrize('argv, message', [(['--epochs', '0'], 'argument --epochs: must be >= 1, got 0'),
                                           (['--batch-size', '-2'], 'argument --batch-size: must be >= 1, got -2'),
                                           (['--dataset', 'cifar'], "argument --dataset: invalid choice: 'cifar'")])
def test_main_bad_flags(argv, message, capsys):
    with pytest.raises(SystemExit) as exc: train.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err

def test_load_data_bad_name():
    with pytest.raises(ValueError, match=r"dataset must be one of \('mnist5k', 'mnist', 'fashion'\), got 'cifar'"):
        train.load_data('cifar')

def test_python_dash_m_snnedu_help(repo_root):
    res = subprocess.run([sys.executable, '-m', 'snnedu', '--help'], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and 'usage: python -m snnedu' in res.stdout and '--max-batches' in res.stdout
    text = ' '.join(res.stdout.split())                                               # argparse wraps lines
    for flag, default in [('--epochs', '4'), ('--batch-size', '64'), ('--lr', '0.002'), ('--steps', '25'),
                          ('--dataset', 'mnist5k'), ('--device', 'auto'), ('--out', 'snnedu-run'), ('--max-batches', 'all')]:
        assert f'(default: {default})' in text.split(f'{flag} ', 2)[-1].split(' --')[0], (flag, default)
    assert 'snnedu.sequence' in text and '--epochs 1 --max-batches 20' in text

# --- issue 19/20: the CLI fails early, in one sentence, and never loses a trained model -------------------------------
@pytest.fixture
def no_data(monkeypatch):
    "Any attempt to load data fails the test: the checks under test must come first."
    def load_data(*a, **k): raise AssertionError('data were loaded before the flags were checked')
    monkeypatch.setattr(train, 'load_data', load_data)

FAST = ['--epochs', '1', '--max-batches', '1', '--batch-size', '4', '--steps', '2', '--device', 'cpu']

@pytest.mark.parametrize('argv, message', [
    (['--lr', '0'], 'argument --lr: must be a finite number > 0, got 0'),
    (['--lr=-1e-3'], 'argument --lr: must be a finite number > 0, got -1e-3'),
    (['--lr', 'nan'], 'argument --lr: must be a finite number > 0, got nan'),
    (['--lr', 'inf'], 'argument --lr: must be a finite number > 0, got inf'),
    (['--lr', 'fast'], "argument --lr: must be a number such as 2e-3, got 'fast'"),
    (['--epochs', 'two'], "argument --epochs: must be a whole number >= 1, got 'two'"),
    (['--device', 'gpu'], "argument --device: 'gpu' is not a device; use cpu, cuda, cuda:N, mps or auto"),
    (['--device', 'cuda'], 'argument --device: cuda is not available (torch sees no CUDA GPU on this machine); use --device cpu'),
    (['--device', 'cuda:1'], 'argument --device: cuda:1 is not available'),
    (['--device', 'meta'], 'argument --device: meta: python -m snnedu runs on cpu, cuda or mps')])
def test_bad_lr_and_device_fail_before_data_load(argv, message, no_data, capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)              # the same answer on a GPU machine
    monkeypatch.setattr(torch.version, 'cuda', '12.8')
    with pytest.raises(SystemExit) as exc: train.main(argv + ['--out', str(tmp_path / 'run')])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and 'Traceback' not in err, err
    assert not (tmp_path / 'run').exists()

def test_cuda_on_a_cpu_only_torch(no_data, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False); monkeypatch.setattr(torch.version, 'cuda', None)
    with pytest.raises(SystemExit): train.main(['--device', 'cuda'])
    assert 'cuda is not available (this torch is a CPU-only build)' in capsys.readouterr().err

def test_device_cuda_without_a_gpu_is_one_sentence_no_traceback(repo_root, tmp_path):
    "Today's main: a raw torch traceback from deep inside the first .to('cuda')."
    import os
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', SNNEDU_DATA=str(tmp_path / 'data'))
    res = subprocess.run([sys.executable, '-m', 'snnedu', '--device', 'cuda', '--out', str(tmp_path / 'run')], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and 'Traceback' not in res.stderr, res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith('python -m snnedu: error: argument --device: cuda is not available')
    assert not (tmp_path / 'data').exists() and not (tmp_path / 'run').exists()

def _error_line(capsys, exc):
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.count('\n') == 1 and err.startswith('python -m snnedu: error: '), err
    return err

def test_out_is_a_file(tmp_path, no_data, capsys):
    (tmp_path / 'taken').write_text('a file')
    with pytest.raises(SystemExit) as exc: train.main(FAST + ['--out', str(tmp_path / 'taken')])
    assert '--out ' + str(tmp_path / 'taken') + ' is a file, not a folder' in _error_line(capsys, exc)

def test_out_cannot_be_made(tmp_path, no_data, capsys):
    (tmp_path / 'taken').write_text('a file')
    with pytest.raises(SystemExit) as exc: train.main(FAST + ['--out', str(tmp_path / 'taken' / 'run')])
    assert 'is not a folder a file can be written to (Not a directory)' in _error_line(capsys, exc)

def test_out_not_writable(tmp_path, no_data, capsys, monkeypatch):
    "(As root, a read-only folder is still writable, so the failing write is simulated.)"
    import tempfile as tf
    def refuse(*a, **k): raise PermissionError(13, 'Permission denied')
    monkeypatch.setattr(tf, 'NamedTemporaryFile', refuse)
    with pytest.raises(SystemExit) as exc: train.main(FAST + ['--out', str(tmp_path / 'run')])
    assert 'is not a folder a file can be written to (Permission denied); give another --out' in _error_line(capsys, exc)

def test_two_runs_into_one_folder_do_not_interleave(tmp_path, no_data, capsys):
    out = tmp_path / 'run'; out.mkdir()
    with train._locked(out):                                                  # a first run is writing there
        with pytest.raises(SystemExit) as exc: train.main(FAST + ['--out', str(out)])
    assert f'another python -m snnedu is writing to --out {out}' in _error_line(capsys, exc)
    assert list(out.iterdir()) == []

def test_the_lock_is_held_for_the_whole_run(tmp_path, monkeypatch):
    monkeypatch.setenv('SNNEDU_DATA', str(tmp_path / 'data'))
    out, seen = tmp_path / 'run', []
    def probe(net, loader, *a, **k):
        try:
            with train._locked(out): seen.append('free')
        except train.CLIError: seen.append('locked')
        return []
    monkeypatch.setattr(train, 'train', probe)
    train.run(FAST + ['--out', str(out)])
    assert seen == ['locked']
    with train._locked(out): pass                                               # released at the end

def test_fashion_offline_is_one_sentence_naming_flags(tmp_path, monkeypatch, capsys):
    datasets = pytest.importorskip('torchvision.datasets')
    monkeypatch.setattr(datasets.FashionMNIST, 'mirrors', ['http://mirror.invalid/'])
    monkeypatch.setenv('SNNEDU_DATA', str(tmp_path / 'data'))
    with pytest.raises(SystemExit) as exc: train.main(FAST + ['--dataset', 'fashion', '--out', str(tmp_path / 'run')])
    err = _error_line(capsys, exc)
    assert '--dataset fashion needs internet the first time' in err and 'use --dataset mnist5k' in err
    assert 'mnist()' not in err and 'digits()' not in err                       # flags, not Python functions
    assert not (tmp_path / 'data').exists()                                     # and no empty FashionMNIST folder

def _run_into(out, monkeypatch, tmp_path):
    monkeypatch.setenv('SNNEDU_DATA', str(tmp_path / 'data'))
    return train.run(FAST + ['--out', str(out)])

def test_weights_are_written_atomically(tmp_path, monkeypatch):
    "A full disk while saving leaves the previous good weights and no temporary file (today's main: a truncated file)."
    out = tmp_path / 'run'
    _run_into(out, monkeypatch, tmp_path)
    good = (out / 'snn_weights.pt').read_bytes()
    def full_disk(obj, f, *a, **k):
        with open(f, 'wb') as fh: fh.write(b'PK half a zip')
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(train.torch, 'save', full_disk)
    with pytest.raises(OSError, match='No space left'): _run_into(out, monkeypatch, tmp_path)
    assert (out / 'snn_weights.pt').read_bytes() == good
    assert sorted(p.name for p in out.iterdir()) == ['raster.png', 'snn_weights.pt']
    train.quickstart_net().load_state_dict(torch.load(out / 'snn_weights.pt', weights_only=True))

def test_raster_is_written_atomically(tmp_path, monkeypatch):
    from matplotlib.figure import Figure
    out = tmp_path / 'run'
    _run_into(out, monkeypatch, tmp_path)
    good = (out / 'raster.png').read_bytes()
    def killed(self, fname, *a, **k):
        with open(fname, 'wb') as fh: fh.write(good[:100])
        raise KeyboardInterrupt
    monkeypatch.setattr(Figure, 'savefig', killed)
    with pytest.raises(KeyboardInterrupt): _run_into(out, monkeypatch, tmp_path)
    assert (out / 'raster.png').read_bytes() == good and sorted(p.name for p in out.iterdir()) == ['raster.png', 'snn_weights.pt']

def test_written_files_have_the_usual_mode(tmp_path, monkeypatch):
    import os
    out = tmp_path / 'run'
    _run_into(out, monkeypatch, tmp_path)
    mask = os.umask(0o022); os.umask(mask)
    assert {(p.stat().st_mode & 0o777) for p in out.iterdir()} == {0o666 & ~mask}

def test_torchrun_two_processes_shard_the_data(repo_root, tmp_path):
    "`torchrun --nproc_per_node 2 -m snnedu`: two gloo processes on 127.0.0.1 each train on half the images; rank 0 reports and saves."
    import os, socket
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]     # a free port on this machine
    env = dict(os.environ, SNNEDU_DATA=str(tmp_path / 'data'), OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2', '--master_addr', '127.0.0.1', '--master_port', str(port),
           '-m', 'snnedu', '--epochs', '1', '--max-batches', '2', '--batch-size', '8', '--steps', '3', '--device', 'cpu',
           '--out', str(tmp_path / 'run')]
    res = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert res.stdout.count('Training the quickstart SNN') == 1 and '2 processes, 2000 images each' in res.stdout, res.stdout
    assert res.stdout.count('Held-out accuracy') == 1
    assert sorted(p.name for p in (tmp_path / 'run').iterdir()) == ['raster.png', 'snn_weights.pt']
