"""snnedu builds as an sdist and a wheel, and the wheel works in a fresh venv that has torch alone."""
import subprocess
import sys
import venv

import pytest

def run(*cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert res.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout

@pytest.fixture(scope='module')
def dist(repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')
    run(sys.executable, '-m', 'build', '--sdist', '--wheel', '--outdir', str(out), str(repo_root))
    return out

def test_sdist_and_wheel_are_built(dist):
    names = sorted(p.name for p in dist.iterdir())
    assert any(n.endswith('.tar.gz') for n in names) and any(n.endswith('.whl') for n in names), names

def test_wheel_imports_with_torch_alone(dist, tmp_path):
    "A user who installs only torch and the wheel (no extras, no matplotlib) can import the library."
    env_dir = tmp_path / 'venv'
    venv.create(env_dir, with_pip=True)
    py = env_dir / 'bin' / 'python'
    wheel = next(dist.glob('*.whl'))
    run(py, '-m', 'pip', 'install', '-q', '--disable-pip-version-check', 'torch==2.13.0')  # the CPU wheel on disk
    run(py, '-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--no-deps', str(wheel))
    code = ("import sys, snnedu as snn; from snnedu import surrogate; "
            "heavy = [m for m in ('matplotlib', 'ipywidgets', 'torchvision', 'tonic', 'nir', 'nirtorch', 'sklearn', 'pandas') if m in sys.modules]; "
            "assert not heavy, f'import snnedu pulled in {heavy}'; "
            "print(snn.__version__, surrogate.atan())")
    out = run(py, '-c', code, cwd=tmp_path)  # cwd away from the checkout: the installed wheel is imported
    assert 'atan(alpha=2.0)' in out
