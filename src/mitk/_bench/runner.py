"""``python -m mitk bench``: run every case and print one table (optionally JSON, peers, diffs).

The table shows, per case, our figure, the reference measured in the same run, the ratio, the
target and whether it is met.  ``--json FILE`` writes the layout documented in
:mod:`mitk._bench.results`; ``--compare A B`` prints what changed between two such files.
Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import platform
import sys
import time

from .results import QUICK_NOTE, SCHEMA, Result

__all__ = ["compare_files", "format_table", "machine_info", "run_bench", "run_cases",
           "table_of_file"]

#: Modules holding case lists (``CASES``: (name, function) pairs).
CASE_MODULES = ("mitk._bench.core_cases", "mitk._bench.cimport_cases", "mitk._bench.io_cases",
                "mitk._bench.dicom_cases", "mitk._bench.contention_cases",
                "mitk._bench.region_cases")


def machine_info() -> dict:
    """What the figures were measured on."""
    import numpy as np

    import mitk

    info = {
        "mitk": mitk.__version__,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages / (1 << 30), 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        from mitk.io._streams import accelerator

        info["deflate"] = accelerator()
    except ImportError:
        pass
    return info


def _progress(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run_cases(quick: bool = False, peers: bool = False, only: str | None = None) -> list[Result]:
    """Run every case (those whose name contains ``only``, if given) and return the results."""
    cases = []
    for module_name in CASE_MODULES:
        module = importlib.import_module(module_name)  # a broken module must fail loudly
        cases += list(module.CASES)
    if only:
        cases = [c for c in cases if only in c[0]]
    results: list[Result] = []
    for i, (name, fn) in enumerate(cases, 1):
        t0 = time.perf_counter()
        _progress(f"[{i}/{len(cases)}] {name} ...")
        try:
            if peers and "peers" in getattr(fn, "__code__", None).co_varnames:
                out = fn(quick, peers=True)
            else:
                out = fn(quick)
        except Exception as exc:  # a broken case is reported, the rest still run
            _progress(f"    {name} failed: {type(exc).__name__}: {exc}")
            results.append(Result(name, name.split(".")[0], f"FAILED: {exc}", float("nan"), "",
                                  target="ran"))
            continue
        for r in out if isinstance(out, list) else [out]:
            r.quick = quick
            results.append(r)
        _progress(f"    done in {time.perf_counter() - t0:.1f} s")
    return results


def _fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def describe_machine(info: dict) -> str:
    """One line saying what a run was measured on (for the README table)."""
    return (f"{info.get('cpu', info.get('machine'))}, {info.get('cpus')} CPUs, "
            f"{info.get('memory_gib', '?')} GiB; Python {info['python']}, NumPy {info['numpy']}, "
            f"deflate: {info.get('deflate', 'zlib')}; mitk {info['mitk']}")


def _peer_ratio(peer: dict, r: Result) -> str:
    # A peer may carry its own ratio (its 2-thread scaling, say); otherwise its figure over our
    # reference, so that the column compares like with like.
    if peer.get("ratio") is not None:
        return f"{peer['ratio']:.2f}x"
    if not peer.get("value") or not r.reference_value or math.isnan(r.reference_value):
        return "-"
    return f"{peer['value'] / r.reference_value:.2f}x"


def format_table(results: list[Result]) -> str:
    """The results as a Markdown table (the README's performance table is one of these)."""
    rows = [("case", "ours", "reference (same run)", "ratio", "target", "met")]
    unjudged = 0
    for r in results:
        ratio = "-" if math.isnan(r.ratio) else f"{r.ratio:.2f}x"
        met = {True: "yes", False: "NO", None: ""}[r.met]
        if r.target and not r.judged:
            met = "n/a*"
            unjudged += 1
        ref = f"{_fmt(r.reference_value, r.reference_unit)} {r.reference}".strip() \
            if r.reference else ""
        rows.append((r.description, _fmt(r.value, r.unit), ref, ratio, r.target, met))
        for peer, p in sorted(r.peers.items()):
            rows.append((f"  {peer} {p.get('version', '')}".rstrip(),
                         _fmt(p.get("value", float("nan")), p.get("unit", r.unit)), "",
                         _peer_ratio(p, r), "", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    if unjudged:
        lines.append(f"\n* {unjudged} row(s) not judged: {QUICK_NOTE}.")
    return "\n".join(lines)


def _load(path: str) -> dict:
    with open(path) as f:
        data = json.load(f)
    if data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a mitk bench result file (schema {data.get('schema')!r})")
    return data


def compare_files(path_a: str, path_b: str) -> str:
    """A table of the cases in both files: A's figure, B's, and the change."""
    a, b = _load(path_a), _load(path_b)
    ra = {r["case"]: r for r in a["results"]}
    rows = [("case", "A", "B", "change")]
    for r in b["results"]:
        old = ra.get(r["case"])
        if old is None or old.get("value") is None or r.get("value") is None:
            continue
        change = (r["value"] / old["value"] - 1) * 100 if old["value"] else float("nan")
        rows.append((r["case"], _fmt(old["value"], old["unit"]), _fmt(r["value"], r["unit"]),
                     f"{change:+.1f}%"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def table_of_file(path: str) -> str:
    """The machine line and Markdown table of a stored run (how the README's table is made)."""
    data = _load(path)
    results = [Result.from_json({"quick": data.get("quick", False), **r})
               for r in data["results"]]
    return f"Measured on: {describe_machine(data['machine'])}\n\n{format_table(results)}"


def run_bench(quick: bool = False, json_path: str | None = None, peers: bool = False,
              compare: list[str] | None = None, only: str | None = None,
              table: str | None = None) -> int:
    """Entry point of ``python -m mitk bench``; returns the exit status."""
    if table:
        try:
            print(table_of_file(table))
        except (OSError, ValueError, KeyError) as exc:
            print(f"mitk bench: error: {exc}", file=sys.stderr)
            return 1
        return 0
    if compare:
        try:
            print(compare_files(*compare))
        except (OSError, ValueError, KeyError) as exc:
            print(f"mitk bench: error: {exc}", file=sys.stderr)
            return 1
        return 0
    info = machine_info()
    _progress(f"mitk {info['mitk']} on {info.get('cpu', info['machine'])}, "
              f"{info['cpus']} CPUs, Python {info['python']}, NumPy {info['numpy']}"
              + (" (quick)" if quick else ""))
    results = run_cases(quick=quick, peers=peers, only=only)
    print(f"Measured on: {describe_machine(info)}\n")
    print(format_table(results))
    if json_path:
        payload = {"schema": SCHEMA, "mitk_version": info["mitk"], "quick": quick,
                   "machine": info, "results": [r.to_json() for r in results]}
        with open(json_path, "w") as f:
            json.dump(payload, f, indent=2)
        _progress(f"wrote {json_path}")
    return 0
