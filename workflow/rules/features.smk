# Clip features: per-video feature files cut into per-clip arrays by the official rule, stored as parquet.


rule clip_features:
    input:
        clips="results/data/nlq/{split}_clips.parquet",
        videos="results/data/videos.parquet",
        features=FEATURE_INPUT,
        code=src_files(*COMMON_CODE, "features.py", "timegrid.py", "tables.py"),
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
    shell:
        "{CLI} clip-features --clips {input.clips} --videos {input.videos} --feature-dir {params.feature_dir}"
        " --dim {params.dim} --mode {params.mode} --out {output.table} --shapes {output.shapes}"
        " --stats {output.stats} > {log} 2>&1"
