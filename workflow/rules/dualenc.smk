# The LaViLa-style video-text dual encoder: (window, text) pairs from narrations and pseudo-text, pooled text
# vectors of the frozen encoder, contrastive training per run x seed, held-out EgoMCQ/retrieval, zero-shot NLQ
# (scored by the `evaluate` rule) and the experiment table. Its own target: `snakemake dual_encoder`.
#
# Several GPUs on a cluster: train_dual_encoder runs `torchrun --nproc-per-node {resources.gpu}` when its
# `gpu` resource is above 1, e.g. in a profile: `set-resources: {train_dual_encoder: {gpu: 4}}` (with the
# executor's GPU request, e.g. slurm_extra: "--gres=gpu:4"); batch_size is the global batch.

DECFG = config["dual_encoder"]
DE_TEXT_TAG = "minilm" if DECFG["text_encoder"] == "default" else Path(DECFG["text_encoder"]).name
DE_SEEDS = list(DECFG["seeds"])
# The sources the workflow produces: GT narrations, every generator's, the narrator's (narrator.smk), the
# rephrasings when enabled. Runs using the narrator read the pairs table that holds its texts.
DE_SOURCES = {"narration", "narrator"} | {generator_source(g) for g in GENERATORS}
if REPHRASE["enabled"]:
    DE_SOURCES.add(f"rephrase:{'narration' if REPHRASE['origin'] == 'narration' else generator_source(REPHRASE['origin'])}")

from egonlq.dualenc.experiments import parse_runs

DE_RUNS, DE_SKIPPED = parse_runs(DECFG["runs"], DE_SOURCES)
DE_RUNS = {r.name: r for r in DE_RUNS}
check_narrator_tower()
for _name, _reason in DE_SKIPPED.items():
    logger.info(f"dual_encoder run {_name!r} is not run: {_reason}")
# The dual encoder's features as VSLNet input (one experiment run): the frozen video tower of one run x seed
# over every video's rows (egonlq.dualenc.features), and the VSLNet run `baseline` (an experiment run from
# scratch) trained on them at the experiment seeds, against the same run on the input features.
DE_VF = de_vslnet_features()  # None: not planned (no dual encoder run or no scratch run)
if DE_VF:
    DE_VF_NAME = f"dualenc_{DE_VF['run']}_seed{DE_VF['seed']}"  # the new feature set
    DE_VF_DIR = f"results/dualenc/features/{DE_VF_NAME}"
    DE_VF_TABLES = f"results/dualenc/vslnet/{DE_VF_NAME}/features"
    DE_VF_DIM = DECFG["model"]["embed_dim"]

wildcard_constraints:
    derun="|".join(DE_RUNS) if DE_RUNS else "NO_RUNS",
    pairset="base|narrator",


rule dualenc_pairs:
    input:
        curated="results/queries/curated.parquet",
        generated=generated_tables(),
        guard=expand("results/data/nlq/{split}_videos.parquet", split=["val", "test"]),
        code=src_files("dualenc", "dualenc.pairs", "data.tables"),
    output:
        pairs="results/dualenc/pairs.parquet",
        stats="results/dualenc/pairs_stats.json",
    params:
        heldout=DECFG["heldout_fraction"],
        seed=DECFG["split_seed"],
    log:
        "results/logs/dualenc_pairs/dualenc_pairs.log",
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-pairs --curated {input.curated:q} --generated {input.generated:q}"
        " --guard-videos {input.guard:q} --heldout-fraction {params.heldout} --seed {params.seed}"
        " --out {output.pairs:q} --stats {output.stats:q} > {log:q} 2>&1"


rule dualenc_text:
    input:
        pairs=de_set_pairs,
        queries=expand("results/data/nlq/{split}_queries.parquet", split=PREDICT_SPLITS),
        code=src_files("dualenc", "dualenc.text", "dualenc.pairs"),
    output:
        cache=de_text_cache("{pairset}"),
        stats=f"results/dualenc/text/{DE_TEXT_TAG}/{{pairset}}/stats.json",
    params:
        model=DECFG["text_encoder"],
    log:
        f"results/logs/dualenc_text/{DE_TEXT_TAG}_{{pairset}}.log",
    benchmark:
        f"results/benchmarks/dualenc_text/{DE_TEXT_TAG}_{{pairset}}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-text --pairs {input.pairs:q} --queries {input.queries:q} --model {params.model:q}"
        " --threads {threads} --out {output.cache:q} --stats {output.stats:q} > {log:q} 2>&1"

rule train_dual_encoder:
    input:
        pairs=de_run_pairs,
        text=de_run_text,
        features=FEATURE_INPUT,
        code=src_files("dualenc", "dualenc.train", "dualenc.text"),
    output:
        model=f"{de_dir('{derun}', '{seed}')}/model.safetensors",
        config=f"{de_dir('{derun}', '{seed}')}/config.json",
        metrics=f"{de_dir('{derun}', '{seed}')}/metrics.csv",
        summary=f"{de_dir('{derun}', '{seed}')}/summary.json",
    params:
        # Everything that changes the run's results; last.pt (the resumable state) is not an output.
        spec=de_spec,
        out_dir=lambda wc: de_dir(wc.derun, wc.seed),
        feature_dir=lambda wc, input: folder_of(input.features),
        video_dim=FEATURE_DIM,
        text_model=DECFG["text_encoder"],
        # one process per GPU under torchrun (DistributedDataParallel) when the rule gets several
        launch=lambda wc, resources: (
            f"exec python -m torch.distributed.run --standalone --nproc-per-node {resources.gpu} -m egonlq.cli"
            if resources.gpu > 1 else "exec python -m egonlq.cli"
        ),
    log:
        "results/logs/train_dual_encoder/{derun}_seed{seed}.log",
    benchmark:
        "results/benchmarks/train_dual_encoder/{derun}_seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=1,
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "{params.launch} dualenc-train --spec {params.spec:q} --pairs {input.pairs:q} --text-cache {input.text:q}"
        " --text-model {params.text_model:q} --feature-dir {params.feature_dir:q} --video-dim {params.video_dim}"
        " --threads {threads} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule eval_dual_encoder:
    input:
        model=rules.train_dual_encoder.output.model,
        pairs=de_run_pairs,
        text=de_run_text,
        features=FEATURE_INPUT,
        code=src_files("dualenc", "dualenc.evaluate"),
    output:
        f"{de_dir('{derun}', '{seed}')}/heldout.json",
    params:
        model_dir=lambda wc: de_dir(wc.derun, wc.seed),
        feature_dir=lambda wc, input: folder_of(input.features),
        text_model=DECFG["text_encoder"],
    log:
        "results/logs/eval_dual_encoder/{derun}_seed{seed}.log",
    threads: 1
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-eval --model-dir {params.model_dir:q} --pairs {input.pairs:q} --text-cache {input.text:q}"
        " --text-model {params.text_model:q} --feature-dir {params.feature_dir:q} --seed {wildcards.seed}"
        " --threads {threads} --out {output:q} > {log:q} 2>&1"


rule predict_dual_encoder:
    input:
        model=rules.train_dual_encoder.output.model,
        queries="results/data/nlq/{split}_queries.parquet",
        clips="results/data/nlq/{split}_clips.parquet",
        text=de_run_text,
        features=FEATURE_INPUT,
        code=src_files("dualenc", "dualenc.zeroshot", "evaluation.predictions"),
    output:
        "results/predictions/dualenc_{derun}_seed{seed}/{split}.json",
    params:
        model_dir=lambda wc: de_dir(wc.derun, wc.seed),
        feature_dir=lambda wc, input: folder_of(input.features),
        text_model=DECFG["text_encoder"],
        windows=" ".join(str(w) for w in DECFG["zero_shot"]["window_sec"]),
        stride=DECFG["zero_shot"]["stride"],
        nms=DECFG["zero_shot"]["nms_iou"],
    log:
        "results/logs/predict_dual_encoder/{derun}_seed{seed}_{split}.log",
    threads: 1
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-predict --model-dir {params.model_dir:q} --queries {input.queries:q} --clips {input.clips:q}"
        " --text-cache {input.text:q} --text-model {params.text_model:q} --feature-dir {params.feature_dir:q}"
        " --window-sec {params.windows} --stride {params.stride} --nms-iou {params.nms} --threads {threads}"
        " --out {output:q} > {log:q} 2>&1"


rule dual_encoder_table:
    input:
        heldout=[f"{de_dir(r, s)}/heldout.json" for r in DE_RUNS for s in DE_SEEDS],
        summaries=[f"{de_dir(r, s)}/summary.json" for r in DE_RUNS for s in DE_SEEDS],
        nlq=[f"results/eval/dualenc_{r}_seed{s}/val.json" for r in DE_RUNS for s in DE_SEEDS],
        reference=[f"results/eval/{p}/val.json" for p in scored_predictors()],
        code=src_files("dualenc", "dualenc.experiments"),
    output:
        parquet="results/dualenc/table.parquet",
        markdown=report("results/dualenc/table.md", caption="../report/dualenc.rst", category="4. Dual encoder"),
        plot=report("results/dualenc/runs.png", caption="../report/dualenc_plot.rst", category="4. Dual encoder"),
    params:
        runs=json.dumps(DECFG["runs"], sort_keys=True),
        seeds=" ".join(str(s) for s in DE_SEEDS),
        sources=",".join(sorted(DE_SOURCES)),
        synthetic="--synthetic" if IS_DEMO else "",
    log:
        "results/logs/dual_encoder_table/dual_encoder_table.log",
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-table --runs {params.runs:q} --seeds {params.seeds} --sources {params.sources:q}"
        " --heldout {input.heldout:q} --nlq {input.nlq:q} --reference {input.reference:q} {params.synthetic}"
        " --parquet {output.parquet:q} --markdown {output.markdown:q} --plot {output.plot:q} > {log:q} 2>&1"


# LaViLa's claim against the dual encoder's table (issue 17): `snakemake --cores 2 recipe_dualenc`.
rule dualenc_recipe:
    input:
        table=rules.dual_encoder_table.output.parquet,
        code=src_files("dualenc", "dualenc.recipe"),
    output:
        parquet="results/recipes/dualenc/table.parquet",
        markdown=report("results/recipes/dualenc/table.md", caption="../report/recipe_table.rst",
                        category="4. Recipes", labels={"recipe": "dualenc", "figure": "table"}),
        plot=report("results/recipes/dualenc/plot.png", caption="../report/recipe_plot.rst",
                    category="4. Recipes", labels={"recipe": "dualenc", "figure": "plot"}),
    params:
        synthetic="--synthetic" if IS_DEMO else "",
    log:
        "results/logs/dualenc_recipe/dualenc_recipe.log",
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-recipe --table {input.table:q} {params.synthetic}"
        " --parquet {output.parquet:q} --markdown {output.markdown:q} --plot {output.plot:q} > {log:q} 2>&1"


rule recipe_dualenc:
    input:
        rules.dualenc_recipe.output.markdown,
    localrule: True


if DE_VF:

    include: "dualenc_vslnet.smk"


localrules:
    dual_encoder,


rule dual_encoder:
    input:
        rules.dual_encoder_table.output.markdown,
        [rules.dualenc_feature_table.output.markdown] if DE_VF else [],
    conda:
        "../../envs/dualenc.yaml"
