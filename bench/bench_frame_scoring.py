"""Frame scoring throughput (frames/s, decode included) on rendered demo videos: ours against the AKS loop.

The baseline stands for the published AKS code as a user runs it: its feature_extract.py loop, one decord
``VideoReader(num_threads=1)``, each sampled frame fetched on its own (``vr[i]``), turned into a PIL image and
encoded alone. Ours is ``egonlq.video.frame_features.encode_frames``: batched ``get_batch`` decoding and
batched encoding. Both run on the same frames of the same videos in this run, for each encoder: the offline
``DemoEncoder`` and a tiny random CLIP (``write_tiny_random_clip``; 32 px, 2 layers: it times the pipeline,
not a real CLIP), optionally a random CLIP with ViT-B/32 shapes (``--clip-base``; 224 px, the size of the AKS
``clip`` scorer). Embeddings of both paths are checked to match before timing. Throughputs are from the median
of ``--repeat`` (at least 3) runs; the seconds of each are printed with their min and max.

    python bench/bench_frame_scoring.py                          # tiny world: 1 video of ~112 s, all frames
    python bench/bench_frame_scoring.py --preset demo --videos 2 # two ~8-minute videos
    python bench/bench_frame_scoring.py --rate 1 --clip-base     # the AKS grid (1 frame/s), ViT-B/32 shapes
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import decord
import numpy as np
import torch
from PIL import Image

from egonlq.demo.world import build_world
from egonlq.video.decode import probe
from egonlq.video.frame_encoders import CLIPEncoder, DemoEncoder, FrameEncoder, write_tiny_random_clip
from egonlq.video.frame_features import encode_frames, sample_grid
from medians import check_repeat, median, run_times, spread


def reference_loop(path: Path, indices: np.ndarray, encoder: FrameEncoder) -> np.ndarray:
    """The AKS reference's way: frame by frame, through PIL, encoded one at a time."""
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    out = []
    for i in indices.tolist():
        image = Image.fromarray(vr[i].asnumpy())
        out.append(encoder.encode_images(np.asarray(image)[None])[0])
    return np.stack(out)


def ours(path: Path, indices: np.ndarray, encoder: FrameEncoder, batch_size: int) -> np.ndarray:
    return encode_frames(path, indices, encoder, batch_size=batch_size)


def write_base_clip(out_dir: Path) -> Path:
    """A random CLIP with the ViT-B/32 shapes (224 px, 12 layers, 512-d projection), tiny tokenizer."""
    from transformers import CLIPConfig, CLIPModel

    tiny = write_tiny_random_clip(out_dir)  # tokenizer and processor files, then replace the model
    config = CLIPConfig.from_pretrained(tiny)
    base = CLIPConfig(
        text_config={
            **config.text_config.to_dict(),
            "hidden_size": 512,
            "intermediate_size": 2048,
            "num_hidden_layers": 12,
            "num_attention_heads": 8,
        },
        vision_config={
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 32,
        },
        projection_dim=512,
    )
    CLIPModel(base).save_pretrained(out_dir)
    from transformers import CLIPImageProcessorPil

    crop = {"height": 224, "width": 224}
    CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size=crop).save_pretrained(out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny", choices=["tiny", "demo"])
    parser.add_argument("--videos", type=int, default=1, help="rendered videos to score")
    parser.add_argument("--rate", type=float, default=None, help="frames/s sampled (default: every frame)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CLIP)")
    parser.add_argument("--clip-base", action="store_true", help="also a random CLIP of ViT-B/32 shapes")
    args = parser.parse_args()
    check_repeat(args.repeat)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        build_world(tmp / "world", preset=args.preset, write_features=False, render_videos=args.videos)
        videos = sorted((tmp / "world" / "v1" / "full_scale").glob("*.mp4"))
        jobs = []
        for path in videos:
            info = probe(path)
            indices = np.arange(info.num_frames) if args.rate is None else sample_grid(info, args.rate)[0]
            jobs.append((path, indices))
        n_frames = sum(len(i) for _, i in jobs)
        encoders: list[tuple[str, FrameEncoder]] = [
            ("demo-visual-code", DemoEncoder()),
            (
                "clip tiny (32 px)",
                CLIPEncoder(write_tiny_random_clip(tmp / "clip-tiny"), batch_size=args.batch_size),
            ),
        ]
        if args.clip_base:
            encoders.append(
                (
                    "clip ViT-B/32 shapes",
                    CLIPEncoder(write_base_clip(tmp / "clip-base"), batch_size=args.batch_size),
                )
            )
        grid = "every frame" if args.rate is None else f"{args.rate} frames/s"
        print(
            f"{len(videos)} video(s), {n_frames} frames ({grid}), 96x96 px at 5 fps; "
            f"median of {args.repeat}; torch threads {args.threads}"
        )
        rows = []
        for name, encoder in encoders:
            ref = np.concatenate([reference_loop(p, i, encoder) for p, i in jobs])
            new = np.concatenate([ours(p, i, encoder, args.batch_size) for p, i in jobs])
            np.testing.assert_allclose(new, ref, atol=1e-4)  # same frames, same embeddings
            t_ref = run_times(lambda e=encoder: [reference_loop(p, i, e) for p, i in jobs], args.repeat)
            t_new = run_times(
                lambda e=encoder: [ours(p, i, e, args.batch_size) for p, i in jobs], args.repeat
            )
            rows.append((name, t_ref, t_new))
        t_decode = run_times(
            lambda: [decord.VideoReader(str(p), num_threads=1).get_batch(i.tolist()) for p, i in jobs],
            args.repeat,
        )

        print()
        print("| encoder | reference loop frames/s | ours frames/s | ours / reference | ours vs demo |")
        print("|---|---|---|---|---|")
        demo_fps = n_frames / median(rows[0][2])
        for name, t_ref, t_new in rows:
            ref, new = median(t_ref), median(t_new)
            print(
                f"| {name} | {n_frames / ref:,.0f} | {n_frames / new:,.0f} | {ref / new:.2f}x "
                f"| {n_frames / new / demo_fps:.3f}x |"
            )
        print(f"\ndecode alone (get_batch): {n_frames / median(t_decode):,.0f} frames/s")
        print("seconds, median (min, max):")
        for name, t_ref, t_new in rows:
            print(f"  {name}: reference loop {spread(t_ref, digits=3)}; ours {spread(t_new, digits=3)}")
        print(f"  decode alone: {spread(t_decode, digits=3)}")


if __name__ == "__main__":
    main()
