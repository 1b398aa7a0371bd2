# Clip features: per-video feature files cut into per-clip arrays by the official rule, stored as parquet.


rule clip_features:
    input:
        clips="results/data/nlq/{split}_clips.parquet",
        videos="results/data/videos.parquet",
        features=FEATURE_INPUT,
        code=src_files("data", "data.features", "data.tables"),
    output:
        table="results/features/{split}_clips.parquet",
        shapes="results/features/{split}_feature_shapes.json",
        stats="results/features/{split}_stats.json",
    params:
        feature_dir=FEATURE_DIR,
        dim=FEATURE_DIM,
        mode=config["features"]["cut_mode"],
    log:
        "results/logs/clip_features/{split}.log",
    benchmark:
        "results/benchmarks/clip_features/{split}.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../../envs/data.yaml"
    shell:
        "{CLI} clip-features --clips {input.clips} --videos {input.videos} --feature-dir {params.feature_dir}"
        " --dim {params.dim} --mode {params.mode} --out {output.table} --shapes {output.shapes}"
        " --stats {output.stats} > {log} 2>&1"


rule training_clip_features:
    input:
        clips="results/queries/training_clips.parquet",
        videos="results/data/videos.parquet",
        features=FEATURE_INPUT,
        code=src_files("data", "data.features", "data.tables"),
    output:
        table="results/features/training_clips.parquet",
        shapes="results/features/training_feature_shapes.json",
        stats="results/features/training_stats.json",
    params:
        feature_dir=FEATURE_DIR,
        dim=FEATURE_DIM,
        mode=config["features"]["cut_mode"],
    log:
        "results/logs/training_clip_features/training_clip_features.log",
    benchmark:
        "results/benchmarks/training_clip_features/training_clip_features.tsv"
    resources:
        mem_mb=8000,
    conda:
        "../../envs/data.yaml"
    shell:
        # NaQ's VQ/MQ clips may lack features in real downloads: skipped and counted, never silently lost.
        "{CLI} clip-features --clips {input.clips} --videos {input.videos} --feature-dir {params.feature_dir}"
        " --dim {params.dim} --mode {params.mode} --on-missing skip --out {output.table}"
        " --shapes {output.shapes} --stats {output.stats} > {log} 2>&1"
