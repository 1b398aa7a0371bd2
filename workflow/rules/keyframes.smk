# Keyframes: decord-read videos encoded frame by frame (features in the official per-video layout plus
# per-frame embeddings), query relevance scores, AKS and baseline selections, and whether they find the moment.

from snakemake.logging import logger

KCFG = config["keyframes"]
KSPLIT = KCFG["split"]
VIDEO_DIR = data_path(DATA["videos"])
# The demo's rendered videos come with a manifest (one file for the DAG); real videos are a folder.
VIDEO_INPUT = f"{VIDEO_DIR}/manifest.json" if IS_DEMO else VIDEO_DIR
# auto: the demo's encoder for its rendered frames, CLIP for real videos
ENCODER = KCFG["encoder"] if KCFG["encoder"] != "auto" else ("demo" if IS_DEMO else "clip")
_KEYFRAMES_BLOCKERS = [
    *([] if IS_DEMO or Path(VIDEO_DIR).is_dir() else [f"no video folder {VIDEO_DIR} (data.videos)"]),
    *([] if ENCODER != "clip" or KCFG["clip_model"] else ["keyframes.encoder is clip but clip_model is not set"]),
]
if KCFG["enabled"] == "auto":
    KEYFRAMES_ON = not _KEYFRAMES_BLOCKERS
    if not KEYFRAMES_ON:
        logger.info(f"keyframes (enabled: auto) are off: {'; '.join(_KEYFRAMES_BLOCKERS)}")
elif KCFG["enabled"] and _KEYFRAMES_BLOCKERS:
    raise ValueError(f"config.yaml: keyframes.enabled is true, but: {'; '.join(_KEYFRAMES_BLOCKERS)}")
else:
    KEYFRAMES_ON = KCFG["enabled"]
ENCODER_TAG = "demo" if ENCODER == "demo" else f"clip_{Path(KCFG['clip_model'] or 'none').name}"
# the CLIP folder is an input: replacing the model reruns the encoding
ENCODER_INPUT = {"clip_model": KCFG["clip_model"]} if ENCODER == "clip" and KCFG["clip_model"] else {}
FRAMES_DIR = f"results/frames/{ENCODER_TAG}"
FRAME_CODE = ("video.frame_features", "video.frame_encoders", "data.tables")
KEYFRAME_CODE = (*FRAME_CODE, "video.keyframes", "video.scorers", "video.aks")


def vslnet_scorer_tags():
    tags = []
    for run in KCFG["vslnet_scorers"]:
        if run not in RUNS:
            raise ValueError(
                f"config.yaml: keyframes.vslnet_scorers names {run!r}, which is not a run of experiments.runs "
                f"({', '.join(RUNS) or 'none'})"
            )
        tags.append(f"vslnet_{run}_seed{SEEDS[0]}")
    return tags


SCORER_TAGS = [f"encoder_{ENCODER_TAG}", *vslnet_scorer_tags()]


def keyframe_targets():
    if not KEYFRAMES_ON:
        return []
    return [f"{FRAMES_DIR}/features/manifest.json", "results/keyframes/moment_hits.md"]


def keyframe_params():
    """Selection parameters shared by every scorer (params, so that editing one reruns the selections)."""
    return {
        "aks": json.dumps(KCFG["aks"], sort_keys=True),
        "methods": " ".join(KCFG["methods"]),
        "rate": KCFG["frame_rate"],
        "batch": KCFG["batch_size"],
        "save": KCFG["save_frames"],
    }


def keyframe_command(tag):
    """The shared tail of the keyframes command: selection parameters and the outputs of scorer ``tag``."""
    return (
        " --videos {input.videos} --aks '{params.aks}' --methods {params.methods} --sample-rate {params.rate}"
        " --batch-size {params.batch} --save-frames {params.save} --threads {threads}"
        f" --progress results/keyframes/{tag}/progress.jsonl --scores {{output.scores}}"
        " --selection {output.selection} --frames-dir {output.frames} --stats {output.stats}"
    )


def keyframe_outputs(tag):
    return {
        "scores": f"results/keyframes/{tag}/scores.parquet",
        "selection": f"results/keyframes/{tag}/selection.parquet",
        "frames": directory(f"results/keyframes/{tag}/frames"),
        "stats": f"results/keyframes/{tag}/stats.json",
    }


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
        video_dir=VIDEO_DIR,
        encoder=ENCODER,
        model=f"--model-path {KCFG['clip_model']}" if ENCODER == "clip" else "",
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
        "{CLI} frame-features --clips {input.clips} --videos {input.videos} --video-dir {params.video_dir}"
        " --encoder {params.encoder} {params.model} --frame-rate {params.rate} --batch-size {params.batch}"
        " --threads {threads} --out-dir $(dirname {output.features}) --frames {output.frames}"
        " --stats {output.stats} > {log} 2>&1"


rule keyframes_encoder:
    input:
        queries=f"results/data/nlq/{KSPLIT}_queries.parquet",
        clips=f"results/data/nlq/{KSPLIT}_clips.parquet",
        videos="results/data/videos.parquet",
        frames=f"{FRAMES_DIR}/frame_embeddings.parquet",
        mp4=VIDEO_INPUT,
        **ENCODER_INPUT,
        code=src_files("video", *KEYFRAME_CODE),
    output:
        **keyframe_outputs(f"encoder_{ENCODER_TAG}"),
    params:
        **keyframe_params(),
        video_dir=VIDEO_DIR,
        encoder=ENCODER,
        model=f"--model-path {KCFG['clip_model']}" if ENCODER == "clip" else "",
    log:
        f"results/logs/keyframes/encoder_{ENCODER_TAG}.log",
    benchmark:
        f"results/benchmarks/keyframes/encoder_{ENCODER_TAG}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
    conda:
        "../../envs/video.yaml"
    shell:
        "{CLI} keyframes --queries {input.queries} --clips {input.clips} --video-dir {params.video_dir}"
        " --scorer encoder --encoder {params.encoder} {params.model} --frame-table {input.frames}"
        + keyframe_command(f"encoder_{ENCODER_TAG}")
        + " > {log} 2>&1"


def vslnet_scorer_inputs(wc):
    inputs = {
        "queries": f"results/data/nlq/{KSPLIT}_queries.parquet",
        "clips": f"results/data/nlq/{KSPLIT}_clips.parquet",
        "videos": "results/data/videos.parquet",
        "features": f"results/features/{KSPLIT}_clips.parquet",
        "model": f"{checkpoint_dir(wc.run, wc.seed)}/model.safetensors",
        "text_cache": TEXT_CACHE,
        "mp4": VIDEO_INPUT,
        "code": src_files("video", *KEYFRAME_CODE, "grounding.text_encoder"),
    }
    return inputs


rule keyframes_vslnet:
    input:
        unpack(vslnet_scorer_inputs),
    output:
        **keyframe_outputs("vslnet_{run}_seed{seed}"),
    params:
        **keyframe_params(),
        video_dir=VIDEO_DIR,
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
        "{CLI} keyframes --queries {input.queries} --clips {input.clips} --video-dir {params.video_dir}"
        " --scorer vslnet --vslnet-dir {params.model_dir} --clip-features {input.features}"
        " --text-cache {input.text_cache} --label-mode {params.label_mode} --unit-score {params.unit_score}"
        + keyframe_command("vslnet_{wildcards.run}_seed{wildcards.seed}")
        + " > {log} 2>&1"


rule moment_hits:
    input:
        selections=[f"results/keyframes/{tag}/selection.parquet" for tag in SCORER_TAGS],
        queries=f"results/data/nlq/{KSPLIT}_queries.parquet",
        clips=f"results/data/nlq/{KSPLIT}_clips.parquet",
        code=src_files("video", "video.moment_hits", "video.keyframes", "data.tables"),
    output:
        parquet="results/keyframes/moment_hits.parquet",
        markdown=report("results/keyframes/moment_hits.md", caption="../report/moment_hits.rst",
                        category="4. Keyframes"),
        plot=report("results/keyframes/moment_hits.png", caption="../report/moment_hits.rst",
                    category="4. Keyframes"),
    params:
        synthetic="--synthetic" if IS_DEMO else "",
    log:
        "results/logs/moment_hits/moment_hits.log",
    conda:
        "../../envs/video.yaml"
    shell:
        "{CLI} moment-hits --selections {input.selections} --queries {input.queries} --clips {input.clips}"
        " {params.synthetic} --parquet {output.parquet} --markdown {output.markdown} --plot {output.plot}"
        " > {log} 2>&1"
