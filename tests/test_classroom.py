"""Graded assignments end to end with the real otter-grader: build both shipped assignments, grade four kinds of
submission plus a file that is not a notebook, and refuse bad command-line input before doing any work."""
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import nbformat
import otter  # noqa: F401  (fails loudly when the classroom extra is missing: pip install -e ".[classroom]")

from snnedu import classroom

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ROOT / "nbs" / "assignments"
SHIPPED = ["lif_encoding", "train_classifier"]


def cli(*args, **kw):
    "Run `python -m snnedu.classroom ARGS` like an instructor would; returns the CompletedProcess."
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "snnedu.classroom", *map(str, args)], capture_output=True, text=True, env=env, **kw)


def solution_lines(source):
    "Lines between `# BEGIN SOLUTION` and `# END SOLUTION` in the source's code cells (what students must not see)."
    nb, lines, inside = nbformat.read(str(source), as_version=4), [], False
    for cell in nb.cells:
        if cell.cell_type != "code": continue
        for line in cell.source.splitlines():
            s = line.strip()
            if s == "# END SOLUTION": inside = False
            elif s == "# BEGIN SOLUTION": inside = True
            elif inside and s: lines.append(s)
    return lines


def hidden_test_lines(source):
    "Code lines of the source's test cells whose config says `hidden: true`."
    nb = nbformat.read(str(source), as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code" and "BEGIN TEST CONFIG" in c.source and "hidden: true" in c.source]
    return [l.strip() for c in cells for l in c.split('""" # END TEST CONFIG')[1].splitlines() if len(l.strip()) > 12]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    "Both shipped assignments built with the command line: {name: DIST folder}."
    out = {}
    for name in SHIPPED:
        dist = tmp_path_factory.mktemp(name)
        r = cli("assign", ASSIGNMENTS / f"{name}.ipynb", dist)
        assert r.returncode == 0, r.stderr
        out[name] = dist
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_student_notebook_has_no_solution(built, name):
    source, dist = ASSIGNMENTS / f"{name}.ipynb", built[name]
    student = dist / "student" / f"{name}.ipynb"
    text = student.read_text(encoding="utf-8")
    secret = solution_lines(source) + hidden_test_lines(source)
    assert len(secret) >= 8
    leaked = [l for l in secret if l in text or json.dumps(l)[1:-1] in text]
    assert not leaked, leaked
    nb = nbformat.read(str(student), as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert "colab-badge.svg" in text and "%pip install" in text          # opens on Colab, installs snnedu
    assert "import otter" not in text and "grader." not in text          # students need only snnedu
    assert "Public checks of q1" in text
    for line in solution_lines(source):                                   # the key keeps every solution line
        assert line in (dist / "solution" / f"{name}.ipynb").read_text(encoding="utf-8")
    assert sorted(p.name for p in (dist / "autograder").iterdir()) == sorted(["classroom.json", "otter_config.json", "tests", f"{name}-autograder.zip"])


def test_graded_solutions_not_in_the_package():
    "The installed snnedu holds none of the graded answers (unlike the self-study exercises' show_solution)."
    package = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "snnedu").rglob("*.py"))
    for name in SHIPPED:
        lines = [l for l in solution_lines(ASSIGNMENTS / f"{name}.ipynb") if len(l) > 25 and not l.startswith(("return ", "for ", "spk_rec"))]
        assert lines and not [l for l in lines if l in package]


def with_answer(nb_path, starts, source):
    "A copy of notebook `nb_path` (as a dict) whose code cell starting with `starts` has the new `source`."
    nb = json.loads(Path(nb_path).read_text(encoding="utf-8"))
    cells = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).startswith(starts)]
    assert len(cells) == 1, starts
    cells[0]["source"] = source
    return json.dumps(nb)


def test_grade_four_submissions_and_a_non_notebook(built, tmp_path):
    dist, name = built["lif_encoding"], "lif_encoding"
    subs = tmp_path / "submissions"; subs.mkdir()
    key, blank = dist / "solution" / f"{name}.ipynb", dist / "student" / f"{name}.ipynb"
    (subs / "key.ipynb").write_text(key.read_text(encoding="utf-8"), encoding="utf-8")
    (subs / "blank.ipynb").write_text(blank.read_text(encoding="utf-8"), encoding="utf-8")
    (subs / "mistake.ipynb").write_text(with_answer(key, "def lif_step_normalised", (   # the typical mistake: no (1 - beta)
        "def lif_step_normalised(cur, mem, beta, threshold):\n    reset = (mem > threshold).float()\n"
        "    mem = beta * mem + cur - reset * threshold\n    return (mem > threshold).float(), mem")), encoding="utf-8")
    (subs / "hangs.ipynb").write_text(with_answer(key, "def first_spike_time", "while True:\n    pass"), encoding="utf-8")
    (subs / "notes.txt").write_text("my answers are in the email", encoding="utf-8")
    out = tmp_path / "grades.csv"
    r = cli("grade", dist, subs, "--out", out, "--timeout", 8, "--jobs", 2, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "5/5" in r.stderr                                              # tqdm's progress bar
    rows = {row["student"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert list(next(iter(rows.values()))) == ["student", "q1", "q2", "q3", "total", "possible", "error"]
    score = lambda s: tuple(float(rows[s][c]) for c in ("q1", "q2", "q3", "total"))
    assert score("key") == (2, 3, 2, 7) and rows["key"]["error"] == ""
    assert score("blank") == (0, 0, 0, 0) and rows["blank"]["error"] == ""
    assert score("mistake")[0] == 2 and 0 < score("mistake")[1] < 3 and score("mistake")[2] == 2
    assert score("hangs") == (2, 3, 0, 5)
    assert score("notes") == (0, 0, 0, 0) and "is not a Jupyter notebook" in rows["notes"]["error"]
    feedback = lambda s: (tmp_path / "grades_feedback" / f"{s}.txt").read_text(encoding="utf-8")
    assert "q1: 2/2" in feedback("key") and "✗" not in feedback("key")
    assert "not attempted yet" in feedback("blank")
    assert "hint: the input is scaled by (1 - beta)" in feedback("mistake")       # the matching mistake hint
    assert re.search(r"ERROR: the cell starting 'while True:' raised TimeoutError: this cell ran longer than 8", feedback("hangs"))
    assert "ERROR:" in feedback("notes")


def test_train_classifier_key_grades_to_full_marks(tmp_path):
    "The accuracy assignment's key passes its hidden held-out accuracy bar (assign --verify grades it)."
    r = cli("assign", ASSIGNMENTS / "train_classifier.ipynb", tmp_path / "dist", "--verify", timeout=600)
    assert r.returncode == 0, r.stderr


def test_cli_bad_input_before_any_work(tmp_path, built):
    blank = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), str(blank))
    a_file = tmp_path / "file.txt"; a_file.write_text("x")
    cases = [(("assign", tmp_path / "missing.ipynb", tmp_path / "d1"), "does not exist"),
             (("assign", blank, tmp_path / "d2"), "has no questions"),
             (("assign", a_file, tmp_path / "d3"), "is not a Jupyter notebook"),
             (("assign", ASSIGNMENTS / "lif_encoding.ipynb", a_file / "dist"), "is a file, not a folder"),
             (("grade", tmp_path / "nodist", tmp_path, "--out", tmp_path / "g1.csv"), "does not exist"),
             (("grade", built["lif_encoding"], tmp_path / "nosubs", "--out", tmp_path / "g2.csv"), "does not exist"),
             (("grade", built["lif_encoding"], tmp_path, "--out", a_file / "g3.csv"), "is a file, not a folder"),
             (("grade", built["lif_encoding"], tmp_path, "--out", tmp_path), "is a folder"),
             (("grade", built["lif_encoding"], tmp_path, "--out", tmp_path / "g4.csv", "--jobs", 0), "jobs must be")]
    before = sorted(tmp_path.rglob("*"))
    r = cli(*cases[0][0])                                                 # the real command line once (a child process) ...
    assert r.returncode == 2 and cases[0][1] in r.stderr and "Traceback" not in r.stderr, r.stderr
    for args, says in cases[1:]:                                          # ... the rest in-process (2 s of torch import each saved)
        with pytest.raises(SystemExit) as exit_, contextlib.redirect_stderr(io.StringIO()) as err:
            classroom.main([str(a) for a in args])
        assert exit_.value.code == 2 and says in err.getvalue() and "Traceback" not in err.getvalue(), (args, err.getvalue())
    assert sorted(tmp_path.rglob("*")) == before                         # nothing written


def test_unwritable_output_is_refused(built, tmp_path, monkeypatch):
    "An output folder the user cannot write to (root ignores permissions, so os.access is stubbed) fails first."
    subs = tmp_path / "subs"; subs.mkdir(); (subs / "a.ipynb").write_text("{}")
    monkeypatch.setattr(classroom.os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match="is not writable"): classroom.grade(built["lif_encoding"], subs, tmp_path / "out" / "g.csv")
    with pytest.raises(ValueError, match="is not writable"): classroom.assign(ASSIGNMENTS / "lif_encoding.ipynb", tmp_path / "dist")
    assert not (tmp_path / "out").exists() and not (tmp_path / "dist").exists()
