#!/usr/bin/env python3
"""README.md is generated from nbs/index.ipynb (quarto, which nbdev_readme needs, cannot be installed here).

  python .ci/readme.py                 write README.md
  python .ci/readme.py --check         exit 1 if README.md differs from what index.ipynb gives
  python .ci/readme.py --test-command  print the README's test command (what .ci/run runs)

Markdown cells are copied as they are, except that relative links (written from nbs/, where the notebook
and the docs site live) get the `nbs/` prefix that they need from the repository root, where README.md is;
code cells become ```python blocks followed by their text output; cells whose first line is a `#|`
directive (hidden setup, `default_exp`) are left out.
"""
import difflib, json, posixpath, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INDEX, README = ROOT / 'nbs' / 'index.ipynb', ROOT / 'README.md'
MARKER = '<!-- test-command:'

LINK = re.compile(r'(\]\(|^\[[^\]]+\]:\s*|(?:href|src)=")([^)\s"]+)', re.M)   # [text](target), [ref]: target, href="target"

def is_relative(target):
    "A link to a file of the repository (not a web address, a mail address, an anchor of the same page or an absolute path)."
    return not re.match(r'[a-z][a-z0-9+.-]*:|#|/', target, re.I)

def from_root(markdown):
    "`markdown` written from nbs/ with its relative links rewritten to work from the repository root."
    fix = lambda m: m.group(1) + (posixpath.normpath('nbs/' + m.group(2)) if is_relative(m.group(2)) else m.group(2))
    out, fence = [], False
    for line in markdown.split('\n'):                       # links inside ``` code blocks are left alone
        if line.lstrip().startswith('```'): fence = not fence
        out.append(line if fence else LINK.sub(fix, line))
    return '\n'.join(out)

def relative_links(markdown):
    "Every relative link target of `markdown` outside code blocks, without its #anchor."
    targets, fence = [], False
    for line in markdown.split('\n'):
        if line.lstrip().startswith('```'): fence = not fence
        elif not fence: targets += [m.group(2).partition('#')[0] for m in LINK.finditer(line) if is_relative(m.group(2))]
    return [t for t in targets if t]

def cell_text(cell): return ''.join(cell['source']).strip('\n')

def output_text(cell):
    "The plain-text outputs of a code cell (images are left to the docs site)."
    parts = []
    for out in cell.get('outputs', []):
        if out['output_type'] == 'stream': parts.append(''.join(out['text']))
        elif 'text/plain' in out.get('data', {}): parts.append(''.join(out['data']['text/plain']))
    return '\n'.join(p.rstrip('\n') for p in parts)

def render(nb):
    blocks = ['<!-- generated from nbs/index.ipynb by `python .ci/readme.py`: edit the notebook, not this file -->']
    for cell in nb['cells']:
        text = cell_text(cell)
        if not text: continue
        if cell['cell_type'] == 'markdown': blocks.append(from_root(text))
        elif cell['cell_type'] == 'code' and not text.startswith('#|'):
            blocks.append(f'```python\n{text}\n```')
            out = output_text(cell)
            if out: blocks.append(f'```\n{out}\n```')
    return '\n\n'.join(blocks) + '\n'

def test_command(markdown):
    "The single line of the code block right after the test-command marker."
    m = re.search(re.escape(MARKER) + r'.*?-->\s*```(?:bash)?\n(.+?)\n```', markdown, re.S)
    if not m or '\n' in m.group(1).strip():
        sys.exit('README.md: no one-line code block after the test-command marker')
    return m.group(1).strip()

def main(args):
    want = render(json.loads(INDEX.read_text(encoding='utf-8')))
    if '--test-command' in args: print(test_command(README.read_text(encoding='utf-8')))
    elif '--check' in args:
        have = README.read_text(encoding='utf-8') if README.exists() else ''
        if have != want:
            sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True), 'README.md', 'from nbs/index.ipynb'))
            sys.exit('FAIL: README.md is out of date with nbs/index.ipynb -- run `python .ci/readme.py` and commit')
        print('README.md matches nbs/index.ipynb')
    else:
        README.write_text(want, encoding='utf-8'); print(f'wrote {README.relative_to(ROOT)}')

if __name__ == '__main__': main(sys.argv[1:])
