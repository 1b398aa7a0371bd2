"""Frames decoded per second: egonlq.video.decode (decord) against PyAV (and OpenCV when it is installed).

Writes synthetic H.264 test videos (moving texture, so the decoder has real work) at 30 fps, then measures on
the same file, the median of ``--repeat`` runs (at least 3; wall seconds also with min and max). PyAV is the
baseline: it stands for the plain way a user decodes frames in Python without our reader:

- sequential: every frame, RGB uint8 arrays;
- sparse: AKS's 1 sample per second (``step = int(fps)``): decord seeks with ``get_batch``; PyAV, the plain
  way, decodes the whole stream and converts only the wanted frames.

    python bench/bench_video_decode.py                 # 3000 frames at 96x96 and 256x256
    python bench/bench_video_decode.py --frames 600    # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from egonlq.video.decode import iter_frames, probe, sample_indices
from medians import check_repeat, median, spread

FPS = 30
Reader = Callable[[Path, np.ndarray], int]


def write_test_video(path: Path, n_frames: int, side: int, gop: int) -> None:
    """A drifting colour texture plus noise: every frame differs, like real footage."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) * (2 * np.pi / side)
    texture = 127.5 * (1 + np.stack([np.sin(2 * xx), np.sin(3 * yy), np.sin(2 * (xx + yy))], axis=-1))
    noise = rng.normal(0, 4, (8, side, side, 3))
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        options = {"preset": "veryfast"} if codec == "libx264" else {}
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = side, side, "yuv420p"
        stream.codec_context.gop_size = gop
        for k in range(n_frames):
            image = (np.roll(texture, (k, 2 * k), axis=(0, 1)) + noise[k % 8]).clip(0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def decord_frames(path: Path, indices: np.ndarray, num_threads: int) -> int:
    return sum(len(batch) for batch, _ in iter_frames(path, indices, batch_size=32, num_threads=num_threads))


def pyav_frames(path: Path, indices: np.ndarray) -> int:
    wanted = set(indices.tolist())
    count = 0
    with av.open(str(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k in wanted:
                frame.to_ndarray(format="rgb24")
                count += 1
    return count


def opencv_frames(path: Path, indices: np.ndarray) -> int:
    import cv2

    wanted = set(indices.tolist())
    cap = cv2.VideoCapture(str(path))
    count = k = 0
    while cap.grab():
        if k in wanted:
            _, bgr = cap.retrieve()
            cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            count += 1
        k += 1
    cap.release()
    return count


def timed_runs(
    reader: Reader, path: Path, indices: np.ndarray, repeat: int
) -> tuple[int, list[float], float]:
    """Frames delivered, wall seconds of each of ``repeat`` runs, and median CPU seconds (all threads).

    CPU time is the steadier figure on a shared, loaded machine.
    """
    walls, cpus, n = [], [], 0
    for _ in range(check_repeat(repeat)):
        wall, cpu = time.perf_counter(), time.process_time()
        n = reader(path, indices)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return n, walls, median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=3000, help="frames per test video (30 fps)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 256], help="square frame sides in px")
    parser.add_argument("--gop", type=int, default=250, help="keyframe interval (libx264's default: 250)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    readers: dict[str, Reader] = {
        "decord (ours, 1 thread)": lambda p, i: decord_frames(p, i, num_threads=1),
        "decord (ours, auto threads)": lambda p, i: decord_frames(p, i, num_threads=0),
        "PyAV": pyav_frames,
    }
    try:
        import cv2  # noqa: F401

        readers["OpenCV"] = opencv_frames
    except ImportError:
        print("OpenCV not installed: skipped")

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sizes:
            path = Path(tmp) / f"bench_{side}.mp4"
            start = time.perf_counter()
            write_test_video(path, args.frames, side, args.gop)
            info = probe(path)
            took = time.perf_counter() - start
            print(
                f"wrote {path.name}: {info.num_frames} frames {side}x{side}, gop {args.gop}, in {took:.1f} s"
            )
            access = {
                "sequential": np.arange(info.num_frames),
                "sparse 1 fps": sample_indices(info.num_frames, info.fps, reference_step=True),
            }
            for mode, indices in access.items():
                timed = {name: timed_runs(r, path, indices, args.repeat) for name, r in readers.items()}
                for name, (n, walls, cpu) in timed.items():
                    assert n == len(indices), f"{name} delivered {n} of {len(indices)} frames"
                    wall = median(walls)
                    speedup = median(timed["PyAV"][1]) / wall
                    shown = spread(walls, digits=3)
                    rows.append((f"{side}x{side}", mode, name, n, wall, cpu, speedup, shown))

    print(
        f"\n{'video':>9} | {'access':<12} | {'reader':<28} | {'frames':>6} | {'wall s':>7} | {'CPU s':>6} | "
        f"{'frames/s':>8} | {'vs PyAV':>7} | wall s median (min, max)"
    )
    print("-" * 140)
    for size, mode, name, n, wall, cpu, speedup, walls in rows:
        print(
            f"{size:>9} | {mode:<12} | {name:<28} | {n:>6} | {wall:>7.3f} | {cpu:>6.3f} | "
            f"{n / wall:>8.0f} | {speedup:>6.2f}x | {walls}"
        )

    print("\nsparse 1 fps against sequential (time to get 1 frame in 30 / time to get them all):")
    wall = {(size, mode, name): w for size, mode, name, _, w, *_ in rows}
    for size, mode, name, *_ in rows:
        if mode == "sequential":
            print(f"{size:>9} | {name:<28} | {wall[size, 'sparse 1 fps', name] / wall[size, mode, name]:.2f}")


if __name__ == "__main__":
    main()
