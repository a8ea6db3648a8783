"""The GPU check (benchmarks/gpu_check.py) and its memory grid (benchmarks/cuda_memory.py), as
far as a machine without a GPU can check them: which cases and steps there are, the time
budgets, and that every CUDA step says it was skipped rather than failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import cuda_memory  # noqa: E402
import gpu_check  # noqa: E402

from zoo.memory.measure_cuda import cuda_unavailable  # noqa: E402

needs_no_gpu = pytest.mark.skipif(cuda_unavailable() is None, reason="this machine has a GPU")


def _env() -> dict[str, str]:
    # This tree's zoo, whatever zoo the environment has installed.
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }


def test_the_real_grid_covers_the_issues_models_precisions_methods_and_sizes():
    cases = cuda_memory.real_grid()
    assert len({c.name for c in cases}) == len(cases)
    assert {c.model for c in cases} == {"xlm-r-base", "gpt-neox-1.3b"}
    for model in ("xlm-r-base", "gpt-neox-1.3b"):
        mine = [c for c in cases if c.model == model]
        assert {c.precision for c in mine} == {"bf16", "bf16-pure", "fp16"}
        assert {c.method for c in mine} == {"full", "lora", "qlora"}
        assert {c.checkpointing for c in mine} == {False, True}
        assert {c.optimizer for c in mine} == {"adamw", "adamw-8bit"}
        assert {(1, 128), (16, 512)} <= {(c.batch, c.sequence) for c in mine}
        assert max(c.batch * c.sequence for c in mine) == 16 * 512
    # The first cases name every option once, before the size sweep repeats them.
    first = cases[:22]
    assert {c.method for c in first} == {"full", "lora", "qlora"}
    assert {c.precision for c in first} == {"bf16", "bf16-pure", "fp16"}


def test_the_real_shapes_are_xlmr_base_and_a_13b_gpt_neox():
    shapes = cuda_memory.real_shapes()
    assert shapes["xlm-r-base"].parameters() == 278_045_955  # memory-estimation.md, measured
    neox = shapes["gpt-neox-1.3b"]
    assert (neox.hidden, neox.layers, neox.vocab) == (2048, 24, 30_080)
    assert 1.2e9 < neox.parameters() < 1.4e9


def test_every_case_builds_an_estimator_setup():
    shapes = cuda_memory.real_shapes()
    for case in cuda_memory.real_grid():
        setup = case.setup(shapes[case.model])
        assert setup.device == "cuda" and setup.batch_size == case.batch
        assert bool(setup.lora_targets) == (case.method != "full")
        assert cuda_memory.step_peak(shapes[case.model], setup) > 0


def test_the_largest_cases_need_no_bitsandbytes_and_come_biggest_first():
    shapes = cuda_memory.real_shapes()
    largest = cuda_memory.largest_cases(cuda_memory.real_grid(), shapes, 3)
    assert len(largest) == 3 and not any(c.needs_bitsandbytes for c in largest)
    peaks = [cuda_memory.step_peak(shapes[c.model], c.setup(shapes[c.model])) for c in largest]
    assert peaks == sorted(peaks, reverse=True)
    assert all(c.model == "gpt-neox-1.3b" for c in largest)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_leaves_out_the_cases_that_would_pass_it():
    cases = [cuda_memory.Case(model=m, batch=b) for m in ("a", "b") for b in (1, 2, 4)]
    clock = Clock()
    took = {"a": 10.0, "b": 30.0}

    def measure(case):
        clock.now += took[case.model]
        return {"case": case.name, "status": "measured"}

    rows = list(cuda_memory.within_budget(cases, 55, measure, lambda c: 5.0, clock))
    assert [r["status"] for r in rows] == ["measured"] * 4 + ["skipped"] * 2
    # a: 10 + 10 + 10; b expected at 5 s before it ran: 30 + 5 <= 55, then it took 30.
    assert all(r["reason"] == "budget" for r in rows[4:])
    assert "expected" in rows[4]["detail"]
    everything = list(cuda_memory.within_budget(cases, None, measure, lambda c: 5.0, Clock()))
    assert [r["status"] for r in everything] == ["measured"] * 6


def test_the_listing_shows_every_case_with_a_time_guess(capsys):
    assert cuda_memory.main("real", budget=None, largest=None, jsonl=None, listing=True) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(cuda_memory.real_grid()) + 1
    assert out[-1].startswith(f"{len(cuda_memory.real_grid())} cases, ~")


@needs_no_gpu
def test_device_cuda_refuses_without_a_gpu():
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "memory_accuracy.py"), "--device", "cuda",
         "--grid", "tiny"],
        capture_output=True, text=True, env=_env(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no CUDA GPU" in done.stderr and "Traceback" not in done.stderr


def test_the_dry_run_lists_every_step_with_its_budget_and_command(tmp_path, capsys):
    assert gpu_check.main([str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    names = [s.name for s in gpu_check.steps(tmp_path)]
    assert names[:3] == ["setup", "doctor", "memory"]
    for step in gpu_check.steps(tmp_path):
        assert f"{step.name} ({step.budget} s" in out
    assert "zoo doctor --gpu --json" in out and "--budget-seconds" in out
    assert "expandable_segments:True" in out and "compare_with_plain.py demo 1" in out
    assert "--bf16" in out and "tests/test_distributed.py" in out
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_what_comes_back_fits_the_device_tools_limits(tmp_path):
    assert len(gpu_check.FILES) <= 8  # files back from $OUT: at most 8
    outputs = {s.output for s in gpu_check.steps(tmp_path)}
    assert outputs <= set(gpu_check.FILES)
    # A device command runs 10 minutes at most: the whole check stops well before.
    assert gpu_check.TOTAL_BUDGET <= 540


@needs_no_gpu
def test_on_a_cpu_every_cuda_step_is_skipped_with_why(tmp_path):
    only = "doctor,memory,expandable-on,benchmark-1,ddp-nccl"
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), str(tmp_path), "--only", only],
        capture_output=True, text=True, timeout=60, check=False,
        env={**_env(), "PYTHON": sys.executable},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (tmp_path / "steps.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == only.split(",")
    assert all(r["status"] == "skipped" for r in records)
    assert all(r["reason"].startswith("no CUDA GPU") for r in records)
    summary = (tmp_path / "summary.md").read_text()
    assert "0 passed, 0 failed, 0 timed out, 5 skipped" in summary
    assert "| ddp-nccl | skipped |" in summary


def test_a_step_that_fails_or_times_out_does_not_stop_the_others(tmp_path, monkeypatch):
    py = sys.executable
    fake = [
        gpu_check.Step(name="a", budget=5, cuda=False, what="fails",
                       command=(py, "-c", "import sys; sys.exit(3)")),
        gpu_check.Step(name="b", budget=1, cuda=False, what="hangs",
                       command=(py, "-c", "import time; time.sleep(30)")),
        gpu_check.Step(name="c", budget=5, cuda=False, what="works", output="memory.md",
                       command=(py, "-c", "print('hello')")),
        gpu_check.Step(name="d", budget=5, gpus=2, what="two GPUs", command=(py, "-c", "")),
    ]  # fmt: skip
    monkeypatch.setattr(gpu_check, "steps", lambda results: fake)
    monkeypatch.setattr(gpu_check, "machine", lambda: (None, 1))
    monkeypatch.setattr(gpu_check, "WORK", tmp_path / "work")
    assert gpu_check.run_all(tmp_path / "out", budget=60, only=None) == 1
    records = [json.loads(x) for x in (tmp_path / "out" / "steps.jsonl").read_text().splitlines()]
    assert [(r["step"], r["status"]) for r in records] == [
        ("a", "failed"), ("b", "timed out"), ("c", "passed"), ("d", "skipped")
    ]  # fmt: skip
    assert records[0]["exit"] == 3 and records[3]["reason"] == "needs 2 GPUs, this machine has 1"
    assert "hello" in (tmp_path / "out" / "memory.md").read_text()


def test_the_expandable_segments_reading_pairs_the_same_cases(tmp_path):
    path = tmp_path / "expandable.jsonl"
    rows = [
        {"case": "x", "status": "measured", "alloc_conf": "", "reserved_over_allocated": 1.30},
        {"case": "x", "status": "measured", "alloc_conf": "expandable_segments:True",
         "reserved_over_allocated": 1.05},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = gpu_check.expandable_reading(path)
    assert "| x | 1.300 | 1.050 |" in lines
    assert lines[-1].startswith("expandable_segments:True suggests setting it")
    assert gpu_check.expandable_reading(tmp_path / "none") == ["expandable_segments: not measured"]


def test_a_plugins_link_another_checkout_left_is_replaced_by_this_trees(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "WORK", tmp_path)
    (tmp_path / "path").mkdir()
    stale = tmp_path / "path" / "zoo_plugins"
    stale.symlink_to(tmp_path / "gone" / "plugins")  # a removed checkout: a broken link
    env = gpu_check.environment()
    assert stale.resolve() == (REPO / "plugins").resolve()
    assert str(tmp_path / "path") in env["PYTHONPATH"].split(os.pathsep)
    gpu_check.environment()  # a second run keeps the right link
    assert stale.resolve() == (REPO / "plugins").resolve()
