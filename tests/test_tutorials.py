"""The course as a student meets it: every tutorial's exercises run blank and solved, and no solution sits in a notebook.

A tutorial ends with its exercises: cells that define a function (body `...`) and call `check("tN.name", fn)`.
`nbdev_test` (CI) runs every tutorial top to bottom as committed, with the exercises blank. Here each tutorial's
exercise cells are executed twice in a fresh IPython shell, as the student's notebook has them:

* blank: every `check` says "not attempted" and nothing raises;
* solved: each function is replaced by the worked solution that `show_solution` prints, every `check` says
  "✓ correct" and nothing raises (this is what used to break "Run all" after solving).

The exercise cells come last in every tutorial (tested), so nothing later depends on them, and they are run
after exactly the cells they depend on: the closure over the names they use (found with `ast`), which is the
import cell for today's exercises. That keeps this test at seconds instead of re-training every network;
`SNNEDU_FULL_TUTORIALS=1` runs the whole notebook before the solved exercises instead.
New tutorials (any `nbs/tutorials/*.ipynb`) are picked up automatically.
"""
import ast, builtins, json, os, re, textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((ROOT / 'nbs' / 'tutorials').glob('[0-9]*.ipynb'))
FULL = os.environ.get('SNNEDU_FULL_TUTORIALS', '').lower() not in ('', '0', 'false', 'no')
_re_check = re.compile(r'^check\(\s*"([^"]+)"\s*,\s*(\w+)\s*\)', re.M)
_re_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def _cells(path):
    "The code cells of a notebook as (index, source, directives)."
    nb = json.loads(path.read_text(encoding='utf-8'))
    out = []
    for i, c in enumerate(nb['cells']):
        if c['cell_type'] != 'code': continue
        src = ''.join(c['source'])
        d = {}
        for line in src.splitlines():
            m = _re_directive.match(line)
            if not m: break
            d[m.group(1)] = m.group(2).strip('"\'').lower()
        out.append((i, src, d))
    return out


def _runs(d):
    "False for a cell nbdev_test skips (`#| eval: false`, `#| slow`)."
    return d.get('eval') != 'false' and 'slow' not in d


def _exercise_cells(path):
    "[(index, source, exercise name, function name)] of the cells that end in `check(name, fn)`."
    found = []
    for i, src, d in _cells(path):
        m = _re_check.search(src)
        if m and re.search(rf'^def {m.group(2)}\(', src, re.M): found.append((i, src, m.group(1), m.group(2)))
    return found


def _python(src):
    "Cell source as plain Python (IPython magics such as `%pip` turned into calls)."
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager().transform_cell(src)


def _names(src):
    "(names the cell binds at top level or anywhere by assignment/import/def, names it reads)."
    tree = ast.parse(_python(src))
    bound, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name): (bound if isinstance(node.ctx, ast.Store) else used).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split('.')[0] for a in node.names)
    return bound, used


def _dependencies(path, targets):
    "The runnable cells before the first exercise cell that define a name the exercise cells need (transitively)."
    first = min(i for i, *_ in targets)
    earlier = [(i, src) for i, src, d in _cells(path) if i < first and _runs(d)]
    need = set().union(*(_names(src)[1] for _, src, *_ in targets)) - set(dir(builtins))
    chosen = set()
    for i, src in reversed(earlier):
        bound, used = _names(src)
        if bound & need:
            chosen.add(i)
            need |= used - set(dir(builtins))
    return [src for i, src in earlier if i in chosen]


def _solved(src, name, fn):
    "The exercise cell with the student's function replaced by the worked solution (the check line stays)."
    from snnedu.exercises import exercise
    solution = textwrap.dedent(exercise(name).solution_source).strip()
    defs = [n.name for n in ast.parse(solution).body if isinstance(n, ast.FunctionDef)]
    assert defs, f'the solution of {name} defines no function'
    if defs[-1] != fn: solution += f'\n{fn} = {defs[-1]}'
    start = src.index(f'def {fn}(')
    end = _re_check.search(src).start()
    return src[:start] + solution + '\n\n' + src[end:]


def _run(path, sources):
    "Execute the sources in a fresh shell (cwd = the notebook's folder, IN_TEST=1); returns the printed text."
    from execnb.shell import CaptureShell
    shell, cwd, printed = CaptureShell(path), os.getcwd(), []
    os.chdir(path.parent)
    try:
        for k, src in enumerate(sources):
            outs = shell.run(src)
            if shell.exc:
                raise AssertionError(f'{path.name}: cell {k} of the run raised {type(shell.exc).__name__}: {shell.exc}\n--- cell:\n{src}')
            printed += [''.join(o.get('text', '')) for o in outs if o.get('output_type') == 'stream']
    finally: os.chdir(cwd)
    return ''.join(printed)


@pytest.fixture(autouse=True)
def _in_test(monkeypatch):
    monkeypatch.setenv('IN_TEST', '1')    # as nbdev_test: a tutorial's `expect` claims are errors here


def test_every_tutorial_has_exercises():
    assert len(TUTORIALS) >= 11, TUTORIALS
    for path in TUTORIALS:
        found = _exercise_cells(path)
        assert len(found) >= 3, f'{path.name}: {len(found)} exercise cells (want >= 3)'
        names = [n for _, _, n, _ in found]
        assert len(set(names)) == len(names), f'{path.name}: an exercise is checked twice: {names}'


@pytest.mark.parametrize('path', TUTORIALS, ids=lambda p: p.stem)
def test_exercise_cells_come_last(path):
    "Nothing after the exercises depends on them, so running them after their dependencies is running the notebook."
    found = {i for i, *_ in _exercise_cells(path)}
    later = [i for i, src, d in _cells(path) if i > min(found) and i not in found and _runs(d) and src.strip()]
    assert not later, f'{path.name}: code cells {later} come after the first exercise cell'


@pytest.mark.parametrize('path', TUTORIALS, ids=lambda p: p.stem)
def test_blank_and_solved_exercises_run(path):
    found = _exercise_cells(path)
    if FULL: prefix = [src for i, src, d in _cells(path) if i < min(i for i, *_ in found) and _runs(d)]
    else: prefix = _dependencies(path, found)
    blank = _run(path, prefix + [src for _, src, _, _ in found])
    for _, _, name, _ in found:
        assert f'• {name}: not attempted yet' in blank, f'{path.name}: {name} blank did not say "not attempted":\n{blank}'
    solved = _run(path, prefix + [_solved(src, name, fn) for _, src, name, fn in found])
    for _, _, name, _ in found:
        assert f'✓ {name}: correct' in solved, f'{path.name}: the worked solution of {name} did not pass:\n{solved}'
    assert '✗' not in solved and 'Traceback' not in solved


def _norm(line): return re.sub(r'\s+', ' ', line.split('#')[0]).strip()


def _solution_body(name):
    "The normalised lines of a worked solution's function body (no docstring, no imports, no blank lines)."
    from snnedu.exercises import exercise
    src = textwrap.dedent(exercise(name).solution_source)
    lines = []
    for fn in (n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef)):
        body = fn.body[1:] if ast.get_docstring(fn) else fn.body
        for stmt in body:
            lines += [_norm(l) for l in ast.get_source_segment(src, stmt).splitlines()]
    return [l for l in lines if l and not l.startswith(('import ', 'from '))]


def _contains(lines, block):
    "True when `block` appears in `lines` as a contiguous run."
    n = len(block)
    return any(lines[k:k + n] == block for k in range(len(lines) - n + 1))


def _cell_lines(source): return [l for l in map(_norm, source.splitlines()) if l]


@pytest.mark.parametrize('path', TUTORIALS, ids=lambda p: p.stem)
def test_no_solution_in_the_notebook(path):
    """No exercise declaration or solution source in any cell (hidden or not) or output, and no worked solution:
    the whole body of a solution never appears in a cell (single lines may: the tutorial teaches the idioms)."""
    nb = json.loads(path.read_text(encoding='utf-8'))
    everything = '\n'.join(''.join(c['source']) for c in nb['cells']) + json.dumps([c.get('outputs', []) for c in nb['cells']])
    for banned in ('solution_source', 'register(Exercise', 'solution_function'):
        assert banned not in everything, f'{path.name} contains {banned!r}'
    cells = [_cell_lines(''.join(c['source'])) for c in nb['cells']]
    for _, _, name, _ in _exercise_cells(path):
        body = _solution_body(name)
        assert body, f'the solution of {name} has no body'
        leaked = [k for k, lines in enumerate(cells) if _contains(lines, body)]
        assert not leaked, f'{path.name}: cell(s) {leaked} hold the worked solution of {name}'


def test_the_solution_detector_sees_a_pasted_solution():
    "The check above is not vacuous: a hidden cell with a solution pasted into a string (as the tutorials had) is found."
    from snnedu.exercises import exercise
    cell = '#| hide\nregister(solution="""\n' + exercise('t5.rate_ce').solution_source + '""")\n'
    assert _contains(_cell_lines(cell), _solution_body('t5.rate_ce'))
    assert not _contains(_cell_lines(cell), _solution_body('t5.bptt_grad'))


@pytest.mark.parametrize('path', TUTORIALS, ids=lambda p: p.stem)
def test_no_assert_on_a_claim_in_the_story(path):
    "Results of a run (accuracy, loss) are compared with `expect`, which tells a student instead of raising."
    for i, src, d in _cells(path):
        for line in src.splitlines():
            if re.match(r'\s*assert\b.*\b(acc|accs|accuracy|loss|losses)\b', line):
                pytest.fail(f'{path.name} cell {i}: `{line.strip()}` stops a student who experiments: use expect(...)')


def test_solved_check_catches_a_broken_solution(monkeypatch):
    "The solved run is not vacuous: a wrong 'solution' makes it fail."
    from snnedu.exercises import exercise
    path = TUTORIALS[1]
    found = _exercise_cells(path)
    i, src, name, fn = found[0]
    ex = exercise(name)
    monkeypatch.setattr(ex, 'solution_source', f'def {fn}(*args):\n    return 0.0\n')
    out = _run(path, _dependencies(path, found) + [_solved(src, name, fn)])
    assert f'✗ {name}' in out


@pytest.mark.parametrize('path', TUTORIALS, ids=lambda p: p.stem)
def test_code_fits_the_page(path):
    "Every code line of a tutorial fits a Colab cell and the docs page: at most 100 characters."
    long = [(i, len(line)) for i, src, _ in _cells(path) for line in src.splitlines() if len(line) > 100]
    assert not long, f'{path.name}: (cell, length) of code lines over 100 characters: {long}'
