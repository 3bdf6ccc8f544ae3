"""``bench-results``: plots of every stored benchmark run, drawn while the page is built.

Each ``benchmarks/results/*.json`` (written by ``python -m mitk bench --json FILE``) gives the
figures its cases make: in-memory operations, read and write throughput per format and encoding
beside the same-run reference and the peers, two-thread scaling, peak memory of a read, and region
reads (``mitk.open``) with their peak memory.  Under each figure: the machine, the versions and
the command of that run.  Nothing is drawn by hand; a new JSON file adds its figures.
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

DOCS = Path(__file__).resolve().parent.parent
RESULTS = DOCS.parent / "benchmarks" / "results"
GENERATED = DOCS / "_generated"

# The command that produced a stored file that does not record its own command line.
COMMANDS = {
    "readme.json": "python -m mitk bench --peers --upstream-python PY312/bin/python "
                   "--json benchmarks/results/readme.json",
    "regions.json": "python -m mitk bench --only regions. --peers "
                    "--json benchmarks/results/regions.json",
}

# One colour per library in every figure, so a peer is recognised across plots.
COLOURS = {
    "mitk": "#1f5fa8",
    "reference (same run)": "#9a9a9a",
    "SimpleITK": "#e07b28",
    "ITK": "#c9a227",
    "nibabel": "#3b9a57",
    "pynrrd": "#8c5bb0",
    "mitk-python (upstream)": "#c24a4a",
}


def load_runs() -> list[tuple[str, dict]]:
    """Every stored run, by file name."""
    return [(path.name, json.loads(path.read_text(encoding="utf-8")))
            for path in sorted(RESULTS.glob("*.json"))]


def run_summary(name: str, run: dict, rows: list[dict]) -> tuple[str, str]:
    """(machine and versions, command) lines for the caption of a figure made of ``rows``."""
    m = run.get("machine", {})
    memory = f", {m['memory_gib']} GiB" if "memory_gib" in m else ""
    machine = (f"Machine: {m.get('cpu', '?')}, {m.get('cpus', '?')} CPUs{memory}, "
               f"{m.get('platform', '?')}. Versions: {m.get('implementation', 'Python')} "
               f"{m.get('python', '?')}, NumPy {m.get('numpy', '?')}, mitk "
               f"{m.get('mitk', run.get('mitk_version', '?'))}, deflate backend "
               f"{m.get('deflate', 'zlib')}")
    peers = sorted({f"{peer} {info['version']}" for row in rows
                    for peer, info in row.get("peers", {}).items()})
    if peers:
        machine += "; peers: " + ", ".join(peers)
    if run.get("quick"):
        machine += " (a --quick run)"
    command = run.get("command") or COMMANDS.get(name, "")
    return machine + ".", command


def _label(row: dict) -> str:
    text = row["description"]
    # I/O figures are split by direction already; the title says "read" or "write".
    for prefix in ("read ", "write ") if row["case"].startswith(("io.read", "io.write")) else ():
        if text.startswith(prefix):
            text = text[len(prefix):]
    return f"{text}\nreference: {row['reference']}"


def _bars(ax, rows: list[dict], series: list[tuple[str, list]], unit: str, log: bool) -> None:
    """Horizontal bars, one group per row holding only the libraries measured in that row."""
    bar, gap = 0.8, 0.9
    y, ticks, seen = 0.0, [], set()
    for r, row in enumerate(rows):
        present = [(name, values[r]) for name, values in series if values[r] is not None]
        first = y
        for name, value in present:
            ax.barh(y, value, height=bar, color=COLOURS.get(name, "#555555"),
                    label=None if name in seen else name)
            ax.text(value, y, f" {value:.3g}", va="center", fontsize=6)
            seen.add(name)
            y += 1
        ticks.append((first + y - 1) / 2)
        y += gap
    ax.set_yticks(ticks, [_label(r) for r in rows], fontsize=7)
    ax.set_ylim(y - gap, -1)
    ax.set_xlabel(unit)
    if log:
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        # 1-2-5 ticks over a few decades; over more (a peer thousands of times slower) they
        # would overlap, so only the powers of ten
        shown = [v for _, values in series for v in values if v]
        wide = bool(shown) and max(shown) / min(shown) > 1e4
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _library_series(rows: list[dict]) -> list[tuple[str, list]]:
    peers: list[str] = []
    for row in rows:
        peers.extend(p for p in row.get("peers", {}) if p not in peers)
    series = [("mitk", [r["value"] for r in rows]),
              ("reference (same run)", [r.get("reference_value") for r in rows])]
    for peer in peers:
        series.append((peer, [r["peers"][peer]["value"] if peer in r.get("peers", {}) else None
                              for r in rows]))
    return series


_TIME_UNITS = {"ns", "us", "ms", "s"}


def relative_speed(value: float, reference: float, unit: str) -> float:
    """How many times faster than the reference (above 1: faster), for times and for rates."""
    return reference / value if unit in _TIME_UNITS else value / reference


def figure_specs(run: dict) -> list[dict]:
    """What to plot from one run: title, rows and how to draw them."""
    memory_ops = [r for r in run["results"]
                  if r["group"] not in ("io", "regions") and r["case"] != "locks.reader_scaling"
                  and r.get("reference_value")]
    specs = []
    if memory_ops:
        specs.append({"key": "memory-ops", "rows": memory_ops, "draw": "relative",
                      "title": "In-memory operations: speed relative to the same-run reference "
                               "(1 = as fast as the reference; log scale)"})
    io = [r for r in run["results"] if r["group"] == "io"]
    throughput = [r for r in io if r["unit"] == "GB/s" and "two_thread" not in r["case"]]
    for direction in ("read", "write"):
        for kind, test in (("raw", lambda c: "_raw" in c),
                           ("compressed", lambda c: "_raw" not in c)):
            rows = [r for r in throughput
                    if r["case"].startswith(f"io.{direction}_") and test(r["case"])]
            if rows:
                specs.append({"key": f"{direction}-{kind}", "rows": rows, "draw": "bars",
                              "title": f"{direction.capitalize()} throughput, {kind} data: "
                                       f"mitk beside the same-run reference and the peers "
                                       f"(GB/s, log scale)"})
    scaling = [r for r in run["results"]
               if "two_thread" in r["case"] or r["case"] == "locks.reader_scaling"]
    if scaling:
        specs.append({"key": "scaling", "rows": scaling, "draw": "scaling",
                      "title": "Two threads over one: mitk's scaling, the peers' own scaling, "
                               "and two threads copying memory (the ceiling of this machine)"})
    regions = [r for r in run["results"] if r["group"] == "regions"]
    timed = [r for r in regions if r["unit"] in _TIME_UNITS and r.get("reference_value")]
    if timed:
        specs.append({"key": "regions", "rows": timed, "draw": "relative",
                      "title": "Region reads of mitk.open: speed relative to the same-run "
                               "reference (1 = as fast as the reference; log scale)"})
    peaks = [r for r in regions if r["unit"] == "MB"]
    if peaks:
        specs.append({"key": "regions-memory", "rows": peaks, "draw": "bars",
                      "title": "Peak memory growth of mitk.open and one region read, beside "
                               "the region plus 16 MiB (MB)"})
    memory = [r for r in io if r["case"].startswith("io.peak_memory")]
    if memory:
        specs.append({"key": "memory", "rows": memory, "draw": "bars",
                      "title": "Peak memory growth while reading one file, beside the payload "
                               "size (MB)"})
    return specs


def draw(spec: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = spec["rows"]
    if spec["draw"] == "bars":
        series = _library_series(rows)
        bars = sum(v is not None for _, values in series for v in values)
        height = 1.2 + 0.17 * bars + 0.15 * len(rows)
        fig, ax = plt.subplots(figsize=(8, height), layout="constrained")
        unit = rows[0]["unit"]
        _bars(ax, rows, series, unit, log=unit == "GB/s")
    elif spec["draw"] == "relative":
        peers = []
        for row in rows:
            peers.extend(p for p in row.get("peers", {}) if p not in peers)

        def speed(row: dict, value: float) -> float:
            return relative_speed(value, row["reference_value"], row["unit"])

        series = [("mitk", [speed(r, r["value"]) for r in rows])]
        series += [(p, [speed(r, r["peers"][p]["value"]) if p in r.get("peers", {}) else None
                        for r in rows]) for p in peers]
        bars = sum(v is not None for _, values in series for v in values)
        fig, ax = plt.subplots(figsize=(8, 1.4 + 0.2 * bars + 0.15 * len(rows)),
                               layout="constrained")
        _bars(ax, rows, series, "times as fast as the reference (x)", log=True)
        ax.axvline(1.0, color="black", linewidth=0.8)
    else:
        peers = []
        for row in rows:
            peers.extend(p for p, info in row.get("peers", {}).items()
                         if "ratio" in info and p not in peers)
        series = [("mitk", [r["ratio"] for r in rows])]
        series += [(p, [r["peers"][p]["ratio"] if p in r.get("peers", {}) else None
                        for r in rows]) for p in peers]
        bars = sum(v is not None for _, values in series for v in values)
        fig, ax = plt.subplots(figsize=(8, 1.4 + 0.2 * bars + 0.15 * len(rows)),
                               layout="constrained")
        _bars(ax, rows, series, "speed-up of 2 threads over 1 (x)", log=False)
        ax.axvline(2.0, color="black", linestyle="--", linewidth=0.8)
        ax.axvline(1.0, color="black", linewidth=0.6)
        ax.set_xlim(0, 2.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)


class BenchResults(SphinxDirective):
    """Figures with captions for every stored run (HTML builds only)."""

    def run(self) -> list[nodes.Node]:
        if self.env.app.builder.format != "html":
            return []
        GENERATED.mkdir(exist_ok=True)
        out: list[nodes.Node] = []
        runs = load_runs()
        if not runs:
            logger.warning("bench-results: no benchmarks/results/*.json", location=self.get_location())
        for name, run in runs:
            stem = Path(name).stem
            out.append(nodes.rubric(text=f"Run {name}"))
            for spec in figure_specs(run):
                png = GENERATED / f"bench-{stem}-{spec['key']}.png"
                draw(spec, png)
                machine, command = run_summary(name, run, spec["rows"])
                if not command:
                    logger.warning("bench-results: %s records no command; add it to "
                                   "bench_plots.COMMANDS", name, location=self.get_location())
                figure = nodes.figure(classes=["bench-figure"])
                image = nodes.image(uri=f"/_generated/{png.name}", alt=spec["title"])
                figure += image
                figure += nodes.caption(text=spec["title"])
                legend = nodes.legend()
                legend += nodes.paragraph(text=machine)
                para = nodes.paragraph(text="Command: ")
                para += nodes.literal(text=command)
                para += nodes.Text(f" (stored as benchmarks/results/{name}).")
                legend += para
                figure += legend
                out.append(figure)
        return out
