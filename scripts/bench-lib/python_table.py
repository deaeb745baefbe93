"""The Python comparison of scripts/bench-python: lockhog's Python package against the Python
lock libraries on the same servers, as a markdown table.

    python3 python_table.py RUNS_DIR

RUNS_DIR holds BACKEND--peer-NAME--ROUND.json files of peers.py (NAME lockhog-py, pals,
python-redis-lock, py-dspinlock, redis-py); several rounds are reduced to their median.
report.py imports `table` for BENCHMARKS.md.
"""

import json
import os
import statistics
import sys

#: Library → its label; lockhog-py first, then the peers of each backend.
LIBRARIES = {
    "lockhog-py": "**lockhog (Python)**",
    "pals": "pals",
    "python-redis-lock": "python-redis-lock",
    "redis-py": "redis-py `Lock`",
    "py-dspinlock": "py-dspinlock",
}
KEYS = ("uncontended_cycles_per_s", "uncontended_p50_us", "handoff_p50_us", "handoff_p99_us")


def collect(runs_dir):
    """{(backend, library): {key: median}} of the runs found."""
    found = {}
    for name in sorted(os.listdir(runs_dir)):
        if not name.endswith(".json") or "--peer-" not in name:
            continue
        backend, impl, _round = name[:-5].split("--")
        library = impl[len("peer-"):]
        if library not in LIBRARIES:
            continue
        try:
            with open(os.path.join(runs_dir, name)) as f:
                found.setdefault((backend, library), []).append(json.load(f))
        except ValueError:
            continue
    return {
        k: {key: statistics.median(r[key] for r in rounds if r.get(key) is not None)
            for key in KEYS if any(r.get(key) is not None for r in rounds)}
        for k, rounds in found.items()
    }


def fmt(v):
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def table(runs_dir):
    """The markdown lines, or None when lockhog-py was not measured."""
    results = collect(runs_dir)
    backends = sorted({b for b, lib in results if lib == "lockhog-py"})
    if not backends:
        return None
    lines = [
        "| backend | library | uncontended cycles/s | ratio to lockhog | cycle p50 µs "
        "| handoff p50 µs | handoff p99 µs |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for b in backends:
        ours = results[(b, "lockhog-py")].get("uncontended_cycles_per_s")
        for lib, label in LIBRARIES.items():
            r = results.get((b, lib))
            if r is None:
                continue
            c = r.get("uncontended_cycles_per_s")
            ratio = f"{c / ours:.2f}" if c and ours else "–"
            lines.append(
                f"| {b} | {label} | {fmt(c)} | {ratio} | {fmt(r.get('uncontended_p50_us'))} "
                f"| {fmt(r.get('handoff_p50_us'))} | {fmt(r.get('handoff_p99_us'))} |"
            )
    return lines


if __name__ == "__main__":
    out = table(sys.argv[1])
    print("\n".join(out) if out else "no lockhog-py results in " + sys.argv[1])
