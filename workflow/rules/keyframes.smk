# Keyframes: decord-read videos encoded frame by frame (features in the official per-video layout plus
# per-frame embeddings), query relevance scores, AKS and baseline selections, and whether they find the moment.

from snakemake.logging import logger

from egonlq.video.aks import PARAMETER_SETS

KCFG = config["keyframes"]
KSPLIT = KCFG["split"]
VIDEO_DIR = data_path(DATA["videos"])
# The demo's rendered videos come with a manifest (one file for the DAG); real videos are a folder.
VIDEO_INPUT = f"{VIDEO_DIR}/manifest.json" if IS_DEMO else VIDEO_DIR
# auto: the demo's encoder for its rendered frames, CLIP for real videos; blip: ITC frame embeddings, ITM or
# ITC scores (keyframes.blip_head)
ENCODER = KCFG["encoder"] if KCFG["encoder"] != "auto" else ("demo" if IS_DEMO else "clip")
MODEL_PATH = {"clip": KCFG["clip_model"], "blip": KCFG["blip_model"]}.get(ENCODER)
_KEYFRAMES_BLOCKERS = [
    *([] if IS_DEMO or Path(VIDEO_DIR).is_dir() else [f"no video folder {VIDEO_DIR} (data.videos)"]),
    *([] if ENCODER == "demo" or MODEL_PATH else [f"keyframes.encoder is {ENCODER} but {ENCODER}_model is not set"]),
]
if KCFG["enabled"] == "auto":
    KEYFRAMES_ON = not _KEYFRAMES_BLOCKERS
    if not KEYFRAMES_ON:
        logger.info(f"keyframes (enabled: auto) are off: {'; '.join(_KEYFRAMES_BLOCKERS)}")
elif KCFG["enabled"] and _KEYFRAMES_BLOCKERS:
    raise ValueError(f"config.yaml: keyframes.enabled is true, but: {'; '.join(_KEYFRAMES_BLOCKERS)}")
else:
    KEYFRAMES_ON = KCFG["enabled"]
ENCODER_TAG = "demo" if ENCODER == "demo" else f"{ENCODER}_{Path(MODEL_PATH or 'none').name}"
# the scorer: BLIP's ITM head scores (image, text) pairs, not the frame embeddings
SCORER_TAG = f"{ENCODER_TAG}_itm" if ENCODER == "blip" and KCFG["blip_head"] == "itm" else ENCODER_TAG
# the model folder is an input: replacing the model reruns the encoding
ENCODER_INPUT = {"model_path": MODEL_PATH} if ENCODER != "demo" and MODEL_PATH else {}
MODEL_ARG = f"--model-path {shlex.quote(MODEL_PATH)}" if ENCODER != "demo" and MODEL_PATH else ""
FRAMES_DIR = f"results/frames/{ENCODER_TAG}"
FRAME_CODE = ("video.frame_features", "video.frame_encoders", "data.tables")
KEYFRAME_CODE = (*FRAME_CODE, "video.keyframes", "video.scorers", "video.aks", "data.summaries")

SCORER_TAGS = [f"encoder_{SCORER_TAG}", *vslnet_scorer_tags()]
# summary-guided selections of the encoder scorer (keyframes.text_sources): tags encoder_<enc>_summary / _both
SUMMARY_TAGS = [f"encoder_{SCORER_TAG}_{t}" for t in KCFG["text_sources"] if t != "query"]


rule clip_summaries:
    input:
        summaries="results/data/summaries.parquet",
        clips="results/data/nlq/{split}_clips.parquet",
        code=src_files("video", "data.summaries", "data.tables"),
    output:
        parquet="results/keyframes/summaries/nlq_{split}_summaries.parquet",
        json="results/keyframes/summaries/nlq_{split}_summaries.json",
        stats="results/keyframes/summaries/nlq_{split}_stats.json",
    log:
        "results/logs/clip_summaries/{split}.log",
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli clip-summaries --summaries {input.summaries:q} --clips {input.clips:q}"
        " --parquet {output.parquet:q} --json {output.json:q} --stats {output.stats:q} > {log:q} 2>&1"


rule frame_features:
    input:
        clips=f"results/data/nlq/{KSPLIT}_clips.parquet",
        videos="results/data/videos.parquet",
        mp4=VIDEO_INPUT,
        **ENCODER_INPUT,
        code=src_files("video", *FRAME_CODE),
    output:
        # <video_uid>.pt files ([N, D] at 1.875 rows/s, the official layout) listed by the manifest
        features=f"{FRAMES_DIR}/features/manifest.json",
        frames=f"{FRAMES_DIR}/frame_embeddings.parquet",
        stats=f"{FRAMES_DIR}/stats.json",
    params:
        video_dir=lambda wc, input: folder_of(input.mp4),
        encoder=ENCODER,
        model=MODEL_ARG,
        rate=KCFG["frame_rate"],
        batch=KCFG["batch_size"],
    log:
        f"results/logs/frame_features/{ENCODER_TAG}.log",
    benchmark:
        f"results/benchmarks/frame_features/{ENCODER_TAG}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli frame-features --clips {input.clips:q} --videos {input.videos:q} --video-dir {params.video_dir:q}"
        " --encoder {params.encoder:q} {params.model} --frame-rate {params.rate} --batch-size {params.batch}"
        " --threads {threads} --out-dir $(dirname {output.features:q}) --frames {output.frames:q}"
        " --stats {output.stats:q} > {log:q} 2>&1"


rule keyframes_encoder:
    # {text}: "" scores with the query, "_summary" / "_both" with the clip summary (keyframes.text_sources)
    input:
        summaries=f"results/keyframes/summaries/nlq_{KSPLIT}_summaries.parquet",
        queries=f"results/data/nlq/{KSPLIT}_queries.parquet",
        clips=f"results/data/nlq/{KSPLIT}_clips.parquet",
        videos="results/data/videos.parquet",
        frames=f"{FRAMES_DIR}/frame_embeddings.parquet",
        mp4=VIDEO_INPUT,
        **ENCODER_INPUT,
        code=src_files("video", *KEYFRAME_CODE),
    output:
        **keyframe_outputs(f"encoder_{SCORER_TAG}{{text}}"),
    params:
        **keyframe_params(),
        text_source=lambda wc: wc.text.removeprefix("_") or "query",
        summary_weight=KCFG["summary_weight"],
        video_dir=lambda wc, input: folder_of(input.mp4),
        encoder=ENCODER,
        model=MODEL_ARG,
        blip_head=KCFG["blip_head"],
    log:
        f"results/logs/keyframes/encoder_{SCORER_TAG}{{text}}.log",
    benchmark:
        f"results/benchmarks/keyframes/encoder_{SCORER_TAG}{{text}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli keyframes --queries {input.queries:q} --clips {input.clips:q} --video-dir {params.video_dir:q}"
        " --scorer encoder --encoder {params.encoder:q} {params.model} --blip-head {params.blip_head}"
        " --frame-table {input.frames:q}"
        " --text-source {params.text_source} --summaries {input.summaries:q} --summary-weight {params.summary_weight}"
        + keyframe_command(f"encoder_{SCORER_TAG}{{wildcards.text}}")
        + " > {log:q} 2>&1"

rule keyframes_vslnet:
    input:
        unpack(vslnet_scorer_inputs),
    output:
        **keyframe_outputs("vslnet_{run}_seed{seed}"),
    params:
        **keyframe_params(),
        video_dir=lambda wc, input: folder_of(input.mp4),
        model_dir=lambda wc, input: Path(input.model).parent,
        # the run's own label mode (a run may override the global one); the scorer checks it against the
        # train_spec.json saved with the checkpoint
        label_mode=lambda wc: RUNS[wc.run].label_mode,
        unit_score=KCFG["unit_score"],
    log:
        "results/logs/keyframes/vslnet_{run}_seed{seed}.log",
    benchmark:
        "results/benchmarks/keyframes/vslnet_{run}_seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli keyframes --queries {input.queries:q} --clips {input.clips:q} --video-dir {params.video_dir:q}"
        " --scorer vslnet --vslnet-dir {params.model_dir:q} --clip-features {input.features:q}"
        " --text-cache {input.text_cache:q} --label-mode {params.label_mode:q} --unit-score {params.unit_score}"
        + keyframe_command("vslnet_{wildcards.run}_seed{wildcards.seed}")
        + " > {log:q} 2>&1"


rule keyframes_dual_encoder:
    # a trained dual encoder (dualenc.smk) as the scorer: keyframes.dualenc_scorers, the keyframes_dualenc target
    input:
        unpack(dualenc_scorer_inputs),
    output:
        **keyframe_outputs("dualenc_{derun}_seed{seed}"),
    params:
        **keyframe_params(),
        video_dir=lambda wc, input: folder_of(input.mp4),
        model_dir=lambda wc, input: Path(input.model).parent,
        feature_dir=lambda wc, input: folder_of(input.features),
        text_model=lambda wc: DECFG["text_encoder"],
    wildcard_constraints:
        derun="[^/]+",
        seed=r"\d+",
    log:
        "results/logs/keyframes/dualenc_{derun}_seed{seed}.log",
    benchmark:
        "results/benchmarks/keyframes/dualenc_{derun}_seed{seed}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli keyframes --queries {input.queries:q} --clips {input.clips:q} --video-dir {params.video_dir:q}"
        " --scorer dualenc --dualenc-dir {params.model_dir:q} --feature-dir {params.feature_dir:q}"
        " --text-cache {input.text_cache:q} --text-model {params.text_model:q}"
        + keyframe_command("dualenc_{wildcards.derun}_seed{wildcards.seed}")
        + " > {log:q} 2>&1"


rule keyframes_aks_set:
    # the selections of a named AKS parameter set other than keyframes.aks, from a scorer's stored scores
    # (nothing is scored again): results/keyframes/aks_<set>/<scorer>/, e.g. the keyframe recipe's "seed"
    input:
        scores="results/keyframes/{ktag}/scores.parquet",
        code=src_files("video", "video.keyframes"),
    output:
        selection="results/keyframes/aks_{akset}/{ktag}/selection.parquet",
        stats="results/keyframes/aks_{akset}/{ktag}/stats.json",
    params:
        methods=" ".join(KCFG["methods"]),
    wildcard_constraints:
        akset="|".join(PARAMETER_SETS),
        ktag="[^/]+",
    log:
        "results/logs/keyframes_aks_set/{akset}_{ktag}.log",
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli keyframes-select --scores {input.scores:q} --aks {wildcards.akset:q}"
        " --methods {params.methods} --selection {output.selection:q} --stats {output.stats:q} > {log:q} 2>&1"


rule keyframe_recipe:
    # issue 17's keyframe recipe: AKS at the source's defaults (set "seed") against uniform and top-k
    input:
        selections=keyframe_recipe_selections,
        queries=f"results/data/nlq/{KSPLIT}_queries.parquet",
        clips=f"results/data/nlq/{KSPLIT}_clips.parquet",
        code=src_files("video", "video.keyframe_recipe", "video.keyframes", "data.tables"),
    output:
        parquet="results/recipes/keyframes/table.parquet",
        markdown=report("results/recipes/keyframes/table.md", caption="../report/keyframe_recipe.rst",
                        category="4. Recipes", labels={"recipe": "keyframes", "figure": "table"}),
        plot=report("results/recipes/keyframes/plot.png", caption="../report/keyframe_recipe_plot.rst",
                    category="4. Recipes", labels={"recipe": "keyframes", "figure": "plot"}),
    params:
        synthetic="--synthetic" if IS_DEMO else "",
    log:
        "results/logs/keyframe_recipe/keyframe_recipe.log",
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli keyframe-recipe --selections {input.selections:q} --queries {input.queries:q}"
        " --clips {input.clips:q} {params.synthetic} --parquet {output.parquet:q} --markdown {output.markdown:q}"
        " --plot {output.plot:q} > {log:q} 2>&1"


rule recipe_keyframes:
    input:
        rules.keyframe_recipe.output.markdown,
    localrule: True


rule keyframes_dualenc:
    input:
        lambda wc: keyframes_dualenc_target(),
    localrule: True


rule moment_hits:
    # also the summary-coverage table: query-guided, summary-guided and uniform selections at the same M
    input:
        selections=moment_hit_selections,
        guided=[f"results/keyframes/{tag}/selection.parquet" for tag in SUMMARY_TAGS],
        queries=f"results/data/nlq/{KSPLIT}_queries.parquet",
        clips=f"results/data/nlq/{KSPLIT}_clips.parquet",
        narrations="results/data/narrations.parquet",
        code=src_files("video", "video.moment_hits", "video.summary_coverage", "video.keyframes", "data.tables"),
    output:
        parquet="results/keyframes/moment_hits.parquet",
        markdown=report("results/keyframes/moment_hits.md", caption="../report/moment_hits.rst",
                        category="4. Keyframes"),
        plot=report("results/keyframes/moment_hits.png", caption="../report/moment_hits.rst",
                    category="4. Keyframes"),
        coverage="results/keyframes/summary_coverage.parquet",
        coverage_md=report("results/keyframes/summary_coverage.md", caption="../report/summary_coverage.rst",
                           category="4. Keyframes"),
    params:
        synthetic="--synthetic" if IS_DEMO else "",
        window=KCFG["coverage_window"],
    log:
        "results/logs/moment_hits/moment_hits.log",
    conda:
        "../../envs/video.yaml"
    shell:
        "exec python -m egonlq.cli moment-hits --selections {input.selections:q} --queries {input.queries:q} --clips {input.clips:q}"
        " {params.synthetic} --parquet {output.parquet:q} --markdown {output.markdown:q} --plot {output.plot:q}"
        " --summary-selections {input.guided:q} --narrations {input.narrations:q} --window {params.window}"
        " --coverage-parquet {output.coverage:q} --coverage-markdown {output.coverage_md:q} > {log:q} 2>&1"
