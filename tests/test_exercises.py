"""Tests of snnedu.exercises: every published solution passes, typical wrong answers fail naming the case,
student exceptions are reported in plain words, and unattempted exercises never raise."""
import pytest
import torch

from snnedu import exercises as E
from snnedu.exercises import EXERCISES, Exercise, check, exercise, hint, register, show_solution

NAMES = sorted(EXERCISES)


def test_course_has_enough_exercises():
    assert len(NAMES) >= 12
    for t in ("t1.", "t2.", "t3.", "t4."):
        assert sum(n.startswith(t) for n in NAMES) >= 3, t


@pytest.mark.parametrize("name", NAMES)
def test_solution_passes(name, capsys):
    ex = exercise(name)
    r = check(name, ex.solution_function())
    assert r and r.passed and r.attempted and r.case is None
    assert f"✓ {name}" in capsys.readouterr().out


@pytest.mark.parametrize("name", NAMES)
def test_declared_mistakes_fail_with_their_diagnosis(name):
    ex = exercise(name)
    for m in ex.mistakes:
        r = check(name, m.fn, verbose=False)
        assert not r and r.attempted and r.case in [c.description for c in ex.cases]
        assert f'case "{r.case}" failed' in r.message and m.says in r.message


# Typical wrong answers written out as a student would (not the declared mistake functions).
def lif_no_reset(cur, mem, beta, threshold):
    mem = beta * mem + cur
    return (mem > threshold).float(), mem

def lif_ge(cur, mem, beta, threshold):
    reset = (mem > threshold).float()
    mem = beta * mem + cur - reset * threshold
    return (mem >= threshold).float(), mem

def lif_spike_from_previous(cur, mem, beta, threshold):
    spk = (mem > threshold).float()
    mem = beta * mem + cur - spk * threshold
    return spk, mem

def lif_decay_input(cur, mem, beta, threshold):
    reset = (mem > threshold).float()
    mem = beta * (mem + cur) - reset * threshold
    return (mem > threshold).float(), mem

def lif_one_minus_beta(cur, mem, beta, threshold):
    reset = (mem > threshold).float()
    mem = beta * mem + (1 - beta) * cur - reset * threshold
    return (mem > threshold).float(), mem

def lif_zero_reset(cur, mem, beta, threshold):
    reset = (mem > threshold).float()
    mem = beta * mem * (1 - reset) + cur
    return (mem > threshold).float(), mem


@pytest.mark.parametrize("fn, case, says", [
    (lif_no_reset, "the previous membrane was above threshold: reset", "forgot the reset"),
    (lif_ge, "a membrane exactly at threshold does not fire", "strict >"),
    (lif_spike_from_previous, "the membrane crosses the threshold this step: it fires", "new membrane"),
    (lif_decay_input, "below threshold: decay and integrate", "input is added undecayed"),
    (lif_one_minus_beta, "below threshold: decay and integrate", "(1 - β)"),
    (lif_zero_reset, "the previous membrane was above threshold: reset", None),
])
def test_typical_lif_mistakes_name_the_case(fn, case, says):
    r = check("t2.lif_step", fn, verbose=False)
    assert not r and r.case == case
    assert case in r.message and "expected:" in r.message and "received:" in r.message
    if says: assert says in r.message


def test_subtraction_answer_fails_the_zero_reset_exercise():
    def lif_sub(cur, mem, beta, threshold):
        reset = (mem > threshold).float()
        mem = beta * mem + cur - reset * threshold
        return (mem > threshold).float(), mem
    r = check("t2.lif_step_zero", lif_sub, verbose=False)
    assert not r and r.case == "the previous membrane was above threshold: reset" and "reset by subtraction" in r.message


def test_wrong_decay_factor_and_forgotten_network_reset():
    r = check("t2.decay_factor", lambda tau, dt: 1 - dt / tau, verbose=False)
    assert not r and r.case == "tau = 5 ms, 1 ms steps" and "Euler" in r.message
    r = check("t3.record_hidden", lambda net, x_seq: torch.stack([net(x) for x in x_seq]), verbose=False)
    assert not r and r.case == "a network that has already been run once" and "utils.reset" in r.message


def test_student_exception_is_reported_without_traceback(capsys):
    def lif_step(cur, mem, beta, threshold):
        reset = torch.heaviside(mem - threshold)    # TypeError: missing `values`
        return reset, mem
    r = check("t2.lif_step", lif_step)
    out = capsys.readouterr().out
    assert not r and r.attempted and r.case == "below threshold: decay and integrate"
    assert "TypeError" in out and "line 2 of your function" in out and "Traceback" not in out and 'File "' not in out


def test_missing_return_is_named():
    def lif_step(cur, mem, beta, threshold):
        mem = beta * mem + cur
    r = check("t2.lif_step", lif_step, verbose=False)
    assert not r and "did you forget to `return`" in r.message


def test_wrong_shape_is_named():
    r = check("t1.firing_rate", lambda s: s.mean(0, keepdim=True), verbose=False)
    assert not r and "has shape (1,), expected shape ()" in r.message


@pytest.mark.parametrize("fn", [None, ..., "placeholder-def", "return-dots"])
def test_not_attempted_does_not_raise(fn, capsys):
    if fn == "placeholder-def":
        def fn(cur, mem, beta, threshold):
            "Your code here."
            ...
    elif fn == "return-dots":
        def fn(cur, mem, beta, threshold):
            return ..., ...
    r = check("t2.lif_step", fn)
    assert not r and not r.attempted and r.case is None
    assert "not attempted" in capsys.readouterr().out


def test_hint_and_solution_print(capsys):
    hint("t2.lif_step"); hint("t2.lif_step", 2); show_solution("t2.lif_step")
    out = capsys.readouterr().out
    assert "Hint 1/2" in out and "Hint 2/2" in out and "def lif_step" in out
    assert "def lif_step" not in check("t2.lif_step", lif_no_reset, verbose=False).message   # solutions only on request


def test_teacher_registers_an_exercise():
    ex = Exercise("test.double", "Double x.", ("x",), ("y",), lambda x: 2 * x,
                  [("a number", (3.0,)), ("a tensor", (torch.arange(3.0),))],
                  hints="Multiply by two.", mistakes=[(lambda x: x + 2, "Double means times two, not plus two.")],
                  solution_source="def double(x):\n    return 2 * x\n")
    try:
        assert register(ex) is ex and exercise("test.double") is ex
        with pytest.raises(ValueError, match="already registered"): register(ex)
        assert check("test.double", lambda x: x * 2, verbose=False)
        r = check("test.double", lambda x: x + 2, verbose=False)
        assert r.case == "a number" and "not plus two" in r.message
        assert check("test.double", ex.solution_function(), verbose=False)
    finally:
        EXERCISES.pop("test.double", None)


def test_bad_declarations_and_names():
    with pytest.raises(ValueError, match="cases must list at least one case"): Exercise("x", "p", ("a",), ("b",), abs, [])
    with pytest.raises(TypeError, match="reference must be callable"): Exercise("x", "p", ("a",), ("b",), 3, [("c", (1,))])
    with pytest.raises(TypeError, match="each case must be a Case"): Exercise("x", "p", ("a",), ("b",), abs, [(1, 2)])
    with pytest.raises(TypeError, match="register expects an Exercise"): register("t9.x")
    with pytest.raises(ValueError, match="did you mean 't2.lif_step'"): exercise("t2.lif_stp")
    with pytest.raises(TypeError, match="fn must be the function you wrote"): check("t2.lif_step", 3)


def test_student_cannot_spoil_inputs_in_place():
    def lif_step(cur, mem, beta, threshold):
        mem.mul_(0)                        # in-place damage to its own copy only
        return E._t2_lif_step(cur, mem, beta, threshold)
    r = check("t2.lif_step", lif_step, verbose=False)
    assert not r and r.case == "below threshold: decay and integrate"
    assert "mem=tensor([0.5])" in r.message    # the inputs shown are the untouched ones


def test_closed_form_kernel_fails_only_where_alpha_equals_beta():
    "The closed form (α^(t+1) - β^(t+1)) / (α - β) is right except at α = β (0/0): the check names that case."
    def closed_form(alpha, beta, num_steps):
        t = torch.arange(num_steps, dtype=torch.float32)
        return (alpha ** (t + 1) - beta ** (t + 1)) / (alpha - beta)
    r = check("t4.synaptic_kernel", closed_form, verbose=False)
    assert not r and r.attempted and r.case == "alpha equal to beta"


def test_every_tutorial_exercise_lives_in_the_package():
    "Tutorials 1-11 declare no exercise themselves: all of t1 ... t11 are registered by importing snnedu.exercises."
    for t in range(1, 12):
        assert sum(n.startswith(f"t{t}.") for n in NAMES) >= 3, f"t{t}: fewer than 3 exercises in snnedu.exercises"


@pytest.mark.parametrize("env", [{"IN_TEST": "1"}, {"CI": "true"}])
def test_expect_raises_under_ci_and_only_notes_for_a_student(env, monkeypatch, capsys):
    for k in ("IN_TEST", "CI"): monkeypatch.delenv(k, raising=False)
    r = E.expect(0.85, at_least=0.9, what="held-out accuracy", fmt="{:.1%}")
    out = capsys.readouterr().out
    assert not r and "below the 90.0% this tutorial reaches with its default settings" in out and out.startswith("Note:")
    assert E.expect(0.95, at_least=0.9, what="held-out accuracy") and "✓ held-out accuracy" in capsys.readouterr().out
    for k, v in env.items(): monkeypatch.setenv(k, v)
    with pytest.raises(AssertionError, match="held-out accuracy is 85.0%, below the 90.0%"):
        E.expect(0.85, at_least=0.9, what="held-out accuracy", fmt="{:.1%}")
    monkeypatch.setenv("CI", "false"); monkeypatch.setenv("IN_TEST", "0")
    assert not E.expect(0.85, at_least=0.9, what="accuracy")      # 'false' / '0' mean off


@pytest.mark.parametrize("kwargs, message", [
    (dict(), "expect needs a bound"),
    (dict(at_least=0.5, what=""), "what must name the result"),
])
def test_expect_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message): E.expect(0.7, **kwargs)
