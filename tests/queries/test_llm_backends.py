"""Backends: a tiny random transformers model through the real API, the OpenAI client on a local server."""

from __future__ import annotations

import http.server
import json
import logging
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from egonlq.cli import main
from egonlq.errors import InputError
from egonlq.io import write_parquet
from egonlq.queries.blocks import Block, BlockRow, parse_numbered_list
from egonlq.queries.curation import ASSIGNED
from egonlq.queries.llm_backends import (
    Generation,
    HFBackend,
    OpenAIBackend,
    TemplateBackend,
    make_backend,
    write_tiny_random_lm,
)
from egonlq.queries.llm_parsing import REJECTION_REASONS
from egonlq.queries.llm_queries import (
    RETRY_NOTE,
    generate_shard,
    load_prompt,
    render_prompt,
    unusable_reason,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_random_lm(tmp_path_factory.mktemp("tiny_lm") / "model", seed=0)


TEXTS = [
    "The camera wearer picks the knife from the drawer",
    "The camera wearer washes a cup in the sink",
    "The man opens the fridge",
    "The camera wearer puts the cup on the table",
]


def _block(n: int, video: str = "v1") -> Block:
    rows = []
    for i in range(1, n + 1):
        t = 10.0 * i
        text = TEXTS[i % 4]
        rows.append(
            BlockRow(f"{video}:1:{i}", t, f"#C {text}", text, t - 1, t + 1, "c1", 0.0, 480.0, t - 1, t + 1)
        )
    return Block(f"{video}:{n}", video, tuple(rows))


def test_hf_backend_chat_template_and_left_padding(tiny_lm: Path) -> None:
    backend = HFBackend(tiny_lm, batch_size=3, max_new_tokens=12)
    assert backend.has_chat_template and backend.tokenizer.padding_side == "left"
    assert backend.chat_text("hello") == "<bos><|user|>\nhello<|end|>\n<|assistant|>\n"
    assert backend.name == "llm:model"
    template = load_prompt()
    prompts = [render_prompt(_block(n), template) for n in (1, 4, 2)]  # three different lengths
    batched = backend.generate(prompts)
    single = HFBackend(tiny_lm, batch_size=1, max_new_tokens=12).generate(prompts)
    assert [g.text for g in batched] == [g.text for g in single]  # left padding leaves answers unchanged
    assert [g.n_new_tokens for g in batched] == [g.n_new_tokens for g in single]
    assert all(1 <= g.n_new_tokens <= 12 for g in batched)
    lengths = [
        len(backend.tokenizer(backend.chat_text(p), add_special_tokens=False)["input_ids"]) for p in prompts
    ]
    assert [g.n_prompt_tokens for g in batched] == lengths
    assert len(set(lengths)) == 3


def test_hf_backend_without_chat_template(tiny_lm: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(tiny_lm, plain)
    (plain / "chat_template.jinja").unlink()
    backend = HFBackend(plain, max_new_tokens=4)
    assert not backend.has_chat_template and backend.chat_text("hello") == "hello"
    assert len(backend.generate(["hello", "a longer prompt here"])) == 2
    assert (
        backend.fingerprint()["chat_template_sha256"]
        != HFBackend(tiny_lm).fingerprint()["chat_template_sha256"]
    )


def test_hf_backend_bad_model_fails_before_work(tiny_lm: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model folder not found"):
        HFBackend(tmp_path / "missing")
    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        shutil.copy(tiny_lm / name, no_tokenizer / name)
    with pytest.raises(InputError, match="no tokenizer"):
        HFBackend(no_tokenizer)
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    with pytest.raises(InputError, match="no config.json"):
        HFBackend(no_config)
    with pytest.raises(InputError, match="cannot load a tokenizer"):
        HFBackend(
            "nobody/no-such-model-anywhere"
        )  # not a path, not in the local cache: nothing is downloaded


def test_hf_backend_load_errors_name_the_folder_or_surface(
    tiny_lm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unknown = tmp_path / "unknown_type"
    shutil.copytree(tiny_lm, unknown)
    (unknown / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(InputError, match="cannot load the model"):
        HFBackend(unknown)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_lm, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not safetensors" * 8)
    with pytest.raises(InputError, match=r"corrupt: cannot load the model"):
        HFBackend(corrupt)

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise MemoryError("injected: not the folder's fault")

    import transformers

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", out_of_memory)
    with pytest.raises(MemoryError, match="injected"):
        HFBackend(tiny_lm)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", out_of_memory)
    with pytest.raises(MemoryError, match="injected"):
        HFBackend(tiny_lm)


def test_hf_fingerprint_tracks_generation_params(tiny_lm: Path) -> None:
    a, b = HFBackend(tiny_lm, max_new_tokens=8), HFBackend(tiny_lm, max_new_tokens=9)
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == HFBackend(tiny_lm, max_new_tokens=8, batch_size=2).fingerprint()
    assert a.fingerprint()["weights"] == {"model.safetensors": (tiny_lm / "model.safetensors").stat().st_size}


def test_hf_gibberish_is_counted_not_fatal(tiny_lm: Path, tmp_path: Path) -> None:
    backend = HFBackend(tiny_lm, batch_size=2, max_new_tokens=16)
    blocks = [_block(n, video=f"v{n}") for n in (1, 2, 3)]
    stats = generate_shard(blocks, backend, prompt_template=load_prompt(), cache_path=tmp_path / "c.jsonl",
                           out_path=tmp_path / "o.parquet", retries=1, batch_size=2)  # fmt: skip
    assert stats["blocks"] == 3 and set(stats["rejected"]) == set(REJECTION_REASONS)
    assert stats["failed"] == stats["rejected"]["parse_failure"]
    assert stats["accepted"] + sum(stats["rejected"].values()) - stats["failed"] == stats["questions_parsed"]
    assert stats["failed"] == 3 and stats["accepted"] == 0  # random weights never write a JSON list
    assert stats["prompts"] == 6  # every block tried twice
    assert stats["new_tokens"] > 0 and stats["tokens_per_s"] > 0
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert len(lines) == 6 and {json.loads(x)["attempt"] for x in lines} == {0, 1}
    again = generate_shard(blocks, backend, prompt_template=load_prompt(), cache_path=tmp_path / "c.jsonl",
                           out_path=tmp_path / "o.parquet", retries=1, batch_size=2)  # fmt: skip
    assert again["prompts"] == 0 and again["cached"] == 3 and again["failed"] == 3


class _Handler(http.server.BaseHTTPRequestHandler):
    """Chat completions: echoes the prompt length; fails as told by the server's ``script``."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, self.headers.get("Authorization"), body))
        status = self.server.script.pop(0) if self.server.script else 200
        if status != 200:
            self.send_error(status)
            return
        prompt = body["messages"][0]["content"]
        if self.server.bodies:  # scripted raw bodies first (garbage replies)
            data = self.server.bodies.pop(0)
        else:
            reply = {
                "choices": [{"message": {"role": "assistant", "content": self.server.answer(prompt)}}],
                "usage": {"prompt_tokens": len(prompt), "completion_tokens": 7},
            }
            data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests, srv.script, srv.bodies = [], [], []
    srv.answer = lambda prompt: json.dumps([{"i": 1, "question": f"{prompt}?"}])  # echo the prompt
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_openai_backend(server: http.server.HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EGONLQ_TEST_KEY", "secret")
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    backend = OpenAIBackend(
        url, "org/some-model", api_key_env="EGONLQ_TEST_KEY", backoff_s=0.01, concurrency=1
    )
    server.script = [503, 429]  # two transient failures, then success
    out = backend.generate(["first", "second prompt"])
    assert out == [Generation('[{"i": 1, "question": "first?"}]', 5, 7),
                   Generation('[{"i": 1, "question": "second prompt?"}]', 13, 7)]  # fmt: skip
    assert len(server.requests) == 4
    path, auth, body = server.requests[-1]
    assert path == "/v1/chat/completions" and auth == "Bearer secret"
    assert body["model"] == "org/some-model" and body["temperature"] == 0.0 and body["max_tokens"] == 256
    assert backend.name == "llm:some-model" and backend.fingerprint()["model"] == "org/some-model"
    server.script = [400]
    with pytest.raises(RuntimeError, match="HTTP 400"):
        backend.generate(["bad"])
    server.script = [500, 500, 500, 500]
    with pytest.raises(RuntimeError, match="HTTP 500"):
        OpenAIBackend(url, "m", retries=3, backoff_s=0.01).generate(["x"])
    with pytest.raises(RuntimeError, match="no answer"):
        OpenAIBackend("http://127.0.0.1:9/v1", "m", retries=1, backoff_s=0.01, timeout_s=0.5).generate(["x"])


def test_make_backend_and_template_backend() -> None:
    backend = make_backend("template", seed=3)
    assert isinstance(backend, TemplateBackend)
    assert backend.name == "template" and backend.fingerprint() == {"backend": "template", "seed": 3,
                                                                    "writer_version": "2"}  # fmt: skip
    assert isinstance(make_backend("openai", base_url="http://127.0.0.1:1", model="m"), OpenAIBackend)
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("gpt")
    assert backend.generate(["no list here"]) == [Generation("[]", 3, 1)]


def _reply(content: object, usage: object = None) -> bytes:
    return json.dumps({"choices": [{"message": {"content": content}}], "usage": usage}).encode()


GARBAGE = [  # (HTTP 200 body, the reason its block is counted under)
    (b"<html>502 Bad Gateway</html>", "reply_not_json"),
    (b"[" * 5000, "reply_not_json"),  # too deep for the JSON decoder
    (_reply(5), "reply_malformed"),
    (_reply([{"i": 1, "question": "Where is the cup?"}]), "reply_malformed"),
    (b'{"choices": []}', "reply_malformed"),
    (_reply('[{"i": 1, "question": "Where is the cup?"}]', usage="many"), "reply_bad_usage"),
    (_reply('[{"i": 1, "question": "Where is the cup?"}]', usage={"prompt_tokens": -1}), "reply_bad_usage"),
    (_reply("[" * 5000), "parse_failure"),  # deeply nested content
    (_reply('[{"i": 1, "question": ' + "[" * 3000 + "}]"), "parse_failure"),
]


def test_garbage_replies_are_counted_rejections(server: http.server.HTTPServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    backend = OpenAIBackend(url, "m", concurrency=1, backoff_s=0.01)
    blocks = [_block(k + 1, video=f"v{k}") for k in range(len(GARBAGE))]  # distinct prompts
    server.bodies = [body for body, _ in GARBAGE]
    kwargs = {"prompt_template": load_prompt(), "cache_path": tmp_path / "c.jsonl", "batch_size": 1}
    stats = generate_shard(blocks, backend, out_path=tmp_path / "o.parquet", retries=0, **kwargs)
    expected = Counter(reason for _, reason in GARBAGE)
    assert {k: v for k, v in stats["rejected"].items() if v} == expected
    assert stats["failed"] == len(GARBAGE) and stats["accepted"] == 0 and stats["new_tokens"] == 0
    cached = [json.loads(x) for x in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [c.get("error", "parse_failure") for c in cached] == [reason for _, reason in GARBAGE]
    assert cached[0]["raw_output"] == "<html>502 Bad Gateway</html>"  # what came back, for inspection
    # a rerun answers from the cache, with the same counts; a retry asks again with the retry note
    again = generate_shard(blocks, backend, out_path=tmp_path / "o.parquet", retries=0, **kwargs)
    assert again["prompts"] == 0 and again["rejected"] == stats["rejected"]
    server.bodies = [_reply(3)] * len(GARBAGE)
    retried = generate_shard(blocks, backend, out_path=tmp_path / "o.parquet", retries=1, **kwargs)
    assert retried["prompts"] == len(GARBAGE) and retried["rejected"]["reply_malformed"] == len(GARBAGE)
    assert server.requests[-1][2]["messages"][0]["content"].startswith(RETRY_NOTE)


def _cli_world(tmp_path: Path) -> list[str]:
    """An ASSIGNED table of two videos (3 blocks) and the generate-queries arguments that read it."""
    from tests.queries.test_llm_queries import _assigned

    write_parquet(_assigned({"va": 10, "vb": 3})[0], tmp_path / "assigned.parquet", ASSIGNED)
    (tmp_path / "prompt.txt").write_text(load_prompt(), encoding="utf-8")
    args = ["generate-queries", "--backend", "openai", "--assigned", str(tmp_path / "assigned.parquet")]
    args += [
        "--prompt",
        str(tmp_path / "prompt.txt"),
        "--shard",
        "0",
        "--num-shards",
        "1",
        "--batch-size",
        "1",
    ]
    return args + ["--cache", str(tmp_path / "c.jsonl"), "--out", str(tmp_path / "o.parquet")]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_server_down_ends_the_job_with_one_line(
    server: http.server.HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    options = json.dumps({"base_url": url, "model": "m", "retries": 2, "backoff_s": 0.01, "concurrency": 1})
    args = _cli_world(tmp_path) + ["--backend-options", options, "--stats", str(tmp_path / "s.json")]

    def answer(prompt: str) -> str:  # "Where is the knife?" from "... picks the knife from the drawer"
        first = parse_numbered_list(prompt)[0][0][1]
        return json.dumps([{"i": 1, "question": f"Where is the {first.split(' the ')[1].split()[0]}?"}])

    server.answer = answer
    server.script = [200] + [500] * 3  # the first block is answered, then the server keeps failing
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 3
    (error,) = _errors(caplog)
    assert "HTTP 500" in error and "rerun to resume" in error and "\n" not in error
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 1  # the finished block is kept
    assert not (tmp_path / "s.json").exists()
    caplog.clear()
    main(args)  # the server is back: the rerun asks only for the two other blocks
    stats = json.loads((tmp_path / "s.json").read_text())
    assert (stats["cached"], stats["generated"], stats["accepted"]) == (1, 2, 3) and not _errors(caplog)


def test_nothing_usable_exits_non_zero(
    server: http.server.HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    options = json.dumps({"base_url": url, "model": "m", "concurrency": 1})
    args = _cli_world(tmp_path) + ["--backend-options", options, "--stats", str(tmp_path / "s.json")]
    server.bodies = [b"not json"] * 6  # every block, and its retry
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 3
    assert _errors(caplog) == [
        "shard 0/1: no accepted question from 3 blocks (3 failed; rejected: reply_not_json 3)"
    ]
    assert json.loads((tmp_path / "s.json").read_text())["failed"] == 3  # the stats say why
    assert unusable_reason({"blocks": 0, "accepted": 0, "failed": 0, "rejected": {}}) is None
    assert unusable_reason({"rows_in": 4, "accepted": 1, "failed": 0, "rejected": {}}) is None
