"""The README says what zoo does: its command examples that need no GPU and no hub are run here
and what they print is compared with what the README shows; its tables of commands, exit codes,
run-directory files and modules are compared with the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from zoo.cli import EPILOG, build_parser, main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")

# What the README's `zoo validate broken.toml` example validates.
BROKEN = """\
[run]
name = "broken"

[data]
train = "train.csv"

[[models]]
model = "e5-smal"

[trainig]
epochs = 1

[training]
epochs = 2.5
lr_scheduler = "cosin"
"""


def section(title: str) -> str:
    """The README's text under a `## title` heading, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no section {title!r}"
    return match[1]


def table_column(text: str, header: str) -> list[str]:
    """The first column of the markdown table whose header line starts with `header`."""
    lines = text[text.index(header) :].splitlines()
    table = []
    for line in lines[2:]:  # below the header and its |---| line
        if not line.startswith("|"):
            break
        table.append(line.split("|")[1].strip())
    return table


def test_the_validate_example_prints_what_the_readme_shows(tmp_path, monkeypatch, capsys):
    block = re.search(r"```\n\$ zoo validate broken.toml\n(.*?)```", README, re.S)
    assert block, "the README's validate example is gone"
    (tmp_path / "broken.toml").write_text(BROKEN, encoding="utf-8")
    (tmp_path / "train.csv").write_text("text,label\na,x\nb,y\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZOO_PLUGINS", "")
    assert main(["validate", "broken.toml"]) == 2
    assert capsys.readouterr().err == block[1]


def test_the_exit_codes_in_the_readme_are_those_of_zoo_help():
    readme = re.search(r"Exit codes: (.*?)\. `--debug`", README, re.S)[1]
    documented = [int(code) for code in re.findall(r"(?:^|; )(\d+) ", readme.replace("\n", " "))]
    in_help = [
        int(line.split()[0])
        for line in EPILOG.split("examples:")[0].splitlines()[1:]
        if line.strip()
    ]
    assert documented == in_help == [0, 1, 2, 3, 4, 5, 6, 7, 8, 130]


def test_every_command_is_in_the_readme_table():
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    listed = {cell.split()[1] for cell in table_column(section("Commands"), "| command |")}
    assert listed == set(subparsers.choices)


def test_every_module_is_in_the_layout_table():
    cells = " ".join(table_column(section("Layout"), "| path | job |"))
    documented = set(re.findall(r"`([^`]+)`", cells))
    modules = {f"zoo/{p.name}" for p in (ROOT / "zoo").glob("*.py") if p.name != "__main__.py"}
    packages = {f"zoo/{p.name}/" for p in (ROOT / "zoo").iterdir() if (p / "__init__.py").exists()}
    assert modules | packages <= documented
    assert documented <= modules | packages | {
        "benchmarks/",
        "plugins/",
        "recipes/",
        "recipes/demo-data/",
    }


def test_run_directories_are_named_as_the_readme_says(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "")
    (tmp_path / "train.csv").write_text(
        "text,label\n" + "".join(f"text number {i},{'ab'[i % 2]}\n" for i in range(10)),
        encoding="utf-8",
    )
    (tmp_path / "test.csv").write_text("text,label\nnumber one,a\nnumber two,b\n")
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        '[run]\nname = "named"\nseed = 3\n[data]\ntrain = "train.csv"\ntest = "test.csv"\n'
        '[[models]]\nmodel = "tfidf"\n',
        encoding="utf-8",
    )
    assert main(["run", str(recipe), "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    run_dir = Path(run["run_dir"])
    assert "`OUTPUT_DIR/RUN_NAME/MODEL-seedN-YYYYmmdd-HHMMSS`" in section("Run directories")
    assert re.fullmatch(r"tfidf-seed3-\d{8}-\d{6}", run_dir.name)
    assert run_dir.parent == tmp_path / "runs" / "named"

    # Every file the README's table lists that `zoo run` writes is there, and nothing else.
    files = set(table_column(section("Run directories"), "| file | contents |"))
    written_by_report = {"`report.html`, `*.png`"}
    assert {f"`{p.name}/`" if p.is_dir() else f"`{p.name}`" for p in run_dir.iterdir()} == (
        files - written_by_report
    )
    # and predictions.csv has the columns the README names, in that order.
    row = next(
        line for line in section("Run directories").splitlines() if "`predictions.csv`" in line
    )
    columns = re.search(r"columns (.*?):", row)[1]
    header = (run_dir / "predictions.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == re.findall(r"`(\w+)`", columns)


@pytest.mark.parametrize("command", ["zoo --help", "zoo run --help"])
def test_help_names_run_directories_as_they_are_made(command, capsys):
    with pytest.raises(SystemExit):
        main(command.split()[1:])
    out = capsys.readouterr().out
    assert "MODEL-DATE" not in out
    assert "MODEL-seedN-DATE" in out or "-seed42-" in out
