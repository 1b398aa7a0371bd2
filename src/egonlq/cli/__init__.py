"""Command-line entry points, one per workflow step: ``python -m egonlq.cli <command> ...``.

The commands live in one module per workflow stage (``egonlq.cli.<stage>``); each parses its arguments,
calls one function of the package and logs/writes what it returns.
Imports are local to each command so that a step pays only for the libraries it uses.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from egonlq.cli import data, demo, dualenc, evaluation, grounding, narrator, queries, report, steps, video  # noqa: F401  (they register commands)
from egonlq.cli.registry import COMMANDS, log
from egonlq.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="egonlq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (fn, configure) in COMMANDS.items():
        p = sub.add_parser(name, help=(fn.__doc__ or "").strip().split("\n")[0] or None)
        configure(p)
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    t0 = time.perf_counter()
    from egonlq.io import use_fast_memory_pool

    use_fast_memory_pool()  # big tables: far less time in the kernel than with the default pool (egonlq.io)
    try:
        args.func(args)
    except InputError as e:
        log.error("bad input: %s", e)
        raise SystemExit(2) from e
    log.info("%s done in %.1f s", args.command, time.perf_counter() - t0)
