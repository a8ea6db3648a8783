"""Faults: a killed run resumes to the same result; out-of-memory backs off; NaN loss fails one
model; untrusted files are refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tiny_models import DEMO_DATA, read_rows

from zoo.cli import main
from zoo.store import ResultsStore


def write_data(directory: Path) -> None:
    import csv

    for name, count in (("train", 150), ("test", 40)):
        rows = read_rows(DEMO_DATA / f"{name}.csv")[:count]
        with (directory / f"{name}.csv").open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["id", "text", "label"])
            writer.writeheader()
            writer.writerows(rows)


def write_recipe(directory: Path, model_dir: Path, extra: str = "", **training) -> Path:
    settings = {
        "max_steps": 150,
        "batch_size": 8,
        "max_length": 48,
        "learning_rate": 3e-3,
        "early_stopping_patience": 0,
        **training,
    }
    lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    write_data(directory)
    path = directory / "recipe.toml"
    path.write_text(
        f'[run]\nname = "faults"\noutput_dir = "runs"\n\n'
        f'[data]\ntrain = "train.csv"\ntest = "test.csv"\nvalidation = 0.2\n\n'
        f'[[models]]\nmodel = "finbert"\ncheckpoint = "{model_dir}"\n{extra}\n\n'
        f"[training]\n{lines}\n",
        encoding="utf-8",
    )
    return path


def zoo_process(*args: str) -> subprocess.Popen:
    env = {**os.environ, "ZOO_PLUGINS": "", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_metrics(tmp_path, tiny_bert):
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight_dir.mkdir()
    killed_dir.mkdir()

    straight = zoo_process("run", str(write_recipe(straight_dir, tiny_bert)), "--json")
    out, err = straight.communicate(timeout=600)
    assert straight.returncode == 0, err
    [expected] = json.loads(out)["runs"]

    killed = zoo_process("run", str(write_recipe(killed_dir, tiny_bert)))
    deadline = time.monotonic() + 300
    while not list(killed_dir.glob("runs/faults/*/checkpoints/checkpoint-*/trainer_state.json")):
        assert killed.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGTERM)
    _out, err = killed.communicate(timeout=120)
    assert killed.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    [run_dir] = killed_dir.glob("runs/faults/*")
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["status"] == "interrupted"
    assert record["resume"] == f"zoo run --resume {run_dir}"
    assert not (run_dir / "metrics.json").exists()
    [stored] = ResultsStore.in_dir(killed_dir / "runs").runs()
    assert stored.status == "interrupted"

    resumed = zoo_process("run", "--resume", str(run_dir), "--json")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    [result] = json.loads(out)["runs"]
    assert result["run_dir"] == str(run_dir)  # the same directory, continued
    assert json.loads((run_dir / "run.json").read_text())["resumed_from"].startswith(
        str(run_dir / "checkpoints" / "checkpoint-")
    )
    assert result["metrics"] == expected["metrics"]
    assert metrics(run_dir) == metrics(Path(expected["run_dir"]))


def test_out_of_memory_halves_the_batch_and_keeps_the_effective_batch(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    import zoo.engine.train as engine

    real = engine.train_model
    seen = []

    def train_model(job, make_run_dir, progress):
        seen.append((job.settings.batch_size, job.settings.gradient_accumulation_steps))
        if len(seen) < 3:  # an injected CUDA out-of-memory, twice
            make_run_dir()
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(job, make_run_dir, progress)

    monkeypatch.setattr(engine, "train_model", train_model)
    monkeypatch.setenv("ZOO_PLUGINS", "")
    recipe = write_recipe(tmp_path, tiny_bert, max_steps=4)
    assert main(["run", str(recipe), "--oom-retries", "2", "--json"]) == 0

    assert seen == [(8, 1), (4, 2), (2, 4)]
    [run] = json.loads(capsys.readouterr().out)["runs"]
    record = json.loads((Path(run["run_dir"]) / "run.json").read_text())
    assert [r["then"] for r in record["oom_retries"]] == [
        "batch 4 x 2 accumulation steps",
        "batch 2 x 4 accumulation steps",
    ]
    assert record["settings"]["batch_size"] * record["settings"]["gradient_accumulation_steps"] == 8
    assert len(list((tmp_path / "runs" / "faults").iterdir())) == 1  # retries reuse one directory


def test_without_retries_out_of_memory_fails_that_model(tmp_path, tiny_bert, monkeypatch, capsys):
    import zoo.engine.train as engine

    def out_of_memory(job, make_run_dir, progress):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(engine, "train_model", out_of_memory)
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert main(["run", str(write_recipe(tmp_path, tiny_bert))]) == 1
    assert "error: model 'finbert' failed: OutOfMemoryError: CUDA out of memory" in (
        capsys.readouterr().err
    )


def test_a_nan_loss_fails_that_model_with_advice(tmp_path, tiny_bert, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_PLUGINS", "")
    recipe = write_recipe(tmp_path, tiny_bert, max_steps=8, learning_rate=1e30)
    assert main(["run", str(recipe)]) == 1
    err = capsys.readouterr().err
    assert "error: model 'finbert' failed: the training loss became nan at step " in err
    assert "hint: lower the learning rate" in err


# --- untrusted files ----------------------------------------------------------------------------


def test_pickled_weights_are_refused_unless_the_recipe_allows_them(tmp_path, tiny_bert, capsys):
    import shutil

    from transformers import BertModel

    pickled = tmp_path / "pickled-model"
    shutil.copytree(tiny_bert, pickled)
    (pickled / "model.safetensors").unlink()
    model = BertModel.from_pretrained(tiny_bert)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # the old pickle format
    assert (pickled / "pytorch_model.bin").exists()
    assert not list(pickled.glob("*.safetensors"))

    recipe = write_recipe(tmp_path, pickled, max_steps=2)
    assert main(["run", str(recipe)]) == 6
    err = capsys.readouterr().err
    assert f"error: model 'finbert' refused: {pickled} holds only pickled weights " in err
    assert "set allow_pickle = true for 'finbert' in the recipe if you trust these files" in err

    allowed = write_recipe(tmp_path, pickled, "allow_pickle = true", max_steps=2)
    assert main(["run", str(allowed)]) == 0


def test_remote_code_is_refused_unless_plugin_and_recipe_both_allow_it(tmp_path, tiny_bert, capsys):
    recipe = write_recipe(tmp_path, tiny_bert, "trust_remote_code = true", max_steps=2)
    assert main(["run", str(recipe)]) == 6
    err = capsys.readouterr().err
    assert (
        "error: model 'finbert' refused: the recipe sets trust_remote_code = true for 'finbert', "
        "but the plugin of 'finbert' does not allow code from its repository"
    ) in err
    assert not (tmp_path / "runs" / "faults").exists()


def test_8_bit_adamw_without_a_cuda_gpu_is_refused_before_the_model_loads(
    tmp_path, tiny_bert, capsys
):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    recipe = write_recipe(tmp_path, tiny_bert, max_steps=2, optimizer="adamw-8bit")
    assert main(["run", str(recipe)]) == 6
    err = capsys.readouterr().err
    assert (
        "error: model 'finbert' refused: optimizer = 'adamw-8bit' keeps AdamW's state in 8 bits "
        "with bitsandbytes, which needs a CUDA GPU, and this machine has none\n"
        "  hint: use optimizer = 'adamw' on this machine (or 'adafactor', whose state is small "
        "too)\n"
    ) in err
    assert not (tmp_path / "runs" / "faults").exists()  # the run directory comes after loading


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("run.name", '"../escape"', "run.name: must be a plain name without '/', '\\' or ':'"),
        ("run.name", '".."', "run.name: must be a plain name without '/', '\\' or ':'"),
        ("models[0].name", '"../../etc"', "models[0].name: must be a plain name"),
    ],
)
def test_names_cannot_escape_the_output_directory(
    tmp_path, tiny_bert, capsys, where, value, message
):
    recipe = write_recipe(tmp_path, tiny_bert)
    text = recipe.read_text(encoding="utf-8")
    if where == "run.name":
        text = text.replace('name = "faults"', f"name = {value}")
    else:
        text = text.replace('model = "finbert"', f'model = "finbert"\nname = {value}')
    recipe.write_text(text, encoding="utf-8")
    assert main(["validate", str(recipe)]) == 2
    assert message in capsys.readouterr().err


def test_a_full_disk_while_saving_keeps_the_checkpoints_and_no_half_model(
    tmp_path, tiny_bert, monkeypatch, capsys
):
    import errno

    from transformers import Trainer

    def full_disk(self, output_dir=None, _internal_call=False):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        (Path(output_dir) / "model.safetensors").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Trainer, "save_model", full_disk)
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert main(["run", str(write_recipe(tmp_path, tiny_bert, max_steps=4)), "--json"]) == 1
    [run] = json.loads(capsys.readouterr().out)["runs"]
    run_dir = Path(run["run_dir"])
    assert run["reason"] == "OSError: [Errno 28] No space left on device"
    assert not (run_dir / "model").exists()  # no half-written model where a model belongs
    assert list(run_dir.glob("checkpoints/checkpoint-*/model.safetensors"))  # the best is kept
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


# --- resuming: only what the run started with ---------------------------------------------------


def snapshot(root: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory, tiny_bert) -> Path:
    """A tiny-BERT run stopped (as by Ctrl-C) right after its first checkpoint, at step 15 of 30;
    made once: tests work on copies (`interrupted`)."""
    import contextlib
    import io

    from transformers import Trainer

    directory = tmp_path_factory.mktemp("stopped")
    real = Trainer._save_checkpoint

    def save_then_stop(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt

    Trainer._save_checkpoint = save_then_stop
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            recipe = write_recipe(directory, tiny_bert, max_steps=30)
            assert main(["run", str(recipe)]) == 130
    finally:
        Trainer._save_checkpoint = real
    [run_dir] = (directory / "runs" / "faults").iterdir()
    assert f"interrupted: continue 'finbert' with zoo run --resume {run_dir}" in err.getvalue()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    return run_dir


@pytest.fixture
def interrupted(stopped_run, tmp_path, monkeypatch) -> Path:
    """A copy of the stopped run's whole folder in `tmp_path`, its paths pointed there."""
    import shutil
    import sqlite3
    from contextlib import closing

    monkeypatch.setenv("ZOO_PLUGINS", "")
    source = stopped_run.parents[2]
    shutil.copytree(source, tmp_path, dirs_exist_ok=True)
    for path in [*tmp_path.rglob("*.json"), *tmp_path.rglob("*.toml")]:
        path.write_text(path.read_text().replace(str(source), str(tmp_path)))
    with closing(sqlite3.connect(tmp_path / "runs" / "zoo-results.sqlite")) as store:
        store.execute(
            "UPDATE runs SET run_dir = replace(run_dir, ?, ?)", (str(source), str(tmp_path))
        )
        store.commit()
    return tmp_path / stopped_run.relative_to(source)


def resume_refused(run_dir: Path, *problems: str) -> str:
    count = f"{len(problems)} difference{'s' if len(problems) > 1 else ''}"
    return (
        "run 'faults': 1 model(s)\n"
        f"error: cannot resume {run_dir}: it started with another recipe or data ({count})\n"
        + "".join(f"  - {problem}\n" for problem in problems)
        + "  hint: its checkpoints were made for what it started with: undo the change, or "
        f"train afresh with zoo run {run_dir / 'recipe.toml'}\n"
    )


def test_resuming_after_a_recipe_setting_changed_is_refused_with_the_change(
    interrupted, tmp_path, capsys
):
    recipe = interrupted / "recipe.toml"
    recipe.write_text(recipe.read_text().replace("max_length = 48", "max_length = 64"))
    before = snapshot(tmp_path)
    assert main(["run", "--resume", str(interrupted)]) == 2
    assert capsys.readouterr().err == resume_refused(
        interrupted, "training.max_length: 48 when the run started, 64 now"
    )
    assert snapshot(tmp_path) == before  # nothing written, nothing recorded


def test_resuming_with_a_set_override_is_refused_with_the_change(interrupted, tmp_path, capsys):
    before = snapshot(tmp_path)
    args = ["run", "--resume", str(interrupted), "--set", "training.learning_rate=0.01"]
    assert main(args) == 2
    assert capsys.readouterr().err == resume_refused(
        interrupted, "training.learning_rate: 0.003 when the run started, 0.01 now"
    )
    assert snapshot(tmp_path) == before


def test_resuming_with_another_trainer_table_is_refused_with_the_change(
    interrupted, tmp_path, capsys
):
    before = snapshot(tmp_path)
    args = ["run", "--resume", str(interrupted), "--set", "training.trainer.max_grad_norm=0.5"]
    assert main(args) == 2
    assert capsys.readouterr().err == resume_refused(
        interrupted, "training.trainer.max_grad_norm: (not set) when the run started, 0.5 now"
    )
    assert snapshot(tmp_path) == before


def test_resuming_after_the_data_changed_names_the_file_and_the_labels(
    interrupted, tmp_path, capsys
):
    """Not a raw state-dict size mismatch: which file changed, and the label lists."""
    import hashlib

    train = tmp_path / "train.csv"
    then = hashlib.sha256(train.read_bytes()).hexdigest()
    with train.open("a", encoding="utf-8") as f:
        f.write("99990,새로운 종류의 문의,billing\n99991,또 다른 새로운 문의,billing\n")
    now = hashlib.sha256(train.read_bytes()).hexdigest()
    before = snapshot(tmp_path)
    assert main(["run", "--resume", str(interrupted)]) == 2
    labels = ["code", "remote", "system", "theory", "web"]
    assert capsys.readouterr().err == resume_refused(
        interrupted,
        f"data.train: {train} changed since the run started (sha256 {then[:12]} then, "
        f"{now[:12]} now)",
        f"labels: {labels} when the run started, {['billing', *labels]} now",
    )
    assert snapshot(tmp_path) == before


def test_an_unchanged_run_resumes_in_its_directory_and_keeps_its_identity(
    interrupted, tmp_path, capsys
):
    assert main(["run", "--resume", str(interrupted), "--json"]) == 0
    [run] = json.loads(capsys.readouterr().out)["runs"]
    assert Path(run["run_dir"]) == interrupted
    record = json.loads((interrupted / "run.json").read_text())
    assert record["status"] == "ok"
    assert record["resumed_from"] == str(interrupted / "checkpoints" / "checkpoint-15")
    stopped, finished = ResultsStore.in_dir(tmp_path / "runs").runs()
    assert (stopped.status, finished.status) == ("interrupted", "ok")
    # Both records belong to the recipe that was run, not to RUN_DIR/recipe.toml.
    assert finished.recipe_hash == stopped.recipe_hash == record["recipe_hash"]
    assert finished.data_fingerprint == stopped.data_fingerprint
    assert finished.run_dir == stopped.run_dir == str(interrupted)


def test_resume_together_with_a_recipe_is_a_bad_command_line(interrupted, tmp_path, capsys):
    assert main(["run", str(tmp_path / "recipe.toml"), "--resume", str(interrupted)]) == 2
    assert capsys.readouterr().err == (
        "error: give either recipes to run or --resume RUN_DIR, not both\n"
        "  hint: zoo run RECIPE...  or  zoo run --resume OUTPUT_DIR/RUN_NAME/MODEL-seedN-DATE\n"
    )
