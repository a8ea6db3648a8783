"""What plugin authors use is `zoo` itself: the built-in custom engine (TF-IDF) needs nothing
else, `import zoo` stays cheap, and torch is imported under zoo/engine/ only."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import zoo

ROOT = Path(__file__).resolve().parent.parent
HEAVY = {"torch", "transformers", "peft", "datasets", "bitsandbytes", "accelerate", "evaluate"}


def imported(path: Path) -> set[str]:
    """Every module that the file imports, at the top or inside a function."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_tfidf_plugin_uses_nothing_of_zoo_but_its_public_face():
    found = imported(ROOT / "plugins" / "tfidf.py")
    own = {name for name in found if name == "zoo" or name.startswith("zoo.")}
    assert own == {"zoo"}
    third_party = {name.split(".")[0] for name in found} - set(sys.stdlib_module_names) - {"zoo"}
    assert third_party == {"numpy", "scipy", "sklearn"}  # scipy: scikit-learn's own dependency


def test_every_public_name_is_there():
    for name in zoo.__all__:
        assert getattr(zoo, name) is not None, name
    assert zoo.TrainJob.__module__ == "zoo.engine.jobs"


def test_import_zoo_loads_no_numpy_scikit_learn_or_torch():
    code = (
        "import sys, zoo; "
        "print(sorted(m for m in ('numpy', 'sklearn', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"


def test_only_zoo_engine_imports_torch_and_transformers():
    # The memory estimator's measuring harnesses run real training steps for the accuracy
    # tests and benchmarks (measure.py on the CPU, measure_cuda.py on a GPU): the exceptions.
    outside = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported(path) if name.split(".")[0] in HEAVY
        )
        for path in (ROOT / "zoo").rglob("*.py")
        if "engine" not in path.relative_to(ROOT / "zoo").parts
    }
    importing = {path for path, names in outside.items() if names}
    assert importing == {"zoo/memory/measure.py", "zoo/memory/measure_cuda.py"}
