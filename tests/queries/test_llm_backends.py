"""Backends: a tiny random transformers model through the real API, the OpenAI client on a local server."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from egonlq.errors import InputError
from egonlq.queries.blocks import Block, BlockRow
from egonlq.queries.llm_backends import (
    Generation,
    HFBackend,
    OpenAIBackend,
    TemplateBackend,
    make_backend,
    write_tiny_random_lm,
)
from egonlq.queries.llm_parsing import REJECTION_REASONS
from egonlq.queries.llm_queries import generate_shard, load_prompt, render_prompt


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """The tiny model is fastest on one thread, above all on a shared, loaded machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
        content = json.dumps([{"i": 1, "question": f"{prompt}?"}])
        reply = {
            "choices": [{"message": {"role": "assistant", "content": content}}],
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
    srv.requests, srv.script = [], []
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
                                                                    "writer_version": "1"}  # fmt: skip
    assert isinstance(make_backend("openai", base_url="http://127.0.0.1:1", model="m"), OpenAIBackend)
    with pytest.raises(ValueError, match="unknown backend"):
        make_backend("gpt")
    assert backend.generate(["no list here"]) == [Generation("[]", 3, 1)]
