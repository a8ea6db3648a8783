"""Benchmark 3: CLI start-up. `zoo --help` and `zoo models` against importing transformers.

python benchmarks/startup.py [REPEATS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

COMMANDS = {
    "zoo --help": [sys.executable, "-m", "zoo", "--help"],
    "zoo models": [sys.executable, "-m", "zoo", "models"],
    'python -c "import transformers"': [sys.executable, "-c", "import transformers"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}


def main(repeats: int) -> None:
    print(f"| command | median of {repeats} (s) | min (s) |")
    print("|---|---:|---:|")
    for name, command in COMMANDS.items():
        subprocess.run(command, capture_output=True, check=True)  # warm the file cache
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True)
            times.append(time.perf_counter() - started)
        print(f"| `{name}` | {statistics.median(times):.3f} | {min(times):.3f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
