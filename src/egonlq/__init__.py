"""egonlq: a Snakemake workflow for Ego4D Natural Language Queries (NLQ).

All logic lives in this package; the Snakemake rules only call into it.
"""

__version__ = "0.1.0"
