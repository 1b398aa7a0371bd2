# The dual encoder's features as VSLNet input (one experiment run, planned by `dual_encoder`): the frozen video
# tower of one dual encoder run x seed writes a new per-video feature set on the input set's grid
# (egonlq.dualenc.features); its clip tables feed the VSLNet run `baseline` (an experiment run from scratch),
# trained and scored at the experiment seeds; the table sets it against the same run on the input features.
# Included by dualenc.smk when DE_VF (dual_encoder.vslnet_features, or its defaults) can be planned.


rule dualenc_features:
    input:
        model=f"{de_dir(DE_VF['run'], DE_VF['seed'])}/model.safetensors",
        features=FEATURE_INPUT,
        code=src_files("dualenc", "dualenc.features"),
    output:
        manifest=f"{DE_VF_DIR}/manifest.json",
        sidecar=f"{DE_VF_DIR}/feature_set.json",
        stats=f"results/dualenc/features/{DE_VF_NAME}_stats.json",
    params:
        model_dir=lambda wc, input: Path(input.model).parent,
        feature_dir=lambda wc, input: folder_of(input.features),
        out_dir=lambda wc, output: Path(output.manifest).parent,
        input_set=FEATURE_NAME,
        text_model=DECFG["text_encoder"],
        window_rows=DE_VF["window_rows"],
        name=DE_VF_NAME,
        backbone=f"dual encoder {DE_VF['run']} seed {DE_VF['seed']}",
    log:
        f"results/logs/dualenc_features/{DE_VF_NAME}.log",
    benchmark:
        f"results/benchmarks/dualenc_features/{DE_VF_NAME}.tsv"
    threads: 2
    resources:
        mem_mb=4000,
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-features --model-dir {params.model_dir:q} --text-model {params.text_model:q}"
        " --feature-dir {params.feature_dir:q} --feature-set {params.input_set:q} --window-rows {params.window_rows}"
        " --name {params.name:q} --backbone {params.backbone:q} --threads {threads} --out-dir {params.out_dir:q}"
        " --stats {output.stats:q} > {log:q} 2>&1"


use rule clip_features as dualenc_clip_features with:
    input:
        clips="results/data/nlq/{split}_clips.parquet",
        videos="results/data/videos.parquet",
        features=rules.dualenc_features.output.manifest,
        code=src_files("data", "data.features", "data.feature_sets", "data.tables"),
    output:
        table=f"{DE_VF_TABLES}/{{split}}_clips.parquet",
        shapes=f"{DE_VF_TABLES}/{{split}}_feature_shapes.json",
        stats=f"{DE_VF_TABLES}/{{split}}_stats.json",
    params:
        dim=DE_VF_DIM,
        feature_set=DE_VF_NAME,
    log:
        f"results/logs/dualenc_clip_features/{DE_VF_NAME}_{{split}}.log",
    benchmark:
        f"results/benchmarks/dualenc_clip_features/{DE_VF_NAME}_{{split}}.tsv"


use rule training_clip_features as dualenc_training_clip_features with:
    input:
        clips="results/queries/training_clips.parquet",
        videos="results/data/videos.parquet",
        features=rules.dualenc_features.output.manifest,
        code=src_files("data", "data.features", "data.feature_sets", "data.tables"),
    output:
        table=f"{DE_VF_TABLES}/training_clips.parquet",
        shapes=f"{DE_VF_TABLES}/training_feature_shapes.json",
        stats=f"{DE_VF_TABLES}/training_stats.json",
    params:
        dim=DE_VF_DIM,
        feature_set=DE_VF_NAME,
    log:
        f"results/logs/dualenc_training_clip_features/{DE_VF_NAME}.log",
    benchmark:
        f"results/benchmarks/dualenc_training_clip_features/{DE_VF_NAME}.tsv"


use rule train_vslnet as train_vslnet_dualenc_features with:
    input:
        unpack(de_vslnet_train_inputs),
    output:
        model=f"{de_vslnet_dir('{seed}')}/model.safetensors",
        config=f"{de_vslnet_dir('{seed}')}/config.json",
        metrics=f"{de_vslnet_dir('{seed}')}/metrics.csv",
        summary=f"{de_vslnet_dir('{seed}')}/summary.json",
    params:
        spec=lambda wc: json.dumps(
            RUNS[DE_VF["baseline"]].train_spec_dict(int(wc.seed)) | {"text": VCFG["text"]}, sort_keys=True
        ),
        out_dir=lambda wc, output: Path(output.model).parent,
        video_dim=DE_VF_DIM,
    log:
        f"results/logs/train_vslnet_dualenc_features/{DE_VF_NAME}_seed{{seed}}.log",
    benchmark:
        f"results/benchmarks/train_vslnet_dualenc_features/{DE_VF_NAME}_seed{{seed}}.tsv"


use rule predict_vslnet as predict_vslnet_dualenc_features with:
    input:
        unpack(de_vslnet_predict_inputs),
    output:
        f"results/predictions/{de_vslnet_predictor('{seed}')}/{{split}}.json",
    params:
        label_mode=RUNS[DE_VF["baseline"]].label_mode,
    log:
        f"results/logs/predict_vslnet_dualenc_features/{DE_VF_NAME}_seed{{seed}}_{{split}}.log",


rule dualenc_feature_table:
    input:
        baseline=[f"results/eval/{predictor_name(DE_VF['baseline'], s)}/val.json" for s in SEEDS],
        dualenc=[f"results/eval/{de_vslnet_predictor(s)}/val.json" for s in SEEDS],
        code=src_files("dualenc", "dualenc.feature_table"),
    output:
        parquet="results/dualenc/vslnet_features.parquet",
        markdown=report("results/dualenc/vslnet_features.md", caption="../report/dualenc_vslnet.rst",
                        category="4. Dual encoder"),
    params:
        baseline=FEATURE_NAME,
        dualenc=DE_VF_NAME,
        synthetic="--synthetic" if IS_DEMO else "",
    log:
        "results/logs/dualenc_feature_table/dualenc_feature_table.log",
    conda:
        "../../envs/dualenc.yaml"
    shell:
        "exec python -m egonlq.cli dualenc-feature-table --baseline-label {params.baseline:q} --baseline {input.baseline:q}"
        " --dualenc-label {params.dualenc:q} --dualenc {input.dualenc:q} {params.synthetic}"
        " --parquet {output.parquet:q} --markdown {output.markdown:q} > {log:q} 2>&1"
