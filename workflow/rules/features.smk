# Clip features: per-video feature files cut into per-clip arrays by the official rule, stored as parquet.


rule clip_features:
    input:
        clips="results/data/nlq/{split}_clips.parquet",
        videos="results/data/videos.parquet",
        features=FEATURE_INPUT,
        code=src_files("data", "data.features", "data.feature_sets", "data.tables"),
    output:
        table="results/features/{split}_clips.parquet",
        shapes="results/features/{split}_feature_shapes.json",
        stats="results/features/{split}_stats.json",
    params:
        feature_dir=lambda wc, input: folder_of(input.features),
        dim=FEATURE_DIM,
        feature_set=FEATURE_NAME,  # its sidecar (or the known set's entry) gives the time-to-row grid
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
        "exec python -m egonlq.cli clip-features --clips {input.clips:q} --videos {input.videos:q} --feature-dir {params.feature_dir:q}"
        " --dim {params.dim} --feature-set {params.feature_set:q} --mode {params.mode:q} --out {output.table:q} --shapes {output.shapes:q}"
        " --stats {output.stats:q} > {log:q} 2>&1"


rule training_clip_features:
    input:
        clips="results/queries/training_clips.parquet",
        videos="results/data/videos.parquet",
        features=FEATURE_INPUT,
        code=src_files("data", "data.features", "data.feature_sets", "data.tables"),
    output:
        table="results/features/training_clips.parquet",
        shapes="results/features/training_feature_shapes.json",
        stats="results/features/training_stats.json",
    params:
        feature_dir=lambda wc, input: folder_of(input.features),
        dim=FEATURE_DIM,
        feature_set=FEATURE_NAME,  # its sidecar (or the known set's entry) gives the time-to-row grid
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
        "exec python -m egonlq.cli clip-features --clips {input.clips:q} --videos {input.videos:q} --feature-dir {params.feature_dir:q}"
        " --dim {params.dim} --feature-set {params.feature_set:q} --mode {params.mode:q} --on-missing skip --out {output.table:q}"
        " --shapes {output.shapes:q} --stats {output.stats:q} > {log:q} 2>&1"
