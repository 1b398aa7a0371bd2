# The embedded demo world: official-format Ego4D files with a learnable signal (synthetic data).
# Defined only when data.root is the demo's folder; real data are inputs, never outputs.

if IS_DEMO:

    rule demo_world:
        input:
            code=src_files("demo", "demo.world", "demo.goalstep"),
        output:
            metadata=data_path(DATA["metadata"]),
            nlq=[nlq_json(s) for s in SPLITS],
            test_gt=TEST_GT,
            narrations=data_path(DATA["narrations"]),
            egoclip=EGOCLIP,
            em_train=[data_path(p) for p in EM_TRAIN_FILES],
            goalstep=[data_path(f"v2/annotations/goalstep_{s}.json") for s in ("train", "valid", "test")],
            goalstep_groups=data_path("v2/annotations/goalstep_video_groups.tsv"),
            features=FEATURE_INPUT,
            videos=data_path(f"{DATA['videos']}/manifest.json"),
            stats="results/demo/stats.json",
        params:
            out=lambda wc, output: str(Path(output.metadata).parent),  # the data root
            preset=config["demo"]["preset"],
            seed=config["demo"]["seed"],
            feature_name=FEATURE_NAME,
            feature_dim=FEATURE_DIM,
            videos_dir=DATA["videos"],
        log:
            "results/logs/demo_world/demo_world.log",
        benchmark:
            "results/benchmarks/demo_world/demo_world.tsv"
        resources:
            mem_mb=4000,
        conda:
            "../../envs/data.yaml"
        shell:
            "exec python -m egonlq.cli demo-world --out {params.out:q} --preset {params.preset:q} --seed {params.seed}"
            " --feature-name {params.feature_name:q} --feature-dim {params.feature_dim} --videos-dir {params.videos_dir:q}"
            " --stats {output.stats:q} > {log:q} 2>&1"
