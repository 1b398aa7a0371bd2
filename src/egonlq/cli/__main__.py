"""``python -m egonlq.cli <command> ...``."""

from egonlq.cli import main

main()
