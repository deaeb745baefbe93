"""Turns the runs of scripts/bench into bench/results.json, BENCHMARKS.md and SVG plots.

    python3 report.py RUNS_DIR RESULTS_JSON BENCHMARKS_MD SVG_DIR

RUNS_DIR holds one JSON object per file, named BACKEND--IMPL--ROUND.json (IMPL: lockhog,
floor, pgbench, peer-NAME), plus _meta_start.json, _meta_end.json and _notes.txt, and the
scaling curves in RUNS_DIR/scale (see scale.py, which writes scale.json beside
RESULTS_JSON). Figures of several rounds are reduced to their median. The plots are plain SVG written here (no plotting
library, no fonts needed to make them).
"""

import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys

runs_dir, results_path, md_path, svg_dir = sys.argv[1:5]

ORDER = ["file", "sqlite", "postgres", "mysql", "redis", "memcached", "etcd"]
PEER_BACKEND = {"pals": "postgres", "sqlx": "postgres", "python-redis-lock": "redis",
                "py-dspinlock": "redis", "redis-py": "redis", "rslock": "redis"}
PEER_LABEL = {"pals": "pals (Python)", "sqlx": "sqlx PgAdvisoryLock (Rust)",
              "python-redis-lock": "python-redis-lock (Python)",
              "py-dspinlock": "py-dspinlock (Python)", "redis-py": "redis-py Lock (Python)",
              "rslock": "rslock (Rust)"}
PEER_PACKAGES = {"postgres": ["pals", "sqlx"],
                 "redis": ["python-redis-lock", "py-dspinlock", "redis-py", "rslock"]}


def load(name):
    try:
        with open(os.path.join(runs_dir, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


runs = {}
for name in sorted(os.listdir(runs_dir)):
    if name.startswith("_") or not name.endswith(".json"):
        continue
    backend, impl, _round = name[:-5].split("--")
    try:
        with open(os.path.join(runs_dir, name)) as f:
            runs.setdefault(backend, {}).setdefault(impl, []).append(json.load(f))
    except ValueError:
        pass
notes = []
if os.path.exists(os.path.join(runs_dir, "_notes.txt")):
    notes = [l.strip() for l in open(os.path.join(runs_dir, "_notes.txt")) if l.strip()]
meta = {**load("_meta_start.json"), **load("_meta_end.json")}


def median_of(rounds):
    out = {}
    for key in rounds[0]:
        vals = [r.get(key) for r in rounds]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if nums and len(nums) == len(vals):
            out[key] = statistics.median(nums)
        else:
            out[key] = vals[0]
    out["rounds"] = len(rounds)
    return out


def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return ""


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mem_gib():
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        return None


results = {
    "generated_by": "scripts/bench",
    "date": meta.get("started") or datetime.datetime.now(datetime.timezone.utc).isoformat(),
    "machine": {
        "nproc": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": mem_gib(),
        "kernel": platform.release(),
        "load_average_start": meta.get("load_start"),
        "load_average_end": meta.get("load_end"),
    },
    "git_commit": sh("git", "rev-parse", "--short", "HEAD"),
    "rustc": sh("rustc", "--version"),
    "settings": {k: meta.get(k) for k in ("rounds", "duration", "peer_duration", "seconds",
                                           "backends_built")},
    "notes": notes,
    "backends": {},
}
for backend in sorted(runs, key=lambda b: ORDER.index(b) if b in ORDER else 99):
    entry = {}
    for impl, rounds in sorted(runs[backend].items()):
        agg = median_of(rounds)
        agg["per_round"] = rounds
        entry[impl] = agg
    results["backends"][backend] = entry


def get(backend, impl, key):
    v = results["backends"].get(backend, {}).get(impl, {}).get(key)
    return v if isinstance(v, (int, float)) else None


def best_floor(backend):
    """The faster of the floors measured for BACKEND: (cycles/s, which)."""
    cands = [(get(backend, i, "uncontended_cycles_per_s"), i) for i in ("floor", "pgbench")]
    cands = [c for c in cands if c[0]]
    return max(cands) if cands else (None, None)


def p50_ratio(backend):
    """Floor's cycle p50 over lockhog's: the cycles ratio without the stalls of a busy machine."""
    ours, floor = get(backend, "lockhog", "uncontended_p50_us"), get(backend, "floor",
                                                                     "uncontended_p50_us")
    return floor / ours if ours and floor else None


# ---------------------------------------------------------------------------------------------
# Targets

targets = []


def target(what, measured, bound, met, detail=""):
    targets.append({"target": what, "measured": measured, "bound": bound, "met": met,
                    "detail": detail})


# Every backend with a server floor; the file backend's two floors follow.
for b in ("sqlite", "postgres", "mysql", "redis", "memcached", "etcd"):
    ours = get(b, "lockhog", "uncontended_cycles_per_s")
    floor, which = best_floor(b)
    if ours and floor:
        p50r = p50_ratio(b)
        target(f"{b}: uncontended cycles ≥ 0.9 × floor", round(ours / floor, 2), 0.9,
               ours / floor >= 0.9, f"{ours:.0f} vs {floor:.0f} cycles/s ({which})"
               + (f"; by the cycle p50, which load spikes move less: {p50r:.2f}" if p50r else ""))
    else:
        target(f"{b}: uncontended cycles ≥ 0.9 × floor", None, 0.9, None, "not measured")
# The file backend's two floors: the named-lock floor (open by name + flock + unlock + close,
# what a lock by name must do at least once), and flock on an open descriptor, which a process
# taking the same name again (as the uncontended workload does) can approach by keeping it.
ours = get("file", "lockhog", "uncontended_cycles_per_s")
for key, bound, what in (("named_floor_cycles_per_s", 0.9, "named-lock floor (open + flock + close)"),
                         ("uncontended_cycles_per_s", 0.5, "flock on an open fd (same name again)")):
    floor = get("file", "floor", key)
    name = f"file: uncontended cycles ≥ {bound} × {what}"
    if ours and floor:
        target(name, round(ours / floor, 2), bound, ours / floor >= bound,
               f"{ours:.0f} vs {floor:.0f} cycles/s")
    else:
        target(name, None, bound, None, "not measured")
# Memcached's waiters in the same process are woken by the release, not a poll tick.
for b, bound in (("postgres", 300), ("redis", 300), ("memcached", 300), ("file", 100)):
    p50 = get(b, "lockhog", "handoff_p50_us")
    op = "≤" if bound == 300 else "<"
    met = None if p50 is None else (p50 <= bound if bound == 300 else p50 < bound)
    target(f"{b}: handoff p50 {op} {bound / 1000:g} ms", p50, bound, met,
           "" if p50 is not None else "not measured")
for b, peers in PEER_PACKAGES.items():
    for p in peers:
        peer = results["backends"].get(b, {}).get(f"peer-{p}")
        ours_c = get(b, "lockhog", "uncontended_cycles_per_s")
        ours_h = get(b, "lockhog", "handoff_p50_us")
        if not peer or ours_c is None:
            target(f"{b}: ahead of {PEER_LABEL[p]}", None, None, None, "peer not measured")
            continue
        pc, ph = peer.get("uncontended_cycles_per_s"), peer.get("handoff_p50_us")
        met = bool(pc and ph and ours_c > pc and ours_h is not None and ours_h < ph)
        target(f"{b}: ahead of {PEER_LABEL[p]}", None, None, met,
               f"cycles/s {ours_c:.0f} vs {pc:.0f}; handoff p50 {ours_h:.0f} vs {ph:.0f} µs")
results["targets"] = targets

os.makedirs(os.path.dirname(results_path) or ".", exist_ok=True)
with open(results_path, "w") as f:
    json.dump(results, f, indent=1, sort_keys=False)
    f.write("\n")

# ---------------------------------------------------------------------------------------------
# Plots


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def hbar_svg(path, title, unit, rows, log=False):
    """rows: [(label, value, colour)]; a horizontal bar per row, values written at the bars."""
    rows = [r for r in rows if r[1]]
    if not rows:
        return False
    label_w, bar_w, row_h, top = 330, 420, 20, 46
    width, height = label_w + bar_w + 110, top + row_h * len(rows) + 40
    vmax = max(v for _, v, _ in rows)
    vmin = min(v for _, v, _ in rows)
    if log:
        lo = 10 ** math.floor(math.log10(vmin))
        hi = 10 ** math.ceil(math.log10(vmax))
        if hi <= lo:
            hi = lo * 10
        scale = lambda v: bar_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        ticks = [10 ** e for e in range(int(math.log10(lo)), int(math.log10(hi)) + 1)]
    else:
        hi = vmax * 1.05
        scale = lambda v: bar_w * v / hi
        step = 10 ** math.floor(math.log10(hi))
        if hi / step < 3:
            step /= 2
        ticks = [i * step for i in range(int(hi / step) + 1)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" '
           f'font-weight="bold">{esc(title)}</text>']
    for t in ticks:
        x = label_w + scale(t) if t > 0 or not log else label_w
        out.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" '
                   f'y2="{top + row_h * len(rows)}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + row_h * len(rows) + 16}" '
                   f'text-anchor="middle" fill="#555">{fmt(t)}</text>')
    out.append(f'<text x="{label_w + bar_w / 2}" y="{height - 6}" text-anchor="middle" '
               f'fill="#333">{esc(unit)}{" (log scale)" if log else ""}</text>')
    for i, (label, v, colour) in enumerate(rows):
        y = top + i * row_h
        w = max(1.0, scale(v))
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{esc(label)}</text>')
        out.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                   f'fill="{colour}"/>')
        out.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" fill="#222">{fmt(v)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    return True


def fmt(v):
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}".replace(",", " ")
    if float(v).is_integer():
        return str(int(v))
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


OURS, FLOOR, PEER, P99 = "#2a6fdb", "#999999", "#e08a1e", "#9cbcf0"


def impl_label(backend, impl):
    if impl == "lockhog":
        return f"{backend}: lockhog"
    if impl == "floor":
        return f"{backend}: floor (raw)"
    if impl == "pgbench":
        return f"{backend}: floor (pgbench)"
    return f"{backend}: {PEER_LABEL.get(impl[5:], impl[5:])}"


def colour(impl):
    return OURS if impl == "lockhog" else FLOOR if impl in ("floor", "pgbench") else PEER


def impls(backend):
    order = ["lockhog", "floor", "pgbench"] + [f"peer-{p}" for p in PEER_BACKEND]
    return [i for i in order if i in results["backends"].get(backend, {})]


plots = []
rows = []
for b in results["backends"]:
    for i in impls(b):
        p50, p99 = get(b, i, "handoff_p50_us"), get(b, i, "handoff_p99_us")
        if p50:
            rows.append((impl_label(b, i) + " p50", p50, colour(i)))
        if p99 and i == "lockhog":
            rows.append((impl_label(b, i) + " p99", p99, P99))
if hbar_svg(os.path.join(svg_dir, "handoff.svg"),
            "Handoff: holder releases → blocked waiter holds", "microseconds", rows, log=True):
    plots.append(("Handoff latency", "bench/handoff.svg"))
rows = [(b, get(b, "lockhog", "contended_cycles_per_s"), OURS) for b in results["backends"]]
if hbar_svg(os.path.join(svg_dir, "contended.svg"),
            "Contended: lockhog cycles/s, N clients on M locks", "acquire+release cycles/s",
            rows):
    plots.append(("Contended throughput", "bench/contended.svg"))
rows = [(impl_label(b, i), get(b, i, "uncontended_cycles_per_s"), colour(i))
        for b in results["backends"] for i in impls(b)]
if hbar_svg(os.path.join(svg_dir, "uncontended.svg"),
            "Uncontended acquire+release, one client", "cycles/s", rows, log=True):
    plots.append(("Uncontended cycles", "bench/uncontended.svg"))

# ---------------------------------------------------------------------------------------------
# BENCHMARKS.md

m = results["machine"]
L = []
L.append("# Benchmarks\n")
L.append("Generated by `scripts/bench` — do not edit by hand; run it again. Every figure below "
         "comes from one run on one machine: lockhog, each backend's floor and the peers, "
         "interleaved, so a busy moment of the machine hits them alike.\n")
L.append(f"- **Date**: {results['date']} (commit `{results['git_commit']}`, {results['rustc']})")
L.append(f"- **Machine**: {m['nproc']} cores, {m['cpu']}, {m['memory_gib']} GiB memory, "
         f"Linux {m['kernel']}")
L.append(f"- **Load average** (1/5/15 min) at the start: {m['load_average_start']}; at the end: "
         f"{m['load_average_end']}. The machine is shared with other builds: treat "
         "differences under ~20 % as noise, and p99s as the machine's as much as ours.")
s = results["settings"]
L.append(f"- **Settings**: `lockhog bench --duration {s['duration']}` "
         f"({s['rounds']} rounds per backend, medians shown), peers {s['peer_duration']} s each; "
         f"the run took {s['seconds']} s. Servers on 127.0.0.1 as `scripts/test` starts them "
         "(fsync off); Postgres over plaintext (`sslmode=disable`) for lockhog, the floors and "
         "the peers alike.\n")

L.append("## What is measured\n")
L.append("- **uncontended**: acquire (one attempt) + release of one lock, back to back from one "
         "task on one connection: cycles per second, and p50/p99 of a cycle.")
L.append("- **handoff**: a holder releases while a waiter — another thread with its own locker and "
         "connections — is blocked in `wait()`; from just before the release to the waiter "
         "holding, both read from one monotonic clock in one process.")
L.append("- **contended**: N clients (8 by default), each its own locker and connections, on M "
         "locks (2): cycles per second in all; **fairness**: median and longest wait.")
L.append("- **floor**: the backend's own lock commands on a bare client, same machine, same run "
         "(`lockhog bench --floor`; for Postgres also `pgbench -M prepared -c 1` with "
         "`select pg_advisory_lock(k); select pg_advisory_unlock(k);`). The ratio is lockhog "
         "over the faster floor. What each floor runs is listed under its table. The floors' "
         "handoffs (file, Postgres, MySQL: a second descriptor or session blocked in the "
         "backend's own wait) run their waiter on the holder's thread (Postgres, MySQL) or a "
         "plain thread (file), so they skip the wake-up of a second runtime that lockhog's "
         "waiter pays: on a loaded machine that favours the floor.")
L.append("- **peers**: the same two workloads on libraries people would otherwise pick, installed "
         "into `target/bench-peers` (a venv; a scratch cargo project), used with their defaults.\n")

L.append("## Targets\n")
L.append("| target | measured | met |")
L.append("|---|---|---|")
for t in targets:
    meas = t["detail"] or ""
    if t["measured"] is not None:
        meas = f"{t['measured']:g}" + (" µs" if "handoff" in t["target"] else "") + \
               (f" ({t['detail']})" if t["detail"] else "")
    met = "—" if t["met"] is None else ("yes" if t["met"] else "**no**")
    L.append(f"| {t['target']} | {meas} | {met} |")
L.append("")

L.append("## Summary\n")
L.append("| backend | lockhog cycles/s | floor cycles/s | ratio | ratio at cycle p50 | "
         "handoff p50 / p99 µs | floor handoff p50 µs | contended cycles/s | "
         "median / longest wait ms |")
L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for b in results["backends"]:
    ours = get(b, "lockhog", "uncontended_cycles_per_s")
    floor, which = best_floor(b)
    ratio = f"{ours / floor:.2f}" if ours and floor else "–"
    L.append(f"| {b} | {fmt(ours)} | {fmt(floor)}{' (pgbench)' if which == 'pgbench' else ''} | "
             f"{ratio} | {fmt(p50_ratio(b))} | {fmt(get(b, 'lockhog', 'handoff_p50_us'))} / "
             f"{fmt(get(b, 'lockhog', 'handoff_p99_us'))} | {fmt(get(b, 'floor', 'handoff_p50_us'))} | "
             f"{fmt(get(b, 'lockhog', 'contended_cycles_per_s'))} | "
             f"{fmt(get(b, 'lockhog', 'median_wait_ms'))} / {fmt(get(b, 'lockhog', 'max_wait_ms'))} |")
L.append("")

for title, path in plots:
    L.append(f"![{title}]({path})\n")

L.append("## Per backend\n")
for b in results["backends"]:
    L.append(f"### {b}\n")
    L.append("| | cycles/s | ratio to lockhog | cycle p50 µs | cycle p99 µs | handoff p50 µs | "
             "handoff p99 µs | handoff rounds |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    ours = get(b, "lockhog", "uncontended_cycles_per_s")
    for i in impls(b):
        c = get(b, i, "uncontended_cycles_per_s")
        r = f"{c / ours:.2f}" if c and ours else "–"
        name = impl_label(b, i).split(": ", 1)[1]
        if i == "lockhog":
            name = "**lockhog**"
        p50 = get(b, i, "uncontended_p50_us")
        if p50 is None and get(b, i, "uncontended_mean_us"):
            p50_s = f"{fmt(get(b, i, 'uncontended_mean_us'))} (mean)"
        else:
            p50_s = fmt(p50)
        L.append(f"| {name} | {fmt(c)} | {r} | {p50_s} | {fmt(get(b, i, 'uncontended_p99_us'))} | "
                 f"{fmt(get(b, i, 'handoff_p50_us'))} | {fmt(get(b, i, 'handoff_p99_us'))} | "
                 f"{fmt(get(b, i, 'handoff_rounds'))} |")
        named = get(b, i, "named_floor_cycles_per_s")
        if named:
            r = f"{named / ours:.2f}" if ours else "–"
            L.append(f"| floor (named lock) | {fmt(named)} | {r} | "
                     f"{fmt(get(b, i, 'named_floor_p50_us'))} | – | – | – | – |")
    L.append("")
    c = results["backends"][b].get("lockhog")
    if c:
        L.append(f"Contended ({c.get('clients')} clients on {c.get('locks')} locks): "
                 f"{fmt(c.get('contended_cycles_per_s'))} cycles/s; waits median "
                 f"{fmt(c.get('median_wait_ms'))} ms, p99 {fmt(c.get('p99_wait_ms'))} ms, longest "
                 f"{fmt(c.get('max_wait_ms'))} ms; cycles per client "
                 f"{fmt(c.get('client_cycles_min'))}–{fmt(c.get('client_cycles_max'))}.\n")
    for i in ("floor", "pgbench"):
        cmd = results["backends"][b].get(i, {}).get("commands")
        if cmd:
            L.append(f"- {'floor' if i == 'floor' else 'pgbench'}: {cmd}")
        named = results["backends"][b].get(i, {}).get("named_floor_commands")
        if named:
            L.append(f"- floor (named lock): {named}")
    L.append("")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_table import table as python_table  # noqa: E402
from scale import scale_section  # noqa: E402

L.extend(scale_section(os.path.join(runs_dir, "scale"),
                       os.path.join(os.path.dirname(results_path) or ".", "scale.json"), svg_dir,
                       results["git_commit"], results["date"]))

L.append("## Python\n")
L.append("lockhog's Python package (the wheel, a release build) against the Python lock "
         "libraries on the same servers in the same run (`scripts/bench-python`, the workloads "
         "of the peers above: one client's uncontended cycles, and handoff to a waiter blocked "
         "on its own connection).\n")
py_rows = python_table(runs_dir)
L.extend(py_rows if py_rows else ["Not measured in this run: `scripts/bench-python`."])
L.append("")

missing = [t for t in targets if t["detail"] == "peer not measured"]
if notes or missing:
    L.append("## Not measured, and why\n")
    for n in notes:
        L.append(f"- {n}")
    for t in missing:
        L.append(f"- {t['target'].split('ahead of ', 1)[1]}: no result in this run")
    L.append("")

soak = os.path.join(os.path.dirname(md_path) if md_path != "/dev/stdout" else ".", "bench",
                    "soak.txt")
if os.path.exists(soak):
    L.append("## Soak\n")
    L.append("One process holds 10 000 locks with their renewals for 30 minutes on each lease "
             "backend while another process takes and releases other locks, one `lockhog run` "
             "at a time (`scripts/soak`, run by hand: it is not part of this run; its output, "
             "`bench/soak.txt`, as written by its last run):\n")
    L.append("```\n" + open(soak).read().strip() + "\n```\n")

analysis = os.path.join(os.path.dirname(md_path) if md_path != "/dev/stdout" else ".", "bench",
                        "analysis.md")
if os.path.exists(analysis):
    L.append(open(analysis).read().strip() + "\n")

L.append("## Reproduce\n")
L.append("```sh\nscripts/bench                                  # everything, ~10 minutes\n"
         "BENCH_BACKENDS=\"file redis\" BENCH_PEERS=0 scripts/bench\n"
         "scripts/bench-python                           # the Python table alone\n"
         "lockhog bench -b postgres://… --json           # one backend, by hand\n"
         "lockhog bench -b postgres://… --floor          # its floor\n"
         "lockhog bench -b redis://… --scale --duration 1  # its scaling curves\n```")
with open(md_path, "w") as f:
    f.write("\n".join(L) + "\n")
