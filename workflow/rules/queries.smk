# Query sources: curated narrations, NaQ, LLM/template-generated questions (sharded, cached, resumable),
# optional rephrasing, and the single training-queries table with a `source` column.

NLQ_TABLES = {
    "clips": expand("results/data/nlq/{split}_clips.parquet", split=SPLITS),
    "queries": expand("results/data/nlq/{split}_queries.parquet", split=SPLITS),
}


rule curate_narrations:
    input:
        narrations="results/data/narrations.parquet",
        videos="results/data/videos.parquet",
        split_clips=expand("results/data/nlq/{split}_videos.parquet", split=SPLITS),  # NLQ_VIDEOS tables
        split_queries=NLQ_TABLES["queries"],
        code=src_files("queries", "queries.curation", "data.tables", "io"),
    output:
        curated="results/queries/curated.parquet",
        assigned="results/queries/assigned.parquet",
        pseudo_clips="results/queries/pseudo_clips.parquet",
        stats="results/queries/curation_stats.json",
    params:
        allow_train="--allow-train" if QCFG["curation"]["allow_train_videos"] else "",
        drop_other="" if QCFG["curation"]["keep_other"] else "--drop-other",
        passes=QCFG["curation"]["passes"],
        alpha=f"--alpha {QCFG['curation']['alpha']}" if QCFG["curation"]["alpha"] else "",
        window_scale=QCFG["curation"]["window_scale"],
        clip_len=QCFG["curation"]["clip_len"],
    log:
        "results/logs/curate_narrations/curate_narrations.log",
    benchmark:
        "results/benchmarks/curate_narrations/curate_narrations.tsv"
    resources:
        mem_mb=8000,
    conda:
        "../../envs/queries.yaml"
    shell:
        "exec python -m egonlq.cli curate --narrations {input.narrations:q} --videos {input.videos:q} --split-clips {input.split_clips:q}"
        " --split-queries {input.split_queries:q} {params.allow_train} {params.drop_other} --passes {params.passes}"
        " {params.alpha} --window-scale {params.window_scale} --clip-len {params.clip_len}"
        " --curated {output.curated:q} --assigned {output.assigned:q} --pseudo-clips {output.pseudo_clips:q}"
        " --stats {output.stats:q} > {log:q} 2>&1"


rule generate_queries:
    input:
        assigned="results/queries/assigned.parquet",
        prompt=repo_path(QCFG["generation"]["prompt"]),
        code=src_files("queries", "queries.blocks", "queries.llm_queries", "queries.curation"),
    output:
        table="results/queries/{generator}/shards/shard{shard}.parquet",
        stats="results/queries/{generator}/shards/shard{shard}.json",
    params:
        # The append-only cache is not an output: Snakemake must not delete it, so a killed job resumes.
        cache="results/queries/{generator}/cache/shard{shard}.jsonl",
        backend=lambda wc: GENERATORS[wc.generator]["backend"],
        options=lambda wc: json.dumps(GENERATORS[wc.generator]["options"], sort_keys=True),
        num_shards=NUM_SHARDS,
        block_size=QCFG["generation"]["block_size"],
        batch_size=QCFG["generation"]["batch_size"],
        retries=QCFG["generation"]["retries"],
        zero_length=QCFG["generation"]["zero_length"],
        min_window_sec=QCFG["generation"]["min_window_sec"],
    log:
        "results/logs/generate_queries/{generator}_shard{shard}.log",
    benchmark:
        "results/benchmarks/generate_queries/{generator}_shard{shard}.tsv"
    resources:
        mem_mb=8000,
        gpu=lambda wc: GPU_REQUEST if GENERATORS[wc.generator]["backend"] == "hf" else 0,
    conda:
        "../../envs/queries.yaml"
    shell:
        "exec python -m egonlq.cli generate-queries --backend {params.backend:q} --backend-options {params.options:q}"
        " --assigned {input.assigned:q} --prompt {input.prompt:q} --block-size {params.block_size}"
        " --shard {wildcards.shard} --num-shards {params.num_shards} --batch-size {params.batch_size}"
        " --retries {params.retries} --zero-length {params.zero_length} --min-window-sec {params.min_window_sec}"
        " --cache {params.cache:q} --out {output.table:q} --stats {output.stats:q} > {log:q} 2>&1"


rule merge_queries:
    input:
        shards=expand("results/queries/{{generator}}/shards/shard{shard}.parquet", shard=range(NUM_SHARDS)),
        stats=expand("results/queries/{{generator}}/shards/shard{shard}.json", shard=range(NUM_SHARDS)),
        pseudo_clips="results/queries/pseudo_clips.parquet",
        code=src_files("queries", "queries.llm_queries", "queries.curation"),
    output:
        table="results/queries/{generator}/generated.parquet",
        stats="results/queries/{generator}/stats.json",
        export="results/queries/{generator}/nlq_train.json",
    log:
        "results/logs/merge_queries/{generator}.log",
    conda:
        "../../envs/queries.yaml"
    shell:
        "exec python -m egonlq.cli merge-queries --shards {input.shards:q} --shard-stats {input.stats:q}"
        " --pseudo-clips {input.pseudo_clips:q} --out {output.table:q} --stats {output.stats:q}"
        " --export {output.export:q} > {log:q} 2>&1"


if REPHRASE["enabled"]:

    rule rephrase_queries:
        input:
            rows=(
                "results/queries/assigned.parquet"
                if REPHRASE["origin"] == "narration"
                else f"results/queries/{REPHRASE['origin']}/generated.parquet"
            ),
            prompt=repo_path(REPHRASE["prompt"]),
            code=src_files("queries", "queries.llm_queries", "queries.curation"),
        output:
            table="results/queries/rephrase/generated.parquet",
            stats="results/queries/rephrase/stats.json",
        params:
            cache="results/queries/rephrase/cache/rephrase.jsonl",
            narrations="--narrations" if REPHRASE["origin"] == "narration" else "",
            backend=GENERATORS[REPHRASE["generator"]]["backend"],
            options=json.dumps(GENERATORS[REPHRASE["generator"]]["options"], sort_keys=True),
            num_variants=REPHRASE["num_variants"],
            prompt_style=REPHRASE["prompt_style"],
            batch_size=QCFG["generation"]["batch_size"],
        log:
            "results/logs/rephrase_queries/rephrase_queries.log",
        conda:
            "../../envs/queries.yaml"
        shell:
            "exec python -m egonlq.cli rephrase --backend {params.backend:q} --backend-options {params.options:q}"
            " --input {input.rows:q} {params.narrations} --prompt {input.prompt:q}"
            " --num-variants {params.num_variants} --prompt-style {params.prompt_style:q}"
            " --batch-size {params.batch_size} --cache {params.cache:q}"
            " --out {output.table:q} --stats {output.stats:q} > {log:q} 2>&1"

rule naq:
    input:
        unpack(naq_inputs),
    output:
        table="results/queries/naq/naq.parquet",
        clips="results/queries/naq/clips.parquet",
        naq_json="results/queries/naq/naq_train.json",
        merged_json="results/queries/naq/nlq_aug_naq_train.json",
        stats="results/queries/naq/stats.json",
    params:
        windows=lambda wc, input: (
            f"--egoclip {shlex.quote(input.egoclip)}" if EGOCLIP
            else f"--narrations {shlex.quote(input.narrations)} --videos {shlex.quote(input.videos)}"
        ),
        subsample="" if QCFG["naq"]["subsample_v1"] else "--no-subsample",
        seed=QCFG["naq"]["seed"],
        alpha=f"--alpha {QCFG['curation']['alpha']}" if QCFG["curation"]["alpha"] else "",
    log:
        "results/logs/naq/naq.log",
    benchmark:
        "results/benchmarks/naq/naq.tsv"
    resources:
        mem_mb=8000,
    conda:
        "../../envs/queries.yaml"
    shell:
        "exec python -m egonlq.cli naq {params.windows} {params.alpha} --em-train {input.em_train:q} --nlq-train {input.nlq_train:q}"
        " {params.subsample} --seed {params.seed} --table {output.table:q} --clips {output.clips:q}"
        " --naq-json {output.naq_json:q} --merged-json {output.merged_json:q} --stats {output.stats:q} > {log:q} 2>&1"


rule training_queries:
    input:
        **training_queries_inputs(),
    output:
        queries="results/queries/training_queries.parquet",
        clips="results/queries/training_clips.parquet",
        stats="results/queries/training_stats.json",
    params:
        extra="",  # the narrator's training set adds its queries (narrator.smk)
    log:
        "results/logs/training_queries/training_queries.log",
    conda:
        "../../envs/queries.yaml"
    shell:
        "exec python -m egonlq.cli training-queries --nlq-queries {input.nlq_queries:q} --nlq-clips {input.nlq_clips:q}"
        " --naq {input.naq:q} --naq-clips {input.naq_clips:q} --generated {input.generated:q}"
        " --pseudo-clips {input.pseudo_clips:q} --guard-clips {input.guard_clips:q}"
        " --guard-queries {input.guard_queries:q} {params.extra} --queries-out {output.queries:q}"
        " --clips-out {output.clips:q} --stats {output.stats:q} > {log:q} 2>&1"
