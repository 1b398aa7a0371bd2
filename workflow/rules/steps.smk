# Step grounding on Ego4D Goal-Step (issue 13): the annotated files become query tables (each step then its
# substeps, video/group timeline) and NLQ-style ground truth, with a quirk report; the step texts are pooled
# with the dual encoder's text encoder; each configured dual-encoder run x seed is decoded zero-shot and with
# step adapters (trained on Goal-Step train) by every decoder, scored on valid, with a test challenge file.
# Its own target: `steps`.

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

STEPS_DECODERS = ["argmax", "dp", "dfs", "viterbi"]
STEPS_RUNS = list(SCFG["runs"])
for _run in STEPS_RUNS:
    if _run not in DE_RUNS:
        raise ValueError(f"config.yaml: steps.runs names {_run!r}, not a dual_encoder run ({sorted(DE_RUNS)})")
STEPS_ADAPT = "train" in STEPS_ANNOTATED  # adapters train on goalstep_train.json
if STEPS_ON and not STEPS_ADAPT:
    logger.info("steps: no goalstep_train.json, so no step adapters (zero-shot only)")
STEPS_MODES = ["zeroshot", "adapters"] if STEPS_ADAPT else ["zeroshot"]
STEPS_TEST = ["results/steps/data/test_queries.parquet"] if "test" in STEPS_PRESENT else []
STEPS_DECODE = json.dumps(SCFG["decode"], sort_keys=True)
# VSLNet on the converted queries (the official baseline, spec §5): trained from scratch on Goal-Step train
# with the vslnet section's model and settings, one seed per dual_encoder seed; a demo-sized run in the demo
# world (a few epochs: it adds about a minute per seed), the vslnet settings on real data.
STEPS_VSLNET = "train" in STEPS_ANNOTATED
STEPS_VSLNET_TRAIN = {"epochs": 3, "batch_size": 32, "eval_per_epoch": 1} if IS_DEMO else {}
STEPS_VSLNET_RUN = parse_experiments(
    {k: VCFG[k] for k in ("label_mode", "model", "train")},
    {"seeds": DE_SEEDS, "runs": [{"name": "goalstep", "stage": "scratch", "train": STEPS_VSLNET_TRAIN}]},
    available_sources=QUERY_SOURCES,
)[0]
STEPS_VSLNET_DIR = "results/steps/vslnet/data"
STEPS_VSLNET_TEXT = f"results/steps/vslnet/text/{TEXT_TAG}/embeddings.safetensors"
STEPS_VSLNET_TEXT_INPUT = {"text_cache": STEPS_VSLNET_TEXT} if VCFG["text"] == "cache" else {}
STEPS_VSLNET_METRICS = (
    expand("results/steps/vslnet/scratch/seed{seed}/span_metrics.json", seed=DE_SEEDS) if STEPS_VSLNET else []
)


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


    rule steps_text:
        input:
            queries=rules.steps_ingest.output.queries + rules.steps_ingest.output.test,
            code=src_files("steps", "dualenc.text"),
        output:
            cache=f"results/steps/text/{DE_TEXT_TAG}/pooled.safetensors",
            stats=f"results/steps/text/{DE_TEXT_TAG}/stats.json",
        params:
            model=DECFG["text_encoder"],
        log:
            f"results/logs/steps_text/{DE_TEXT_TAG}.log",
        threads: 2
        conda:
            "../../envs/dualenc.yaml"
        shell:
            "exec python -m egonlq.cli steps-text --queries {input.queries:q} --model {params.model:q}"
            " --threads {threads} --out {output.cache:q} --stats {output.stats:q} > {log:q} 2>&1"

    rule steps_adapters:
        input:
            model=rules.train_dual_encoder.output.model,
            text=rules.steps_text.output.cache,
            features=FEATURE_INPUT,
            groups=STEPS_GROUPS,
            train="results/steps/data/train_queries.parquet",
            code=src_files("steps", "steps.adapters", "steps.chunks", "steps.evaluate", "steps.goalstep", "dualenc.evaluate"),
        output:
            weights="results/steps/adapters/{derun}/seed{seed}/model/adapters.safetensors",
            config="results/steps/adapters/{derun}/seed{seed}/model/adapters.json",
            train="results/steps/adapters/{derun}/seed{seed}/model/train.json",
        params:
            model_dir=lambda wc, input: str(Path(input.model).parent),
            feature_dir=lambda wc, input: folder_of(input.features),
            text_model=DECFG["text_encoder"],
            spec=lambda wc: json.dumps({**SCFG["adapters"], "seed": int(wc.seed)}, sort_keys=True),
            chunk_sec=SCFG["decode"]["chunk_sec"],
            out_dir=lambda wc, output: str(Path(output.weights).parent),
        log:
            "results/logs/steps_adapters/{derun}_seed{seed}.log",
        benchmark:
            "results/benchmarks/steps_adapters/{derun}_seed{seed}.tsv"
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            "../../envs/dualenc.yaml"
        shell:
            "exec python -m egonlq.cli steps-adapters --model-dir {params.model_dir:q} --text-cache {input.text:q}"
            " --text-model {params.text_model:q} --feature-dir {params.feature_dir:q} --groups {input.groups:q}"
            " --train {input.train:q} --spec {params.spec:q} --chunk-sec {params.chunk_sec}"
            " --threads {threads} --out-dir {params.out_dir:q} > {log:q} 2>&1"

    rule steps_zeroshot:
        input:
            model=rules.train_dual_encoder.output.model,
            text=rules.steps_text.output.cache,
            features=FEATURE_INPUT,
            groups=STEPS_GROUPS,
            valid="results/steps/data/valid_queries.parquet",
            gt="results/steps/data/valid_gt.json",
            test=STEPS_TEST,
            code=src_files("steps", "steps.evaluate", "steps.chunks", "steps.adapters", "steps.goalstep", "dualenc.evaluate"),
        output:
            metrics=expand("results/steps/zeroshot/{{derun}}/seed{{seed}}/{decoder}_metrics.json", decoder=STEPS_DECODERS),
            example="results/steps/zeroshot/{derun}/seed{seed}/example.npz",
            predictions=directory("results/steps/zeroshot/{derun}/seed{seed}/predictions"),
            challenge=["results/steps/zeroshot/{derun}/seed{seed}/test_challenge.json"] if STEPS_TEST else [],
        params:
            model_dir=lambda wc, input: str(Path(input.model).parent),
            feature_dir=lambda wc, input: folder_of(input.features),
            text_model=DECFG["text_encoder"],
            test=lambda wc, input: f"--test {shlex.quote(input.test[0])}" if input.test else "",
            decode=STEPS_DECODE,
            challenge_decoder=SCFG["challenge_decoder"],
            out_dir=lambda wc, output: str(Path(output.example).parent),
        log:
            "results/logs/steps_zeroshot/{derun}_seed{seed}.log",
        benchmark:
            "results/benchmarks/steps_zeroshot/{derun}_seed{seed}.tsv"
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            "../../envs/dualenc.yaml"
        shell:
            "exec python -m egonlq.cli steps-decode --model-dir {params.model_dir:q} --text-cache {input.text:q}"
            " --text-model {params.text_model:q} --feature-dir {params.feature_dir:q} --groups {input.groups:q}"
            " --valid {input.valid:q} --gt {input.gt:q} {params.test} --name steps_zeroshot_{wildcards.derun}_seed{wildcards.seed}"
            " --decode {params.decode:q} --challenge-decoder {params.challenge_decoder:q}"
            " --threads {threads} --out-dir {params.out_dir:q} > {log:q} 2>&1"

    rule steps_adapted:
        input:
            model=rules.train_dual_encoder.output.model,
            adapters=rules.steps_adapters.output.weights,
            text=rules.steps_text.output.cache,
            features=FEATURE_INPUT,
            groups=STEPS_GROUPS,
            valid="results/steps/data/valid_queries.parquet",
            gt="results/steps/data/valid_gt.json",
            test=STEPS_TEST,
            code=src_files("steps", "steps.evaluate", "steps.chunks", "steps.adapters", "steps.goalstep", "dualenc.evaluate"),
        output:
            metrics=expand("results/steps/adapters/{{derun}}/seed{{seed}}/{decoder}_metrics.json", decoder=STEPS_DECODERS),
            example="results/steps/adapters/{derun}/seed{seed}/example.npz",
            predictions=directory("results/steps/adapters/{derun}/seed{seed}/predictions"),
            challenge=["results/steps/adapters/{derun}/seed{seed}/test_challenge.json"] if STEPS_TEST else [],
        params:
            model_dir=lambda wc, input: str(Path(input.model).parent),
            adapters=lambda wc, input: str(Path(input.adapters).parent),
            feature_dir=lambda wc, input: folder_of(input.features),
            text_model=DECFG["text_encoder"],
            test=lambda wc, input: f"--test {shlex.quote(input.test[0])}" if input.test else "",
            decode=STEPS_DECODE,
            challenge_decoder=SCFG["challenge_decoder"],
            out_dir=lambda wc, output: str(Path(output.example).parent),
        log:
            "results/logs/steps_adapted/{derun}_seed{seed}.log",
        threads: 1
        resources:
            mem_mb=4000,
        conda:
            "../../envs/dualenc.yaml"
        shell:
            "exec python -m egonlq.cli steps-decode --model-dir {params.model_dir:q} --adapters {params.adapters:q}"
            " --text-cache {input.text:q} --text-model {params.text_model:q} --feature-dir {params.feature_dir:q}"
            " --groups {input.groups:q} --valid {input.valid:q} --gt {input.gt:q} {params.test}"
            " --name steps_adapters_{wildcards.derun}_seed{wildcards.seed} --decode {params.decode:q}"
            " --challenge-decoder {params.challenge_decoder:q} --threads {threads} --out-dir {params.out_dir:q} > {log:q} 2>&1"

    if STEPS_VSLNET:

        rule steps_vslnet_data:
            input:
                gt=[f"results/steps/data/{s}_gt.json" for s in ("train", "valid")],
                groups=STEPS_GROUPS,
                features=FEATURE_INPUT,
                code=src_files("steps", "steps.vslnet_data", "data.feature_sets"),
            output:
                **{f"{s}_{kind}": f"{STEPS_VSLNET_DIR}/{s}_{kind}.parquet" for s in ("train", "valid")
                   for kind in ("queries", "clips", "features")},
                train_nlq=f"{STEPS_VSLNET_DIR}/train_nlq.json",
                valid_nlq=f"{STEPS_VSLNET_DIR}/valid_nlq.json",
                stats=f"{STEPS_VSLNET_DIR}/stats.json",
            params:
                feature_dir=lambda wc, input: folder_of(input.features),
                dim=FEATURE_DIM,
                feature_set=FEATURE_NAME,
                mode=config["features"]["cut_mode"],
                out_dir=lambda wc, output: str(Path(output.stats).parent),
            log:
                "results/logs/steps_vslnet_data/steps_vslnet_data.log",
            resources:
                mem_mb=4000,
            conda:
                "../../envs/dualenc.yaml"
            shell:
                "exec python -m egonlq.cli steps-vslnet-data --gt {input.gt:q} --groups {input.groups:q}"
                " --feature-dir {params.feature_dir:q} --dim {params.dim} --feature-set {params.feature_set:q}"
                " --mode {params.mode:q} --out-dir {params.out_dir:q} --stats {output.stats:q} > {log:q} 2>&1"

        rule steps_vslnet_evaluate:
            input:
                gt="results/steps/data/valid_gt.json",
                predictions="results/steps/vslnet/scratch/seed{seed}/predictions/valid.json",
                code=src_files("evaluation", "evaluation.metric", "evaluation.ground_truth"),
            output:
                "results/steps/vslnet/scratch/seed{seed}/span_metrics.json",
            log:
                "results/logs/steps_vslnet_evaluate/seed{seed}.log",
            conda:
                "../../envs/dualenc.yaml"
            shell:
                "exec python -m egonlq.cli evaluate --gt {input.gt:q} --predictions {input.predictions:q}"
                " --predictor steps_vslnet_scratch_seed{wildcards.seed} --split valid --out {output:q} > {log:q} 2>&1"

    localrules:
        steps,

    rule steps_table:
        input:
            metrics=expand("results/steps/{mode}/{derun}/seed{seed}/{decoder}_metrics.json", mode=STEPS_MODES,
                           derun=STEPS_RUNS, seed=DE_SEEDS, decoder=STEPS_DECODERS) + STEPS_VSLNET_METRICS,
            example=f"results/steps/{STEPS_MODES[0]}/{STEPS_RUNS[0]}/seed{DE_SEEDS[0]}/example.npz",
            code=src_files("steps", "steps.table"),
        output:
            parquet="results/steps/table.parquet",
            markdown=report("results/steps/table.md", caption="../report/steps.rst", category="5. Step grounding"),
            plot=report("results/steps/alignment.png", caption="../report/steps_plot.rst",
                        category="5. Step grounding"),
        params:
            synthetic="--synthetic" if IS_DEMO else "",
        log:
            "results/logs/steps_table/steps_table.log",
        conda:
            "../../envs/dualenc.yaml"
        shell:
            "exec python -m egonlq.cli steps-table --metrics {input.metrics:q} --example {input.example:q}"
            " --parquet {output.parquet:q} --markdown {output.markdown:q} --plot {output.plot:q} {params.synthetic}"
            " > {log:q} 2>&1"

    rule steps:
        input:
            rules.steps_ingest.output.quirks,
            rules.steps_table.output.markdown,
        conda:
            "../../envs/dualenc.yaml"

    # The source's claim against the same metrics (issue 17): `snakemake --cores 2 recipe_steps`.
    rule steps_recipe:
        input:
            metrics=rules.steps_table.input.metrics,
            code=src_files("steps", "steps.recipe"),
        output:
            parquet="results/recipes/steps/table.parquet",
            markdown=report("results/recipes/steps/table.md", caption="../report/recipe_table.rst",
                            category="4. Recipes", labels={"recipe": "steps", "figure": "table"}),
            plot=report("results/recipes/steps/plot.png", caption="../report/recipe_plot.rst",
                        category="4. Recipes", labels={"recipe": "steps", "figure": "plot"}),
        params:
            run=STEPS_RUNS[0],
            synthetic="--synthetic" if IS_DEMO else "",
        log:
            "results/logs/steps_recipe/steps_recipe.log",
        conda:
            "../../envs/dualenc.yaml"
        shell:
            "exec python -m egonlq.cli steps-recipe --metrics {input.metrics:q} --run {params.run:q} {params.synthetic}"
            " --parquet {output.parquet:q} --markdown {output.markdown:q} --plot {output.plot:q} > {log:q} 2>&1"

    rule recipe_steps:
        input:
            rules.steps_recipe.output.markdown,
        localrule: True


# VSLNet on Goal-Step (the official baseline): the project's VSLNet rules on the converted queries. At the top
# level because `use rule` must be; without Goal-Step train data nothing asks for their outputs.


use rule text_embeddings as steps_vslnet_text with:
    input:
        training=f"{STEPS_VSLNET_DIR}/train_queries.parquet",
        queries=[f"{STEPS_VSLNET_DIR}/valid_queries.parquet"],
        code=src_files("grounding", "grounding.text_encoder"),
    output:
        cache=STEPS_VSLNET_TEXT,
        stats=f"results/steps/vslnet/text/{TEXT_TAG}/stats.json",
    log:
        f"results/logs/steps_vslnet_text/{TEXT_TAG}.log",
    benchmark:
        f"results/benchmarks/steps_vslnet_text/{TEXT_TAG}.tsv"


use rule train_vslnet as steps_vslnet_train with:
    input:
        train_queries=f"{STEPS_VSLNET_DIR}/train_queries.parquet",
        train_clips=f"{STEPS_VSLNET_DIR}/train_clips.parquet",
        train_features=f"{STEPS_VSLNET_DIR}/train_features.parquet",
        val_queries=f"{STEPS_VSLNET_DIR}/valid_queries.parquet",
        val_clips=f"{STEPS_VSLNET_DIR}/valid_clips.parquet",
        val_features=f"{STEPS_VSLNET_DIR}/valid_features.parquet",
        val_gt=f"{STEPS_VSLNET_DIR}/valid_nlq.json",
        code=src_files("grounding", "grounding.train", "grounding.text_encoder", "data.provenance"),
        **STEPS_VSLNET_TEXT_INPUT,
    output:
        model="results/steps/vslnet/scratch/seed{seed}/model/model.safetensors",
        config="results/steps/vslnet/scratch/seed{seed}/model/config.json",
        metrics="results/steps/vslnet/scratch/seed{seed}/model/metrics.csv",
        summary="results/steps/vslnet/scratch/seed{seed}/model/summary.json",
    params:
        spec=lambda wc: json.dumps(
            STEPS_VSLNET_RUN.train_spec_dict(int(wc.seed)) | {"text": VCFG["text"]}, sort_keys=True
        ),
        out_dir=lambda wc, output: str(Path(output.model).parent),
    log:
        "results/logs/steps_vslnet_train/seed{seed}.log",
    benchmark:
        "results/benchmarks/steps_vslnet_train/seed{seed}.tsv"


use rule predict_vslnet as steps_vslnet_predict with:
    input:
        model="results/steps/vslnet/scratch/seed{seed}/model/model.safetensors",
        queries=f"{STEPS_VSLNET_DIR}/valid_queries.parquet",
        clips=f"{STEPS_VSLNET_DIR}/valid_clips.parquet",
        features=f"{STEPS_VSLNET_DIR}/valid_features.parquet",
        code=src_files("grounding", "grounding.predict"),
        **STEPS_VSLNET_TEXT_INPUT,
    output:
        "results/steps/vslnet/scratch/seed{seed}/predictions/valid.json",
    params:
        label_mode=STEPS_VSLNET_RUN.label_mode,
    log:
        "results/logs/steps_vslnet_predict/seed{seed}.log",
