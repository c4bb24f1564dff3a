"""Multi-process training: hidden-state SNNs under torch DistributedDataParallel (gloo backend, CPU, 127.0.0.1).

Two processes each take half of a global batch; after two SGD steps their weights must equal those of one process
trained on the whole global batch (DDP averages the gradients of per-rank mean losses = the global mean, since the
halves are of equal size). Three ways of driving the network are checked:
* "sequence": a wrapper module whose forward resets the net and runs `snnedu.sequence.sequence` over the whole
  (T, B, N) input (one DDP forward per step: the recommended form);
* "steps": the snnTorch-tutorial loop, DDP's forward called once per time step, with DDP's default
  `broadcast_buffers=True`, and the same with `broadcast_buffers=False`.
Hidden states are plain tensor attributes, not buffers, so DDP's buffer broadcast never touches them: each rank
keeps its own state, with either setting.
Observed agreement with the single-process run: max |difference| 7.2e-7 ("sequence") and 4.8e-7 ("steps", float32 summation order); tolerance 1e-5.
"""
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.testing import assert_close

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-5
VARIANTS = [("sequence", True), ("steps", True), ("steps", False)]

SHARED = textwrap.dedent('''
    import torch
    from torch import nn
    import snnedu as snn
    from snnedu import utils
    from snnedu.sequence import sequence

    T, B, N_IN = 6, 8, 5

    def make_net():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(N_IN, 7), snn.Leaky(beta=0.8, init_hidden=True, learn_beta=True, learn_threshold=True),
                             nn.Linear(7, 3), snn.Synaptic(alpha=0.7, beta=0.8, init_hidden=True, output=True, learn_alpha=True))

    class Seq(nn.Module):
        "Whole-sequence wrapper: one forward per training step."
        def __init__(self, net): super().__init__(); self.net = net
        def forward(self, x_seq):
            utils.reset(self.net)
            return sequence(self.net, x_seq)[2]                 # membrane of the output layer, (T, B, 3)

    def steps(model, net, x_seq):
        utils.reset(net)
        return torch.stack([model(x)[2] for x in x_seq])

    def data():
        g = torch.Generator().manual_seed(1)
        return 2 * torch.rand(T, B, N_IN, generator=g), torch.rand(T, B, 3, generator=g)

    def train(model, net, x_seq, y_seq, mode, n_steps=2):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(n_steps):
            out = model(x_seq) if mode == "sequence" else steps(model, net, x_seq)
            loss = (out - y_seq).pow(2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
        return {k: v.detach().clone() for k, v in net.named_parameters()}
''')

WORKER = SHARED + textwrap.dedent('''
    import os, sys
    import torch.distributed as dist
    import torch.multiprocessing as mp
    from torch.nn.parallel import DistributedDataParallel as DDP

    def worker(rank, world, port, out_dir, variants):
        torch.set_num_threads(1)
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
        x_seq, y_seq = data()
        shard = slice(rank * B // world, (rank + 1) * B // world)      # this rank's half of the global batch
        for mode, bb in variants:
            net = make_net()
            model = DDP(Seq(net) if mode == "sequence" else net, broadcast_buffers=bb)
            params = train(model, net, x_seq[:, shard], y_seq[:, shard], mode)
            torch.save(params, os.path.join(out_dir, f"{mode}-{bb}-rank{rank}.pt"))
            del model
        dist.barrier()                  # no rank tears gloo down while the other still talks to it (SIGABRT otherwise)
        dist.destroy_process_group()

    if __name__ == "__main__":
        port, out_dir, variants = int(sys.argv[1]), sys.argv[2], eval(sys.argv[3])
        mp.spawn(worker, args=(2, port, out_dir, variants), nprocs=2, join=True)
''')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def single_process(mode):
    ns = {}
    exec(SHARED, ns)
    net = ns["make_net"]()
    model = ns["Seq"](net) if mode == "sequence" else net
    x_seq, y_seq = ns["data"]()
    return ns["train"](model, net, x_seq, y_seq, mode), ns["make_net"]()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    "Weights after training, one file per variant and rank (files only; one 2-process run serves the tests below)."
    if not dist.is_available() or not dist.is_gloo_available(): pytest.skip("torch.distributed with gloo needed")
    tmp_path = tmp_path_factory.mktemp("ddp")
    script = tmp_path / "ddp_worker.py"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1",
               GLOO_SOCKET_IFNAME="lo", MASTER_ADDR="127.0.0.1")
    proc = subprocess.run([sys.executable, str(script), str(free_port()), str(tmp_path), repr(VARIANTS)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp_path


def max_diffs(ddp_results, mode, bb):
    "Max |rank 0 - single process| per parameter, after checking both ranks agree and every parameter trained."
    ref, init = single_process(mode)
    ranks = [torch.load(ddp_results / f"{mode}-{bb}-rank{r}.pt") for r in range(2)]
    assert set(ranks[0]) == set(ref) == {"0.weight", "0.bias", "1.beta", "1.threshold", "2.weight", "2.bias", "3.alpha"}
    for name in ref:
        assert not torch.equal(ref[name], dict(init.named_parameters())[name]), f"{name} did not train"
        assert_close(ranks[0][name], ranks[1][name], rtol=0, atol=0)            # replicas in lock-step
    return {name: (ranks[0][name] - ref[name]).abs().max().item() for name in ref}


@pytest.mark.parametrize("mode, bb", [("sequence", True), ("steps", False)])
def test_ddp_two_processes_equal_single_process(ddp_results, mode, bb):
    diffs = max_diffs(ddp_results, mode, bb)
    print(f"{mode}, broadcast_buffers={bb}: max |DDP - single| = {max(diffs.values()):.3g}")
    assert max(diffs.values()) <= TOL, diffs


def test_ddp_per_step_default_broadcast_buffers(ddp_results):
    diffs = max_diffs(ddp_results, "steps", True)
    assert max(diffs.values()) <= TOL, diffs


def test_half_batch_alone_differs():
    "The counterpart: training on one half only gives other weights, so the equality above is not automatic."
    ns = {}
    exec(SHARED, ns)
    ref, _ = single_process("sequence")
    net = ns["make_net"]()
    x_seq, y_seq = ns["data"]()
    half = ns["train"](ns["Seq"](net), net, x_seq[:, :4], y_seq[:, :4], "sequence")
    assert max((half[n] - ref[n]).abs().max().item() for n in ref) > 100 * TOL


# --- python -m snnedu started by hand (no torchrun): a missing process is named within seconds (issue 19) -----------
FAST = ["--epochs", "1", "--max-batches", "2", "--batch-size", "8", "--steps", "3", "--device", "cpu"]


def _snnedu(tmp_path, rank, port, timeout_s="2", extra_env=None):
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", OMP_NUM_THREADS="1",
               SNNEDU_DATA=str(tmp_path / "data"), WORLD_SIZE="2", RANK=str(rank), MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(port), SNNEDU_DIST_TIMEOUT=timeout_s, GLOO_SOCKET_IFNAME="lo")
    for k in ("TORCHELASTIC_RUN_ID", "LOCAL_RANK"): env.pop(k, None)
    env.update(extra_env or {})
    return subprocess.Popen([sys.executable, "-m", "snnedu", *FAST, "--out", str(tmp_path / "run")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc, wait=60):
    "(returncode, stdout, stderr); a process still waiting after `wait` s fails the test (today's main waits 30 minutes)."
    try: out, err = proc.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill(); proc.communicate()
        pytest.fail(f"python -m snnedu was still waiting for its peer after {wait} s")
    return proc.returncode, out, err


@pytest.fixture
def by_hand(monkeypatch, tmp_path):
    "The environment of a process started by hand as one of 2 (in this process: train.main reads it)."
    for k in ("TORCHELASTIC_RUN_ID", "LOCAL_RANK"): monkeypatch.delenv(k, raising=False)
    env = dict(WORLD_SIZE="2", RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), SNNEDU_DIST_TIMEOUT="2",
               SNNEDU_DATA=str(tmp_path / "data"))
    for k, v in env.items(): monkeypatch.setenv(k, v)
    return monkeypatch


def _main_error(tmp_path, capfd):
    "Run train.main; it must exit with status 1 after one error line on stderr, within seconds (today's main: 30 minutes)."
    import time
    from snnedu import train
    start = time.monotonic()
    with pytest.raises(SystemExit) as exc: train.main([*FAST, "--out", str(tmp_path / "run")])
    err = capfd.readouterr().err
    assert exc.value.code == 1 and time.monotonic() - start < 20, err
    assert "Traceback" not in err and "frame #" not in err and err.startswith("python -m snnedu: error: "), err
    assert not (tmp_path / "data").exists()                                       # it stopped before loading data
    return err


def test_rank0_without_its_peer_names_the_missing_rank(by_hand, tmp_path, capfd):
    err = _main_error(tmp_path, capfd)
    assert err.startswith("python -m snnedu: error: rank 0 waited 2 s at 127.0.0.1:")
    assert "rank 1 of WORLD_SIZE=2 never joined: start it (RANK=1)" in err and "SNNEDU_DIST_TIMEOUT" in err


def test_rank0_names_every_missing_rank(by_hand, tmp_path, capfd):
    by_hand.setenv("WORLD_SIZE", "4"); by_hand.setenv("SNNEDU_DIST_TIMEOUT", "0.5")
    assert "ranks 1, 2, 3 of WORLD_SIZE=4 never joined" in _main_error(tmp_path, capfd)


def test_rank1_without_rank0_says_so(by_hand, tmp_path, capfd):
    by_hand.setenv("RANK", "1")
    err = _main_error(tmp_path, capfd)
    assert "rank 1 of WORLD_SIZE=2 could not reach rank 0 at 127.0.0.1:" in err and "start rank 0 (RANK=0)" in err


@pytest.mark.parametrize("env, message", [({"MASTER_PORT": None}, "WORLD_SIZE=2 asks for 2 processes, but MASTER_PORT is not set"),
                                          ({"RANK": "5"}, "WORLD_SIZE=2 needs RANK set to 0 ... 1 in each process (got '5')"),
                                          ({"RANK": "one"}, "the environment variable RANK='one' must be a whole number"),
                                          ({"SNNEDU_DIST_TIMEOUT": "soon"}, "SNNEDU_DIST_TIMEOUT='soon' must be a number of seconds > 0")])
def test_bad_distributed_environment(by_hand, tmp_path, capfd, env, message):
    for k, v in env.items():
        if v is None: by_hand.delenv(k)
        else: by_hand.setenv(k, v)
    assert message in _main_error(tmp_path, capfd)


def test_two_processes_started_by_hand_train_together(tmp_path):
    "The rendezvous that names missing ranks is also the one that works (rank 1 may start before rank 0 listens)."
    port = free_port()
    r1 = _snnedu(tmp_path, 1, port, timeout_s="60")
    r0 = _snnedu(tmp_path, 0, port, timeout_s="60")
    (rc0, out0, err0), (rc1, out1, err1) = _finish(r0, 120), _finish(r1, 120)
    assert rc0 == rc1 == 0, err0[-2000:] + err1[-2000:]
    assert "2 processes, 2000 images each" in out0 and "Held-out accuracy" in out0 and out1 == ""
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["raster.png", "snn_weights.pt"]
