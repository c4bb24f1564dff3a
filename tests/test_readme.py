"""README.md is generated from nbs/index.ipynb, and .ci/run runs the test command it gives."""
import importlib.util
import json
import subprocess
import sys

import pytest

@pytest.fixture(scope='module')
def readme_tool(repo_root):
    spec = importlib.util.spec_from_file_location('readme_tool', repo_root / '.ci' / 'readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_readme_is_generated_from_index(readme_tool, repo_root):
    nb = json.loads((repo_root / 'nbs' / 'index.ipynb').read_text(encoding='utf-8'))
    assert readme_tool.render(nb) == (repo_root / 'README.md').read_text(encoding='utf-8')

def test_hidden_cells_are_left_out(readme_tool):
    nb = {'cells': [{'cell_type': 'code', 'source': ['#| hide\n', 'import secret'], 'outputs': []},
                    {'cell_type': 'markdown', 'source': ['# Title']},
                    {'cell_type': 'code', 'source': ['1 + 1'], 'outputs': [{'output_type': 'execute_result', 'data': {'text/plain': ['2']}}]}]}
    md = readme_tool.render(nb)
    assert 'secret' not in md and '# Title' in md and '```python\n1 + 1\n```\n\n```\n2\n```' in md

def test_test_command_is_one_pinned_line(readme_tool, repo_root):
    cmd = readme_tool.test_command((repo_root / 'README.md').read_text(encoding='utf-8'))
    assert cmd.startswith('pip install ') and 'torch==' in cmd and cmd.endswith('bash .ci/test')

def test_check_fails_on_a_stale_readme(repo_root, tmp_path):
    "Run the tool on a copy whose README was edited by hand: --check must fail and show the diff."
    (tmp_path / '.ci').mkdir(); (tmp_path / 'nbs').mkdir()
    (tmp_path / '.ci' / 'readme.py').write_text((repo_root / '.ci' / 'readme.py').read_text())
    (tmp_path / 'nbs' / 'index.ipynb').write_text((repo_root / 'nbs' / 'index.ipynb').read_text())
    (tmp_path / 'README.md').write_text((repo_root / 'README.md').read_text() + '\nhand edit\n')
    res = subprocess.run([sys.executable, str(tmp_path / '.ci' / 'readme.py'), '--check'], capture_output=True, text=True)
    assert res.returncode != 0 and 'hand edit' in res.stdout and 'out of date' in res.stderr

def test_every_relative_link_of_the_readme_resolves(readme_tool, repo_root):
    "Links in index.ipynb are written from nbs/ (the docs site); README.md sits at the root, so each needs its nbs/ prefix."
    readme = (repo_root / 'README.md').read_text(encoding='utf-8')
    targets = readme_tool.relative_links(readme)
    assert len(targets) >= 25, f'expected the course and library tables, found {len(targets)} relative links'
    missing = sorted({t for t in targets if not (repo_root / t).exists()})
    assert not missing, f'README.md links to files that do not exist: {missing}'

def test_links_are_rewritten_from_nbs_to_the_root(readme_tool):
    md = readme_tool.from_root('[a](tutorials/01.ipynb) [b](https://x.org/y) [c](#top) [d](../settings.ini#L3)\n'
                               '```\n[e](kept.ipynb)\n```\n[ref]: 00_surrogate.ipynb\n<img src="images/x.png">')
    assert md == ('[a](nbs/tutorials/01.ipynb) [b](https://x.org/y) [c](#top) [d](settings.ini#L3)\n'
                  '```\n[e](kept.ipynb)\n```\n[ref]: nbs/00_surrogate.ipynb\n<img src="nbs/images/x.png">')
    assert readme_tool.relative_links(md) == ['nbs/tutorials/01.ipynb', 'settings.ini', 'nbs/00_surrogate.ipynb', 'nbs/images/x.png']
