"""What importing ``playlist_tools.frames`` costs a fresh process that has already imported pandas and SQLAlchemy.

``python bench/import_time.py [--runs 5]`` prints one JSON line of medians
(seconds), each run in a fresh interpreter: ``package`` is ``import
playlist_tools`` (its ``db`` room and models), ``frames`` is ``import
playlist_tools.frames`` on top of that, ``total`` is both, and ``adbc`` is
``import adbc_driver_postgresql.dbapi`` alone (a reference point: a peer's
import). ``bench/run.py`` reports them apart from the reads and writes; the
goal of issue 21 is ``total`` under 0.1 s. ``python -X importtime -c "import
pandas, sqlalchemy; import playlist_tools.frames"`` shows where the time goes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_PROBE = """
import json, time
import pandas, sqlalchemy
t0 = time.perf_counter()
import playlist_tools
t1 = time.perf_counter()
import playlist_tools.frames
t2 = time.perf_counter()
import adbc_driver_postgresql.dbapi
t3 = time.perf_counter()
print(json.dumps({"package": t1 - t0, "frames": t2 - t1, "total": t2 - t0, "adbc": t3 - t2}))
"""


def measure(runs: int = 5) -> dict[str, float]:
    """Medians over ``runs`` fresh interpreters of each import's seconds."""
    found = [json.loads(subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                                       check=True).stdout.strip().splitlines()[-1]) for _ in range(runs)]
    return {key: statistics.median(f[key] for f in found) for key in found[0]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    print(json.dumps(measure(parser.parse_args().runs)))
