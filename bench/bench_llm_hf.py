"""Throughput of the ``hf`` backend: batched generation (left padding) against one prompt at a time.

Both runs answer the same rendered block prompts (the packaged question prompt, blocks of 8 narrations) with
the same model and greedy decoding, in the same process; the one-at-a-time run is the baseline (it stands for
generating prompt by prompt, as a simple loop over ``generate`` does). Reported: prompts/s and new tokens/s
of each from the median of ``--repeat`` runs (at least 3; seconds also with min and max), and the
batched/baseline ratios. Without ``--model`` a tiny randomly
initialised Llama is built in a temporary folder (no weights are downloaded): its figures measure the
machinery (tokenising, padding, chat template, generate loop) rather than a real model's arithmetic. With
``--model`` any local causal LM folder works (e.g. a copy of google/gemma-2b-it) on ``--device cuda``.

    .venv/bin/python bench/bench_llm_hf.py                       # 16 prompts, batch 8, 32 new tokens
    .venv/bin/python bench/bench_llm_hf.py --prompts 64 --batch-size 16 --max-new-tokens 64
    .venv/bin/python bench/bench_llm_hf.py --model /models/gemma-2b-it --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from egonlq.queries.blocks import Block, BlockRow
from egonlq.queries.llm_backends import HFBackend, write_tiny_random_lm
from egonlq.queries.llm_queries import load_prompt, render_prompt
from medians import check_repeat, median, spread

NARRATIONS = [
    "The camera wearer picks the knife from the drawer",
    "The camera wearer cuts the onion on the counter",
    "The camera wearer puts the knife in the sink",
    "The man opens the fridge",
    "The camera wearer washes a cup in the sink",
    "The camera wearer turns on the kettle",
    "The camera wearer places the cup on the table",
    "Man X hands the camera wearer a plate",
    "The camera wearer folds the towel on the bed",
    "The camera wearer takes a screwdriver from the toolbox",
]


def synthetic_blocks(n: int, block_size: int = 8) -> list[Block]:
    """``n`` blocks of ``block_size`` narrations; the texts rotate so that prompt lengths differ."""
    blocks = []
    for b in range(n):
        rows = []
        for i in range(block_size - (b % 3)):
            t = 30.0 * (b * block_size + i)
            text = NARRATIONS[(b + i * (b % 4 + 1)) % len(NARRATIONS)]
            rows.append(BlockRow(f"v:{b}:{i}", t, text, text, t - 1, t + 1, "c", 0.0, 480.0, t - 1, t + 1))
        blocks.append(Block(f"v:{b}", "v", tuple(rows)))
    return blocks


def measure(backend: HFBackend, prompts: list[str], repeat: int) -> dict:
    """Figures of ``repeat`` runs of ``backend`` on ``prompts``: median seconds (and all), tokens, texts."""
    times = []
    for _ in range(check_repeat(repeat)):
        start = time.perf_counter()
        generations = backend.generate(prompts)
        times.append(time.perf_counter() - start)
    seconds = median(times)
    new_tokens = sum(g.n_new_tokens for g in generations)
    return {
        "seconds": seconds,
        "spread": spread(times),
        "prompts_per_s": len(prompts) / seconds,
        "tokens_per_s": new_tokens / seconds,
        "new_tokens": new_tokens,
        "prompt_tokens": sum(g.n_prompt_tokens for g in generations),
        "texts": [g.text for g in generations],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=16, help="number of block prompts (the scale)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument(
        "--model", type=Path, default=None, help="local model folder (default: a tiny random LM)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (median, min, max; >= 3)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or write_tiny_random_lm(Path(tmp) / "tiny-random-llama", seed=0)
        common = {"max_new_tokens": args.max_new_tokens, "device": args.device, "dtype": args.dtype}
        batched = HFBackend(model, batch_size=args.batch_size, **common)
        single = HFBackend(model, batch_size=1, **common)
        template = load_prompt()
        prompts = [render_prompt(b, template) for b in synthetic_blocks(args.prompts)]
        batched.generate(prompts[: min(2, len(prompts))])  # warm-up (first-call costs)
        one = measure(single, prompts, args.repeat)
        many = measure(batched, prompts, args.repeat)

    same = sum(a == b for a, b in zip(one["texts"], many["texts"], strict=True))
    name = model if args.model else "tiny random Llama (2 layers, hidden 32)"
    print(f"model: {name} on {args.device}, {args.dtype}")
    print(f"{args.prompts} prompts, {one['prompt_tokens'] / args.prompts:.0f} prompt tokens each on average, "
          f"max {args.max_new_tokens} new tokens, greedy")  # fmt: skip
    print(f"median of {args.repeat} runs each")
    print(f"{'run':<22}{'seconds':>10}{'prompts/s':>12}{'new tok/s':>12}{'new tokens':>12}")
    for run, r in (("one at a time", one), (f"batched (batch {args.batch_size})", many)):
        print(f"{run:<22}{r['seconds']:>10.2f}{r['prompts_per_s']:>12.2f}{r['tokens_per_s']:>12.1f}", end="")
        print(f"{r['new_tokens']:>12}   seconds {r['spread']}")
    print(f"ratio batched / one at a time: prompts/s x{many['prompts_per_s'] / one['prompts_per_s']:.2f}, "
          f"tokens/s x{many['tokens_per_s'] / one['tokens_per_s']:.2f}")  # fmt: skip
    print(f"identical answers batched vs one at a time: {same}/{args.prompts}")


if __name__ == "__main__":
    main()
