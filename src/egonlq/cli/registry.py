"""The command registry, filled by the stage modules of ``egonlq.cli``, and helpers their commands share."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable

log = logging.getLogger("egonlq")

COMMANDS: dict[
    str, tuple[Callable[[argparse.Namespace], None], Callable[[argparse.ArgumentParser], None]]
] = {}


def command(name: str, configure: Callable[[argparse.ArgumentParser], None]):
    def register(fn: Callable[[argparse.Namespace], None]):
        COMMANDS[name] = (fn, configure)
        return fn

    return register


def log_stats(title: str, stats: dict) -> None:
    log.info("%s: %s", title, json.dumps(stats, indent=1, sort_keys=True, default=str))


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, n))
