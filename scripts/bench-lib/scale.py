"""The scaling curves of scripts/bench: `lockhog bench --scale --json` per backend, turned into
bench/scale.json, one log-log SVG chart per backend (bench/scale-BACKEND.svg) and the
"Scaling" section of BENCHMARKS.md.

    python3 scale.py SCALE_RUNS_DIR SCALE_JSON SVG_DIR [MARKDOWN_OUT]

SCALE_RUNS_DIR holds BACKEND.json, one `--scale --json` object each (a backend whose run
failed may leave BACKEND.err instead). report.py imports `scale_section` to do the same from
within its report. Plain SVG written here, like report.py's bars: no plotting library.
"""

import json
import math
import os
import sys

ORDER = ["file", "sqlite", "postgres", "mysql", "redis", "memcached", "etcd"]
LINE_COLOURS = ["#2a6fdb", "#e08a1e", "#3a9d5d", "#b0413e", "#7b52ab"]


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fmt(v):
    """A rate or an axis tick: 3 significant digits, k and M for thousands and millions."""
    if v is None:
        return "–"
    if v >= 1000:
        return f"{v / 1000:.3g}k" if v < 1e6 else f"{v / 1e6:.3g}M"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.3g}"


def num(v):
    """A latency in a table: whole above 100, with thin-space thousands, else 3 digits."""
    if v is None:
        return "–"
    if v >= 100:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.3g}"


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def log_ticks(lo, hi):
    """Ticks for a log axis over [lo, hi]: powers of ten, with 2 and 5 between when the span is
    short."""
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if b - a <= 2 else (1,)
    ticks = [m * 10 ** e for e in range(a, b + 1) for m in steps]
    return [t for t in ticks if lo / 1.001 <= t <= hi * 1.001] or [lo, hi]


def panel_svg(x0, y0, w, h, panel):
    """One log-log panel at (x0, y0) of plot size w × h; returns SVG elements."""
    pts = [p for s in panel["series"] for p in s[2] if p[1]]
    out = [f'<text x="{x0 + w / 2}" y="{y0 - 12}" text-anchor="middle" font-size="13" '
           f'font-weight="bold">{esc(panel["title"])}</text>']
    if not pts:
        out.append(f'<text x="{x0 + w / 2}" y="{y0 + h / 2}" text-anchor="middle" '
                   f'fill="#777">not measured</text>')
        return out
    # Every x asked, measured or not, so that a missing point shows as a gap on its tick.
    xs = sorted({p[0] for s in panel["series"] for p in s[2]})
    ylo, yhi = min(p[1] for p in pts), max(p[1] for p in pts)
    ylo, yhi = 10 ** math.floor(math.log10(ylo)), 10 ** math.ceil(math.log10(yhi))
    xlo, xhi = xs[0], xs[-1] if xs[-1] > xs[0] else xs[0] * 10
    sx = lambda v: x0 + w * (math.log10(v) - math.log10(xlo)) / (math.log10(xhi) - math.log10(xlo))
    sy = lambda v: y0 + h - h * (math.log10(v) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo))
    out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#bbb"/>')
    for t in log_ticks(ylo, yhi):
        out.append(f'<line x1="{x0}" y1="{sy(t):.1f}" x2="{x0 + w}" y2="{sy(t):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{x0 - 5}" y="{sy(t) + 4:.1f}" text-anchor="end" fill="#555">'
                   f'{fmt(t)}</text>')
    for t in xs:
        out.append(f'<line x1="{sx(t):.1f}" y1="{y0}" x2="{sx(t):.1f}" y2="{y0 + h}" stroke="#eee"/>')
        out.append(f'<text x="{sx(t):.1f}" y="{y0 + h + 15}" text-anchor="middle" fill="#555">'
                   f'{fmt(t)}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 32}" text-anchor="middle" fill="#333">'
               f'{esc(panel["xlabel"])} (log)</text>')
    out.append(f'<text transform="translate({x0 - 48},{y0 + h / 2}) rotate(-90)" '
               f'text-anchor="middle" fill="#333">{esc(panel["ylabel"])} (log)</text>')
    for i, (label, colour, points, dashed) in enumerate(panel["series"]):
        points = [p for p in points if p[1]]
        if not points:
            continue
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                   f'stroke-width="2"{dash}/>')
        for x, y in points:
            out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
        ly = y0 + 8 + 16 * i
        out.append(f'<line x1="{x0 + w + 14}" y1="{ly}" x2="{x0 + w + 34}" y2="{ly}" '
                   f'stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text x="{x0 + w + 38}" y="{ly + 4}">{esc(label)}</text>')
    if any(p[1] is None for s in panel["series"] for p in s[2]):
        ly = y0 + 8 + 16 * len(panel["series"])
        out.append(f'<text x="{x0 + w + 14}" y="{ly + 4}" fill="#777">no point: not '
                   f'measured</text>')
    return out


def chart(path, title, panels):
    """Panels side by side under one title, written to PATH."""
    pw, ph, left, gap, top = 300, 220, 70, 190, 60
    width = left + len(panels) * (pw + gap)
    height = top + ph + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="15" '
           f'font-weight="bold">{esc(title)}</text>']
    for i, panel in enumerate(panels):
        out += panel_svg(left + i * (pw + gap), top, pw, ph, panel)
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def load_runs(runs_dir):
    """{backend: report or {"error": text}} in ORDER."""
    runs = {}
    if not os.path.isdir(runs_dir):
        return runs
    for name in os.listdir(runs_dir):
        backend, ext = os.path.splitext(name)
        path = os.path.join(runs_dir, name)
        if ext == ".json":
            try:
                with open(path) as f:
                    runs[backend] = json.load(f)
            except ValueError:
                runs.setdefault(backend, {"error": "its output was not JSON"})
        elif ext == ".err" and backend not in runs:
            text = open(path).read().strip()
            if text:
                runs[backend] = {"error": text.splitlines()[-1]}
    return dict(sorted(runs.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else 99))


def backend_chart(svg_dir, backend, run):
    points = run.get("contended", [])
    lock_counts = sorted({p["locks"] for p in points})
    throughput = [(plural(m, "lock"), LINE_COLOURS[i % len(LINE_COLOURS)],
                   sorted((p["clients"], p["cycles_per_s"]) for p in points if p["locks"] == m),
                   False) for i, m in enumerate(lock_counts)]
    held = run.get("held", [])
    latency = [("acquire p50", LINE_COLOURS[0], [(p["held"], p["p50_us"]) for p in held], False),
               ("acquire p99", LINE_COLOURS[0], [(p["held"], p["p99_us"]) for p in held], True)]
    chart(os.path.join(svg_dir, f"scale-{backend}.svg"), f"{backend}: scaling",
          [{"title": "contended throughput", "xlabel": "clients", "ylabel": "cycles/s",
            "series": throughput},
           {"title": "one more acquire+release while holding", "xlabel": "locks held",
            "ylabel": "µs", "series": latency}])
    return f"bench/scale-{backend}.svg"


def secs(runs):
    """The time per point, as a sentence, when the runs agree on one."""
    each = {r.get("duration_s") for r in runs.values() if "duration_s" in r}
    return f"Each point ran {each.pop():g} s. " if len(each) == 1 else ""


def scale_section(runs_dir, json_path, svg_dir, commit="?", date="?"):
    """Writes JSON_PATH (measured at COMMIT on DATE) and the charts; returns the Markdown lines
    of the "Scaling" section. When this run measured no curves (BENCH_SCALE=0), the section
    shows those of JSON_PATH's earlier run, saying when and at which commit; empty when there
    are none."""
    runs = load_runs(runs_dir)
    earlier = ""
    if runs:
        with open(json_path, "w") as f:
            json.dump({"generated_by": "scripts/bench (lockhog bench --scale)", "commit": commit,
                       "date": date, "backends": runs}, f, indent=1)
            f.write("\n")
    elif os.path.exists(json_path):
        with open(json_path) as f:
            kept = json.load(f)
        runs = kept.get("backends") or {}
        earlier = (f"**Not measured in this run** (`BENCH_SCALE=0`): these are the curves measured "
                   f"earlier by `lockhog bench --scale`, at commit `{kept.get('commit', '?')}` on "
                   f"{kept.get('date', '?')}. ")
    if not runs:
        return []
    L = ["## Scaling\n", earlier +
         "`lockhog bench --scale` on each backend (`BENCH_SCALE=0` skips it): contended "
         "cycles/s and p99 wait for N clients, each its own locker and connections, on M locks; "
         "and the p50/p99 of one more acquire+release while the same process holds K locks "
         "(acquired first, 64 at a time, held through the measurement). A point the backend or "
         "this machine could not take is listed with its reason. "
         f"{secs(runs)}Raw figures: `bench/scale.json`.\n"]
    for backend, run in runs.items():
        L.append(f"### {backend}\n")
        if "contended" not in run:
            L.append(f"Not measured: {run.get('error', 'no result')}\n")
            continue
        points = run["contended"]
        clients = sorted({p["clients"] for p in points})
        L.append("| locks \\ clients | " + " | ".join(str(c) for c in clients) + " |")
        L.append("|---:|" + "---:|" * len(clients))
        for m in sorted({p["locks"] for p in points}):
            cells = []
            for c in clients:
                p = next((p for p in points if p["locks"] == m and p["clients"] == c), None)
                if p is None or p.get("error"):
                    cells.append("–")
                else:
                    cells.append(f"{fmt(p['cycles_per_s'])}/s, p99 {num(p['p99_wait_ms'])} ms")
            L.append(f"| {m} | " + " | ".join(cells) + " |")
        L.append("")
        held = run.get("held", [])
        if held:
            L.append("| locks held | acquire p50 µs | acquire p99 µs | acquired in s | lost |")
            L.append("|---:|---:|---:|---:|---:|")
            for p in held:
                if p.get("error"):
                    L.append(f"| {p['held']} | – | – | – | – |")
                else:
                    L.append(f"| {p['held']} | {num(p['p50_us'])} | {num(p['p99_us'])} | "
                             f"{num(p['fill_s'])} | {p['lost']} |")
            L.append("")
        failed = [(f"{plural(p['clients'], 'client')} on {plural(p['locks'], 'lock')}", p["error"])
                  for p in points if p.get("error")]
        failed += [(f"{p['held']} held", p["error"]) for p in held if p.get("error")]
        for what, why in failed:
            L.append(f"- {what}: not measured: {why}")
        if run.get("nofile_soft"):
            L.append(f"- descriptors: RLIMIT_NOFILE {run['nofile_soft']} (hard "
                     f"{run['nofile_hard']}); the file backend keeps one per held lock")
        if failed or run.get("nofile_soft"):
            L.append("")
        L.append(f"![{backend} scaling]({backend_chart(svg_dir, backend, run)})\n")
    return L


if __name__ == "__main__":
    runs_dir, json_path, svg_dir = sys.argv[1:4]
    lines = scale_section(runs_dir, json_path, svg_dir, *sys.argv[5:7])
    if len(sys.argv) > 4:
        with open(sys.argv[4], "w") as f:
            f.write("\n".join(lines) + "\n")
