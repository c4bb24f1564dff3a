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
    net.load_state_dict(torch.load(out / 'snn_weights.pt'))
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
