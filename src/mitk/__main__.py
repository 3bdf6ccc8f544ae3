"""The command line: ``python -m mitk demo|info|convert|view|bench`` (also the ``mitk`` script).

User errors (a missing file, an unsupported format, a corrupt file) print one line on stderr and
exit with status 1; usage errors exit with status 2 (argparse).
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import Exception as MitkError

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="mitk", description="mitk: medical images in Python (NRRD, NIfTI, MetaImage).")
    parser.add_argument("--version", action="version", version=f"mitk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run a threaded load/process/save pipeline on generated data")
    demo.add_argument("--frames", type=int, default=8, help="time frames (default 8)")
    demo.add_argument("--size", type=int, default=96, help="edge length of each frame (default 96)")
    demo.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    demo.add_argument("--keep", metavar="DIR", help="write the files into DIR and keep them")

    info = sub.add_parser("info", help="describe image files")
    info.add_argument("files", nargs="+", metavar="FILE")
    info.add_argument("--json", action="store_true", help="print JSON instead of text")

    convert = sub.add_parser("convert", help="convert between formats")
    convert.add_argument("inputs", nargs="+", metavar="IN",
                         help="input file(s); with several inputs OUT is a directory")
    convert.add_argument("output", metavar="OUT")
    convert.add_argument("--compression", choices=["raw", "gzip", "bzip2"], default=None)
    convert.add_argument("--to", metavar="EXT", default=None,
                         help="extension of the outputs when OUT is a directory (default .nrrd)")

    view = sub.add_parser("view", help="render the axial, coronal and sagittal planes to a PNG")
    view.add_argument("file", metavar="FILE")
    view.add_argument("-o", "--output", required=True, metavar="PNG")
    view.add_argument("--time-step", type=int, default=0, metavar="T",
                      help="the time step of a 4D image to show (default 0)")

    bench = sub.add_parser("bench", help="run the benchmarks and print a table")
    bench.add_argument("--quick", action="store_true", help="small sizes, few repeats")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--peers", action="store_true",
                       help="also measure SimpleITK, ITK, nibabel, pynrrd, mitk-python if installed")
    bench.add_argument("--upstream-python", metavar="PYTHON",
                       help="with --peers: an interpreter that has mitk-python installed (it "
                            "shares our import name, so it runs there); default: "
                            "$MITK_BENCH_UPSTREAM_PYTHON")
    bench.add_argument("--only", metavar="TEXT",
                       help="run only the cases whose name contains TEXT (e.g. io.gzip)")
    bench.add_argument("--compare", nargs=2, metavar=("A", "B"),
                       help="compare two JSON result files instead of running")
    bench.add_argument("--table", metavar="FILE",
                       help="print the table of a JSON result file instead of running")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from ._cli.demo import run_demo

            return run_demo(frames=args.frames, size=args.size, workers=args.workers,
                            keep=args.keep)
        if args.command == "info":
            from ._cli.info import run_info

            return run_info(args.files, as_json=args.json)
        if args.command == "convert":
            from ._cli.convert import run_convert

            return run_convert(args.inputs, args.output, compression=args.compression,
                               to=args.to)
        if args.command == "view":
            from ._cli.view import run_view

            return run_view(args.file, args.output, time_step=args.time_step)
        if args.command == "bench":
            from ._bench.runner import run_bench

            if args.upstream_python:
                if not os.path.exists(args.upstream_python):
                    raise FileNotFoundError(2, "no such interpreter", args.upstream_python)
                os.environ["MITK_BENCH_UPSTREAM_PYTHON"] = args.upstream_python
            return run_bench(quick=args.quick, json_path=args.json, peers=args.peers,
                             compare=args.compare, only=args.only, table=args.table)
    except (MitkError, OSError) as exc:
        message = str(exc) if not isinstance(exc, OSError) or not exc.filename else (
            f"{exc.strerror or exc}: {exc.filename}")
        print(f"mitk {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"mitk {args.command}: interrupted", file=sys.stderr)
        return 130
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
