# egonlq: Ego4D Natural Language Queries, from annotations and narrations to trained models and metrics.
# This file is the table of contents; every stage lives in workflow/rules/<stage>.smk, all logic in src/egonlq/.

from snakemake.utils import min_version

min_version("9.27")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/queries.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/vslnet.smk"
include: "workflow/rules/recipes.smk"
include: "workflow/rules/keyframes.smk"
include: "workflow/rules/evaluation.smk"
include: "workflow/rules/dualenc.smk"
include: "workflow/rules/narrator.smk"
include: "workflow/rules/steps.smk"
include: "workflow/rules/report.smk"


localrules:
    all,


rule all:
    input:
        all_targets(),
    default_target: True
