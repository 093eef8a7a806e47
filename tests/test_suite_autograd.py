"""The autograd suite: FLOP/byte formulas, skip paths, tiny setups, and `derive` on hand-built results;
one end-to-end run through the CLI (worker processes) for derive and the % ceiling column."""

import pytest
import torch
from conftest import run_cli
from fakes import TINY_BUDGET, FakeBackend, steady_backend

from benchbench import load
from benchbench.analysis.ceilings import ceiling_fraction
from benchbench.api import Context, cpu_limit_reason
from benchbench.model.report import CaseKey, Result
from benchbench.run import registry
from benchbench.run.execute import run_case

TINY = TINY_BUDGET


@pytest.fixture(scope="module")
def suite():
    return registry.discover(names=["autograd"])[0]


@pytest.fixture(scope="module")
def ag(suite):
    return suite.module


fake = steady_backend


def key(bench, params=None, backend="cpu", dtype="float32"):
    return CaseKey.make("autograd", bench, params or {}, backend, dtype)


def setup(suite, bench, params=None, dtype="float32"):
    ctx = Context(backend=fake(), key=key(bench, params, dtype=dtype), profile="quick")
    return suite.benchmark(bench).setup(ctx, **(params or {}))


# --- formulas ------------------------------------------------------------------------------------
def test_mlp_flops_by_hand(ag):
    ws = ag.widths("50-30-20-3")
    assert ws == [50, 30, 20, 3]
    # forward: 2 * batch * (50*30 + 30*20 + 20*3) = 2 * 64 * 2160
    assert ag.mlp_forward_flops(64, ws) == 276480
    # backward: weight grads of all three layers + input grads of the last two: 2 * 64 * (2160 + 660)
    assert ag.mlp_backward_flops(64, ws) == 360960
    assert ag.mlp_step_flops("fwd", 64, ws) == 276480
    assert ag.mlp_step_flops("fwd_bwd", 64, ws) == 637440
    # wide: close to 3x forward for forward+backward, less the first layer's input gradient
    wide = ag.widths("4096-4096-4096-10")
    fwd = ag.mlp_forward_flops(1, wide)
    assert fwd == 2 * (4096 * 4096 * 2 + 4096 * 10)
    assert ag.mlp_step_flops("fwd_bwd", 1, wide) == 3 * fwd - 2 * 4096 * 4096


def test_backward_formulas(ag):
    assert ag.matmul_backward_flops(3) == 108  # two 3x3x3 matmuls at 2 FLOPs per multiply-add
    assert ag.square_sum_backward_bytes(rows=2, cols=3, itemsize=4) == 2 * 6 * 4 + 2 * 4 == 56
    assert ag.bwd_fwd_ratio(t_fwd_bwd=3.0, t_fwd=1.0) == 2.0


def test_cpu_limits(ag):
    assert cpu_limit_reason("cpu", "float32", ag.mlp_step_flops("fwd", 64, ag.widths(ag.WIDE)), False) is None
    reason = cpu_limit_reason("cpu", "float32", ag.mlp_step_flops("fwd", 1024, ag.widths(ag.WIDE)), False)
    assert reason and "68.8 GFLOP" in reason
    assert cpu_limit_reason("cpu", "bfloat16", ag.matmul_backward_flops(1024), emulated=True)
    assert cpu_limit_reason("cpu", "bfloat16", ag.matmul_backward_flops(1024), emulated=False) is None
    assert cpu_limit_reason("cuda", "bfloat16", 1e18, emulated=True) is None


def test_quick_grid_has_small_and_large_batches_of_both_nets_in_both_steps(suite, ag):
    keys = suite.benchmark("mlp").cases("cpu", "quick")
    combos = {(k.params_dict["layers"], k.params_dict["batch"], k.params_dict["step"]) for k in keys}
    assert combos == {(net, b, s) for net in (ag.CLASSIC, ag.WIDE) for b in (64, 1024) for s in ("fwd", "fwd_bwd")}
    overview = suite.benchmark("mlp").cases("cpu", overview=True)
    assert {k.params_dict["step"] for k in overview} == {"fwd", "fwd_bwd"} and len(overview) == 2


# --- skips and tiny setups ----------------------------------------------------------------------
def test_wide_mlp_at_large_batch_is_skipped_on_the_cpu(suite):
    params = {"layers": "4096-4096-4096-10", "batch": 1024, "step": "fwd_bwd"}
    r = run_case(suite.benchmark("mlp"), key("mlp", params), fake("cpu"), TINY)
    assert r.status == "skipped" and "GFLOP per call is over the" in r.reason


def test_emulated_half_matmul_backward_is_skipped_on_the_cpu(suite, ag, monkeypatch):
    monkeypatch.setattr(FakeBackend, "emulates", lambda self, dtype: dtype in ("bfloat16", "float16"))
    r = run_case(suite.benchmark("matmul_backward"), key("matmul_backward", {"n": 1024}, dtype="bfloat16"),
                 fake("cpu"), TINY)
    assert r.status == "skipped" and "no native bfloat16" in r.reason


@pytest.mark.parametrize("step", ["fwd", "fwd_bwd"])
def test_tiny_mlp_declares_flops_and_runs(suite, step):
    case = setup(suite, "mlp", {"layers": "4-3-2", "batch": 5, "step": step})
    fwd = 2 * 5 * (12 + 6)
    assert case.flops == (fwd if step == "fwd" else fwd + 2 * 5 * 18 + 2 * 5 * 6)
    assert case.items == 5 and case.items_unit == "samples"
    out = case.fn()
    assert tuple(out.shape) == ((5, 2) if step == "fwd" else ())


def test_tiny_autograd_cases_run(suite):
    assert len(setup(suite, "graph_overhead", {"requires_grad": True, "ops": 4}).fn().grad_fn.name()) > 0
    assert setup(suite, "graph_overhead", {"requires_grad": False, "ops": 4}).fn().grad_fn is None
    for api in ("backward", "grad"):
        for retain in (False, True):
            case = setup(suite, "backward_api", {"api": api, "retain_graph": retain})
            assert case.flops == 2 * 64 * 3 * 256 * 256 * 2 + 2 * 64 * 2 * 256 * 256  # 3 layers fwd+bwd
            case.fn()
            case.fn()  # a second call must not trip over the first one's graph
    first = setup(suite, "double_backward", {"order": 1}).fn()
    second = setup(suite, "double_backward", {"order": 2}).fn()
    assert len(first) == len(second) == 4
    assert second[-1] is None  # the last bias does not reach d out / d x


def test_tiny_backward_cases_return_the_right_gradients(suite):
    mm = setup(suite, "matmul_backward", {"n": 4})
    assert mm.flops == 256
    ga, gb = mm.fn()
    assert ga.shape == gb.shape == (4, 4)
    red = setup(suite, "reduction_backward", {"shape": "4x3"})
    assert red.bytes == 2 * 12 * 4 + 4 * 4
    (gx,) = red.fn()
    assert gx.shape == (4, 3)


def test_reduction_backward_gradient_is_two_x(suite, monkeypatch):
    seen = {}
    real = torch.randn

    def remembering_randn(*args, **kwargs):
        seen["x"] = real(*args, **kwargs)
        return seen["x"]

    monkeypatch.setattr(torch, "randn", remembering_randn)
    case = setup(suite, "reduction_backward", {"shape": "4x3"})
    (gx,) = case.fn()
    assert torch.allclose(gx, 2 * seen["x"].detach())


# --- derive --------------------------------------------------------------------------------------
def res(bench, params, median, status="ok", dtype="float32", backend="cpu"):
    return Result(key=key(bench, params, backend, dtype), status=status,
                  samples=[median] * 5 if status == "ok" else [])


def mlp_res(step, median, batch=64, **kw):
    return res("mlp", {"layers": "50-30-20-3", "batch": batch, "step": step}, median, **kw)


def test_derive_adds_the_backward_forward_ratio_to_the_fwd_bwd_result(ag):
    fwd, both = mlp_res("fwd", 1.0), mlp_res("fwd_bwd", 3.0)
    ag.derive([fwd, both])
    assert both.metrics["bwd_fwd_ratio"] == pytest.approx(2.0)
    assert both.note == "bwd/fwd 2.00"
    assert "bwd_fwd_ratio" not in fwd.metrics


def test_derive_pairs_only_matching_results(ag):
    lone = mlp_res("fwd_bwd", 3.0)
    other_batch, other_dtype = mlp_res("fwd", 1.0, batch=1024), mlp_res("fwd", 1.0, dtype="bfloat16")
    failed = mlp_res("fwd", 1.0, status="failed")
    other_backend = mlp_res("fwd", 1.0, backend="cuda")
    ag.derive([lone, other_batch, other_dtype, failed, other_backend])
    assert "bwd_fwd_ratio" not in lone.metrics and lone.note is None


def test_derive_is_idempotent_and_follows_new_results(ag):
    fwd, both = mlp_res("fwd", 1.0), mlp_res("fwd_bwd", 4.0)
    ag.derive([both])
    assert "bwd_fwd_ratio" not in both.metrics  # the partner has not run yet
    ag.derive([both, fwd])
    ag.derive([both, fwd])
    assert both.metrics["bwd_fwd_ratio"] == pytest.approx(3.0)


def test_derive_notes_graph_overhead_double_backward_and_backward_api(ag):
    off = res("graph_overhead", {"requires_grad": False, "ops": 100}, 1.0)
    on = res("graph_overhead", {"requires_grad": True, "ops": 100}, 1.5)
    first, second = res("double_backward", {"order": 1}, 1.0), res("double_backward", {"order": 2}, 3.0)
    api = {(a, r): res("backward_api", {"api": a, "retain_graph": r}, m)
           for (a, r), m in {("backward", False): 1.0, ("backward", True): 1.1, ("grad", False): 0.9,
                             ("grad", True): 2.2}.items()}
    ag.derive([off, on, first, second, *api.values()])
    assert on.metrics["autograd_overhead_ratio"] == pytest.approx(1.5) and off.note is None
    assert on.note == "x1.50 vs requires_grad=False"
    assert second.metrics["vs_first_order"] == pytest.approx(3.0)
    assert api["grad", False].metrics["vs_backward"] == pytest.approx(0.9)
    assert api["grad", True].metrics["vs_backward"] == pytest.approx(2.0)  # against backward(retain_graph=True)
    assert api["backward", True].metrics["vs_no_retain"] == pytest.approx(1.1)
    assert api["backward", False].note is None


# --- end to end ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_run_derives_the_ratio_and_shows_percent_of_ceiling(tmp_path):
    out = tmp_path / "r.json"
    pattern = r"tensor_ops/ceiling_copy|tensor_ops/copy\[|autograd/mlp\[batch=64,layers=50-30-20-3,"
    proc = run_cli("run", "--suite", "tensor_ops", "--suite", "autograd", "--profile", "quick", "--backend", "cpu",
                   "--filter",
                   pattern, "-o", str(out), check_rc=0)
    report = load(out)
    assert {r.key.benchmark for r in report.results} == {"ceiling_copy", "copy", "mlp"}
    assert all(r.status == "ok" for r in report.results)
    fwd_bwd = next(r for r in report.results if r.key.params_dict.get("step") == "fwd_bwd")
    assert isinstance(fwd_bwd.metrics["bwd_fwd_ratio"], float)
    assert fwd_bwd.note.startswith("bwd/fwd ")
    copy = next(r for r in report.results if r.key.benchmark == "copy")
    assert ceiling_fraction(report.results, copy) is not None
    assert "% ceiling" in proc.stdout and "bwd/fwd" in proc.stdout
