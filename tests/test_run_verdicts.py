"""`zoo run` says which of its runs the data cannot tell from the best (the paired test of
`zoo.leaderboard.vs_best`), in its table and its JSON."""

from __future__ import annotations

import json

from tiny_models import labelled_csv

from zoo.cli import main


def two_baselines(tmp_path, extra: str = "") -> str:
    (tmp_path / "train.csv").write_text(labelled_csv(60, 1), encoding="utf-8")
    (tmp_path / "test.csv").write_text(labelled_csv(40, 2), encoding="utf-8")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        '[run]\nname = "t"\n[data]\ntrain = "train.csv"\ntest = "test.csv"\n'
        + extra
        + '[[models]]\nmodel = "tfidf"\nname = "first"\n'
        + '[[models]]\nmodel = "tfidf"\nname = "second"\n',
        encoding="utf-8",
    )
    return str(recipe)


def test_the_same_model_twice_is_marked_tied_in_the_table_and_json(tmp_path, capsys):
    recipe = two_baselines(tmp_path)
    assert main(["run", recipe]) == 0
    out = capsys.readouterr().out
    second = next(line for line in out.splitlines() if "second" in line)
    assert "second ≈" in second
    assert "first ≈" not in out
    assert "≈ tied with first on macro-F1" in out

    assert main(["run", recipe, "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert runs[0]["vs_best"] is None  # the best row
    assert runs[1]["vs_best"]["model"] == "first"
    assert runs[1]["vs_best"]["tied"] is True
    assert runs[1]["vs_best"]["diff"] == 0


def test_runs_of_several_seeds_get_the_leaderboard_of_them_after_the_table(tmp_path, capsys):
    recipe = two_baselines(tmp_path, extra="")
    assert main(["run", recipe, "--set", "run.seeds=[1, 2]"]) == 0
    out = capsys.readouterr().out
    assert "first (seed 1)" in out and "second (seed 2)" in out
    over = out[out.index("Over all runs") :]
    assert "second ≈" in over
    assert "mean over seeds" in over
