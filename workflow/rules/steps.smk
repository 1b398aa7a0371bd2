# Step grounding on Ego4D Goal-Step (issue 13): the annotated files become query tables (each step then its
# substeps, video/group timeline) and NLQ-style ground truth, with a quirk report. Its own target: `steps`.

SCFG = config["steps"]
STEPS_ANN = f"{SCFG['annotations']}"
STEPS_FILES = {s: data_path(f"{STEPS_ANN}/goalstep_{s}.json") for s in ("train", "valid", "test")}
STEPS_GROUPS = data_path(f"{STEPS_ANN}/goalstep_video_groups.tsv")
# the demo writes every file; real data: the files that exist (valid and the groups file are required)
STEPS_PRESENT = [s for s, p in STEPS_FILES.items() if IS_DEMO or Path(p).is_file()]
_STEPS_BLOCKERS = [
    f"no {p}" for p in (STEPS_FILES["valid"], STEPS_GROUPS) if not (IS_DEMO or Path(p).is_file())
]
if SCFG["enabled"] == "auto":
    STEPS_ON = not _STEPS_BLOCKERS
    if not STEPS_ON:
        logger.info(f"steps (enabled: auto) are off: {'; '.join(_STEPS_BLOCKERS)}")
elif SCFG["enabled"] and _STEPS_BLOCKERS:
    raise ValueError(f"config.yaml: steps.enabled is true, but: {'; '.join(_STEPS_BLOCKERS)}")
else:
    STEPS_ON = SCFG["enabled"]
STEPS_ANNOTATED = [s for s in ("train", "valid") if s in STEPS_PRESENT]


if STEPS_ON:

    rule steps_ingest:
        input:
            annotated=[STEPS_FILES[s] for s in STEPS_ANNOTATED],
            test=[STEPS_FILES["test"]] if "test" in STEPS_PRESENT else [],
            groups=STEPS_GROUPS,
            code=src_files("steps", "steps.goalstep"),
        output:
            queries=[f"results/steps/data/{s}_queries.parquet" for s in STEPS_ANNOTATED],
            gt=[f"results/steps/data/{s}_gt.json" for s in STEPS_ANNOTATED],
            test=["results/steps/data/test_queries.parquet"] if "test" in STEPS_PRESENT else [],
            quirks="results/steps/data/quirks.json",
        params:
            out_dir=lambda wc, output: str(Path(output.quirks).parent),
            test=lambda wc, input: f"--test {shlex.quote(input.test[0])}" if input.test else "",
        log:
            "results/logs/steps_ingest/steps_ingest.log",
        conda:
            "../../envs/dualenc.yaml"
        shell:
            "exec python -m egonlq.cli steps-ingest --annotated {input.annotated:q} {params.test} --groups {input.groups:q}"
            " --out-dir {params.out_dir:q} --quirks {output.quirks:q} > {log:q} 2>&1"

    localrules:
        steps,

    rule steps:
        input:
            rules.steps_ingest.output.quirks,
        conda:
            "../../envs/dualenc.yaml"
