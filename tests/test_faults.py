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
