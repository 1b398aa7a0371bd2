# LaViLa's NARRATOR: a frozen causal LM conditioned on the frozen video tower of a dual encoder run, trained on
# the kept GT narrations of training videos; it re-narrates every EgoClip window and densifies un-narrated
# stretches (sharded, cached, resumable), is scored on held-out windows (CIDEr, ROUGE-L), and its texts reach
# the dual encoder as the pseudo-text source `narrator` and VSLNet pre-training as the NaQ-style query source
# `narrator` (recipe_narrator). Its own target: `snakemake narrator`.
# The demo first pre-trains a small GPT-2-configured LM on the narrations (narrator.lm: demo); a local causal
# LM folder (e.g. gpt2) skips that step.

NCFG = config["narrator"]
NARRATOR_LM_DEMO = NCFG["lm"] == "demo"
NARRATOR_TOWER = de_dir(NCFG["video_tower"]["run"], NCFG["video_tower"]["seed"])
NARRATOR_SHARDS = NCFG["shards"]


if NARRATOR_LM_DEMO:

    rule narrator_lm:
        input:
            pairs=rules.dualenc_pairs.output.pairs,
            code=src_files("narrator", "narrator.lm", "dualenc.pairs"),
        output:
            config="results/narrator/lm/demo/config.json",
            weights="results/narrator/lm/demo/model.safetensors",
            tokenizer="results/narrator/lm/demo/tokenizer.json",
        params:
            out_dir=lambda wc, output: str(Path(output.config).parent),
            gt_fraction=NCFG["gt_fraction"],
            config=json.dumps(NCFG["lm_demo"], sort_keys=True),
        log:
            "results/logs/narrator_lm/narrator_lm.log",
        benchmark:
            "results/benchmarks/narrator_lm/narrator_lm.tsv"
        threads: 2
        conda:
            "../../envs/narrator.yaml"
        shell:
            "exec python -m egonlq.cli narrator-lm --pairs {input.pairs:q} --gt-fraction {params.gt_fraction}"
            " --config {params.config:q} --threads {threads} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule train_narrator:
    input:
        pairs=rules.dualenc_pairs.output.pairs,
        lm=narrator_lm_input(),
        tower=f"{NARRATOR_TOWER}/model.safetensors",
        features=FEATURE_INPUT,
        code=src_files("narrator", "narrator.train", "narrator.model", "dualenc.pairs"),
    output:
        weights="results/narrator/model/narrator.safetensors",
        config="results/narrator/model/narrator.json",
        summary="results/narrator/model/summary.json",
    params:
        out_dir=lambda wc, output: str(Path(output.weights).parent),
        lm_dir=lambda wc, input: str(Path(input.lm).parent),
        tower_dir=lambda wc, input: str(Path(input.tower).parent),
        feature_dir=lambda wc, input: folder_of(input.features),
        video_dim=FEATURE_DIM,
        gt_fraction=NCFG["gt_fraction"],
        model=json.dumps(NCFG["model"], sort_keys=True),
        spec=json.dumps({**NCFG["train"], "max_rows": DECFG["model"]["max_rows"]}, sort_keys=True),
    log:
        "results/logs/train_narrator/train_narrator.log",
    benchmark:
        "results/benchmarks/train_narrator/train_narrator.tsv"
    threads: 2
    resources:
        mem_mb=4000,
        gpu=GPU_REQUEST,
    conda:
        "../../envs/narrator.yaml"
    shell:
        "exec python -m egonlq.cli narrator-train --pairs {input.pairs:q} --gt-fraction {params.gt_fraction}"
        " --lm-dir {params.lm_dir:q} --tower-dir {params.tower_dir:q} --feature-dir {params.feature_dir:q}"
        " --video-dim {params.video_dim} --model {params.model:q} --spec {params.spec:q} --threads {threads}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule narrate:
    input:
        weights=rules.train_narrator.output.weights,
        config=rules.train_narrator.output.config,
        pairs=rules.dualenc_pairs.output.pairs,
        features=FEATURE_INPUT,
        code=src_files("narrator", "narrator.narrate", "narrator.model"),
    output:
        table="results/narrator/shards/shard{shard}.parquet",
        stats="results/narrator/shards/shard{shard}.json",
    params:
        # The append-only cache is not an output: Snakemake must not delete it, so a killed job resumes, and
        # a changed decoding setting regenerates only the windows it applies to.
        cache="results/narrator/cache/shard{shard}.jsonl",
        model_dir=lambda wc, input: str(Path(input.weights).parent),
        feature_dir=lambda wc, input: folder_of(input.features),
        decoding=json.dumps(NCFG["decoding"], sort_keys=True),
        dense_decoding=json.dumps(
            {**NCFG["decoding"], "num_sequences": NCFG["dense"]["num_sequences"]}, sort_keys=True
        ),
        dense_sec=NCFG["dense"]["window_sec"],
        dense_stride=NCFG["dense"]["stride"],
        seed=NCFG["seed"],
        num_shards=NARRATOR_SHARDS,
        batch_size=NCFG["batch_size"],
    log:
        "results/logs/narrate/shard{shard}.log",
    benchmark:
        "results/benchmarks/narrate/shard{shard}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        gpu=GPU_REQUEST,
    conda:
        "../../envs/narrator.yaml"
    shell:
        "exec python -m egonlq.cli narrator-narrate --model-dir {params.model_dir:q} --pairs {input.pairs:q}"
        " --feature-dir {params.feature_dir:q} --decoding {params.decoding:q} --dense-decoding {params.dense_decoding:q}"
        " --dense-sec {params.dense_sec} --dense-stride {params.dense_stride} --seed {params.seed}"
        " --shard {wildcards.shard} --num-shards {params.num_shards} --batch-size {params.batch_size}"
        " --threads {threads} --cache {params.cache:q} --out {output.table:q} --stats {output.stats:q} > {log:q} 2>&1"


rule merge_narrations:
    input:
        shards=expand("results/narrator/shards/shard{shard}.parquet", shard=range(NARRATOR_SHARDS)),
        pairs=rules.dualenc_pairs.output.pairs,
        code=src_files("narrator", "narrator.narrate", "narrator.quality"),
    output:
        table="results/narrator/narrations.parquet",
        quality=report("results/narrator/quality.json", caption="../report/narrator.rst", category="4. Dual encoder"),
    log:
        "results/logs/merge_narrations/merge_narrations.log",
    conda:
        "../../envs/narrator.yaml"
    shell:
        "exec python -m egonlq.cli narrator-merge --shards {input.shards:q} --pairs {input.pairs:q}"
        " --out {output.table:q} --quality {output.quality:q} > {log:q} 2>&1"


rule narrator_pairs:
    input:
        pairs=rules.dualenc_pairs.output.pairs,
        narrations=rules.merge_narrations.output.table,
        code=src_files("narrator", "narrator.consumers", "narrator.narrate"),
    output:
        pairs="results/narrator/pairs.parquet",
        stats="results/narrator/pairs_stats.json",
    params:
        seed=DECFG["split_seed"],
    log:
        "results/logs/narrator_pairs/narrator_pairs.log",
    conda:
        "../../envs/narrator.yaml"
    shell:
        "exec python -m egonlq.cli narrator-pairs --pairs {input.pairs:q} --narrations {input.narrations:q}"
        " --seed {params.seed} --out {output.pairs:q} --stats {output.stats:q} > {log:q} 2>&1"


rule narrator_queries:
    input:
        narrations=rules.merge_narrations.output.table,
        naq_clips=rules.naq.output.clips,
        code=src_files("narrator", "narrator.queries", "narrator.narrate"),
    output:
        queries="results/narrator/queries.parquet",
        clips="results/narrator/query_clips.parquet",
        stats="results/narrator/queries_stats.json",
    params:
        texts=narrator_query_texts(),
    log:
        "results/logs/narrator_queries/narrator_queries.log",
    conda:
        "../../envs/narrator.yaml"
    shell:
        "exec python -m egonlq.cli narrator-queries --narrations {input.narrations:q} --naq-clips {input.naq_clips:q}"
        " --texts {params.texts:q} --out {output.queries:q} --clips {output.clips:q} --stats {output.stats:q}"
        " > {log:q} 2>&1"


# The training set of VSLNet runs whose sources name `narrator`: the base set plus the narrator's queries, its
# clips' features and text cache (recipe_train_inputs picks it; other runs keep the base set and never wait on
# the narrator).
use rule training_queries as narrator_training_queries with:
    input:
        **training_queries_inputs(narrator=True),
    output:
        queries=NARRATOR_TRAINING_SET["train_queries"],
        clips=NARRATOR_TRAINING_SET["train_clips"],
        stats="results/queries/with_narrator/training_stats.json",
    params:
        extra=lambda wc, input: (
            f"--extra-queries {shlex.quote(input.extra_queries)} --extra-clips {shlex.quote(input.extra_clips)}"
        ),
    log:
        "results/logs/narrator_training_queries/narrator_training_queries.log",


use rule training_clip_features as narrator_training_clip_features with:
    input:
        clips=NARRATOR_TRAINING_SET["train_clips"],
        videos=rules.training_clip_features.input.videos,
        features=FEATURE_INPUT,
        code=rules.training_clip_features.input.code,
    output:
        table=NARRATOR_TRAINING_SET["train_features"],
        shapes="results/features/with_narrator/training_feature_shapes.json",
        stats="results/features/with_narrator/training_stats.json",
    log:
        "results/logs/narrator_training_clip_features/narrator_training_clip_features.log",
    benchmark:
        "results/benchmarks/narrator_training_clip_features/narrator_training_clip_features.tsv"


use rule text_embeddings as narrator_text_embeddings with:
    input:
        training=NARRATOR_TRAINING_SET["train_queries"],
        queries=rules.text_embeddings.input.queries,
        code=rules.text_embeddings.input.code,
    output:
        cache=narrator_text_cache(),
        stats=f"results/text/{TEXT_TAG}/with_narrator/stats.json",
    log:
        f"results/logs/narrator_text_embeddings/{TEXT_TAG}.log",
    benchmark:
        f"results/benchmarks/narrator_text_embeddings/{TEXT_TAG}.tsv"


localrules:
    narrator,


rule narrator:
    input:
        rules.merge_narrations.output.quality,
        rules.narrator_pairs.output.pairs,
    conda:
        "../../envs/narrator.yaml"
