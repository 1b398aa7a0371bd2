"""Text generation backends for synthetic queries (llm-queries.md, "Backends").

Every backend turns prompts into answers and says what it is (``fingerprint``, part of every cache key):

- :class:`TemplateBackend`: the deterministic rule-based writer of :mod:`egonlq.queries.template_writer`; it
reads the
  block back from the prompt and answers in the same JSON format as a model, so its output takes the same
  parse and validation path. Token counts are whitespace words.
- :class:`HFBackend`: a transformers causal LM from a local folder (or the local Hugging Face cache;
  nothing is downloaded), batched with left padding, the tokenizer's chat template when it has one, greedy by
  default; or a seq2seq model (``is_encoder_decoder``, e.g. a local T5 paraphraser in LaViLa's rephraser
  role), whose answer is the whole decoder output.
  The seed's model is ``google/gemma-2b-it`` (:data:`DEFAULT_HF_MODEL`); offline it must be a local path.
- :class:`OpenAIBackend`: an OpenAI-compatible ``/chat/completions`` endpoint (e.g. a vLLM server) over HTTP
  with the standard library, with timeouts and retries.

:func:`write_tiny_random_lm` saves a tiny randomly initialised model with its tokenizer and chat template:
tests, benchmarks and offline demo runs use it to exercise the ``hf`` path without weights.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Protocol

from egonlq.errors import InputError
from egonlq.queries.blocks import parse_numbered_list
from egonlq.queries.template_writer import WRITER_VERSION, paraphrase, write_block_questions

logger = logging.getLogger(__name__)

DEFAULT_HF_MODEL = "google/gemma-2b-it"
_DTYPES = ("float32", "bfloat16", "float16")
_SHOWN_BYTES = 2000  # of a rejected reply's body, kept in the cache for inspection
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")


@dataclass(frozen=True)
class Generation:
    """One answer. ``error`` names a reply that carries no usable answer (a ``REJECTION_REASONS`` entry of
    :mod:`egonlq.queries.llm_parsing`, e.g. ``"reply_not_json"``); ``text`` then holds what came back."""

    text: str
    n_prompt_tokens: int
    n_new_tokens: int
    error: str | None = None


class BackendError(RuntimeError):
    """The backend cannot answer at all (a server that keeps failing after its retries): the job must stop."""


class Backend(Protocol):
    """What :func:`egonlq.queries.llm_queries.generate_shard` needs from a backend."""

    @property
    def name(self) -> str:
        """The ``source`` tag of its outputs: ``"template"`` or ``"llm:<model name>"``."""
        ...

    def fingerprint(self) -> dict:
        """Model identity and generation parameters; part of every cache key."""
        ...

    def generate(self, prompts: list[str]) -> list[Generation]:
        """One answer per prompt, in order."""
        ...


class TemplateBackend:
    """Rule-based writer: one question per narration in an official template style, or a paraphrase.

    A prompt whose last numbered list carries times (a narration block) gets questions; a list without times
    (sentences) gets paraphrases, variant taken from the prompt's ``variant N`` phrase.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    @property
    def name(self) -> str:
        return "template"

    def fingerprint(self) -> dict:
        return {"backend": "template", "seed": self.seed, "writer_version": WRITER_VERSION}

    def generate(self, prompts: list[str]) -> list[Generation]:
        out = []
        for prompt in prompts:
            items, timed = parse_numbered_list(prompt)
            if timed:
                answer = [
                    {"i": i, "question": q, **({"to": last} if last != i else {})}
                    for i, _, q, last in write_block_questions(items, seed=self.seed)
                ]
            else:
                variant = _variant_of(prompt)
                answer = []
                for i, (_, text) in enumerate(items, 1):
                    p = paraphrase(text, seed=self.seed, variant=variant)
                    if p is not None:
                        answer.append({"i": i, "text": p})
            text = json.dumps(answer, ensure_ascii=False)
            out.append(Generation(text, len(prompt.split()), len(text.split())))
        return out


def _variant_of(prompt: str) -> int:
    m = re.search(r"\bvariant (\d+)\b", prompt)
    return int(m.group(1)) if m else 1


def _model_name(model: str) -> str:
    return Path(model.rstrip("/")).name or model


class HFBackend:
    """A transformers causal LM or seq2seq model, loaded and checked in the constructor (before any work)."""

    def __init__(
        self,
        model_path: str | Path = DEFAULT_HF_MODEL,
        *,
        batch_size: int = 8,
        max_new_tokens: int = 256,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        dtype: str = "float32",
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        import torch
        from safetensors import SafetensorError
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

        # What from_pretrained raises for a folder or id that holds no loadable model: missing or unreadable
        # files (OSError), bad JSON or an unknown model type (ValueError), corrupt weights. Anything else
        # (out of memory, a CUDA error, a bug) is not the folder's fault and surfaces as it is.
        not_a_model = (OSError, ValueError, KeyError, SafetensorError)
        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        self.model_path = str(model_path)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.do_sample = do_sample
        self.temperature = temperature
        self.top_p = top_p
        self.dtype = dtype
        self.device = device
        self.seed = seed
        self._torch = torch

        local = Path(self.model_path)
        looks_like_path = local.is_absolute() or self.model_path.startswith((".", "~")) or local.exists()
        if looks_like_path and not local.is_dir():
            raise InputError(local, "model folder not found", expected="a local transformers model folder")
        if looks_like_path and not (local / "config.json").is_file():
            raise InputError(local, "model folder has no config.json", expected="a transformers model folder")
        if looks_like_path and not any((local / f).is_file() for f in _TOKENIZER_FILES):
            raise InputError(local, "model folder has no tokenizer", expected=f"one of {_TOKENIZER_FILES}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.model_path, local_files_only=True)
        except not_a_model as e:
            raise InputError(
                self.model_path,
                f"cannot load a tokenizer: {e}",
                expected="a model folder with its tokenizer files, or a model id in the local Hugging Face "
                "cache (downloads are disabled)",
            ) from e
        if not getattr(self.tokenizer, "vocab_size", 0):
            raise InputError(self.model_path, "the model folder has no usable tokenizer", field="tokenizer")
        try:
            model_config = AutoConfig.from_pretrained(self.model_path, local_files_only=True)
        except not_a_model as e:
            raise InputError(
                self.model_path, f"cannot load the model: its config: {e}", field="config"
            ) from e
        # encoder-decoder (T5, BART): the prompt goes to the encoder, the decoder writes the whole answer
        self.seq2seq = bool(getattr(model_config, "is_encoder_decoder", False))
        self.tokenizer.padding_side = "right" if self.seq2seq else "left"
        if self.tokenizer.pad_token is None:
            if self.tokenizer.eos_token is None:
                raise InputError(
                    self.model_path, "tokenizer has neither a pad nor an eos token", field="pad_token"
                )
            self.tokenizer.pad_token = self.tokenizer.eos_token
        try:
            auto = AutoModelForSeq2SeqLM if self.seq2seq else AutoModelForCausalLM
            self.model = auto.from_pretrained(
                self.model_path, local_files_only=True, dtype=getattr(torch, dtype)
            )
        except not_a_model as e:
            raise InputError(
                self.model_path, f"cannot load the model: {e}", expected="a causal LM or a seq2seq model"
            ) from e
        self.model.to(device).eval()
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        self._identity = self._model_identity(local if looks_like_path else None)
        logger.info(
            "hf backend: %s (%s, chat template: %s)",
            self.model_path,
            "seq2seq" if self.seq2seq else "causal",
            self.has_chat_template,
        )

    def _model_identity(self, local: Path | None) -> dict:
        """Config hash and weight file sizes: a cheap identity of the weights, whatever the folder name."""
        config = json.dumps(self.model.config.to_dict(), sort_keys=True, default=str)
        identity = {"config_sha256": hashlib.sha256(config.encode("utf-8")).hexdigest()}
        if local is not None:
            identity["weights"] = {
                p.name: p.stat().st_size
                for p in sorted(local.glob("*"))
                if p.suffix in (".safetensors", ".bin")
            }
        template = self.tokenizer.chat_template or ""
        identity["chat_template_sha256"] = hashlib.sha256(template.encode("utf-8")).hexdigest()
        return identity

    @property
    def name(self) -> str:
        return f"llm:{_model_name(self.model_path)}"

    def fingerprint(self) -> dict:
        params = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "dtype": self.dtype,
            "seed": self.seed,
        }
        if self.do_sample:
            params.update(temperature=self.temperature, top_p=self.top_p)
        return {"backend": "hf", "model": self.model_path, **self._identity, "generation": params}

    def chat_text(self, prompt: str) -> str:
        """The prompt as the model sees it: wrapped in the chat template when the tokenizer has one."""
        if not self.has_chat_template:
            return prompt
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )

    def generate(self, prompts: list[str]) -> list[Generation]:
        return [seqs[0] for seqs in self.generate_sequences(prompts)]

    def generate_sequences(self, prompts: list[str], num_sequences: int = 1) -> list[list[Generation]]:
        """``num_sequences`` answers per prompt: sampled when ``do_sample``, else the best beams of a beam
        search of that width (greedy for one), best first."""
        if num_sequences < 1:
            raise ValueError(f"num_sequences must be >= 1, got {num_sequences}")
        out: list[list[Generation]] = []
        for i in range(0, len(prompts), self.batch_size):
            out += self._generate_batch(prompts[i : i + self.batch_size], num_sequences)
        return out

    def _generate_batch(self, prompts: list[str], num_sequences: int) -> list[list[Generation]]:
        torch = self._torch
        texts = [self.chat_text(p) for p in prompts]
        enc = self.tokenizer(
            texts, return_tensors="pt", padding=True, add_special_tokens=not self.has_chat_template
        ).to(self.device)
        kwargs = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "pad_token_id": self.tokenizer.pad_token_id,
            "num_return_sequences": num_sequences,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
            if num_sequences > 1:
                kwargs.update(num_beams=num_sequences)
        torch.manual_seed(self.seed)
        with torch.inference_mode():
            output = self.model.generate(**enc, **kwargs)  # (B * num_sequences, T), a prompt's rows together
        # causal: the prompt comes back first; seq2seq: the decoder output after its start token
        new = output[:, 1 if self.seq2seq else enc["input_ids"].shape[1] :].cpu()  # (B * n, T_new)
        n_prompt = enc["attention_mask"].sum(dim=1).cpu().tolist()
        eos_ids = self._eos_ids()
        result: list[list[Generation]] = [[] for _ in prompts]
        for r, row in enumerate(new.tolist()):
            n_new = next((k + 1 for k, tok in enumerate(row) if tok in eos_ids), len(row))
            text = self.tokenizer.decode(row[:n_new], skip_special_tokens=True)
            result[r // num_sequences].append(Generation(text, int(n_prompt[r // num_sequences]), n_new))
        return result

    def _eos_ids(self) -> set[int]:
        eos = self.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids


class OpenAIBackend:
    """An OpenAI-compatible chat-completions endpoint (``{base_url}/chat/completions``).

    The API key is read from the environment variable ``api_key_env`` (no header when it is unset, as for a
    local vLLM server). Requests time out after ``timeout_s``; connection errors, timeouts, HTTP 429 and 5xx
    are retried ``retries`` times with exponential backoff, then :class:`BackendError` is raised (the cache
    keeps what was finished, so a rerun resumes); other HTTP errors raise it at once. An HTTP 200 reply that
    is not a chat completion with a string content and integer token counts is not an error but a rejected
    answer (``Generation.error``). ``concurrency`` requests run at once.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int = 0,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 1.0,
        concurrency: int = 4,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.seed = seed
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.concurrency = max(1, concurrency)

    @property
    def name(self) -> str:
        return f"llm:{_model_name(self.model)}"

    def fingerprint(self) -> dict:
        return {
            "backend": "openai",
            "url": self.url,
            "model": self.model,
            "generation": {
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "seed": self.seed,
            },
        }

    def generate(self, prompts: list[str]) -> list[Generation]:
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._complete, prompts))

    def _complete(self, prompt: str) -> Generation:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "seed": self.seed,
            }
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    return self._read_reply(response.read())
            except urllib.error.HTTPError as e:
                if (e.code != 429 and e.code < 500) or attempt == self.retries:
                    raise BackendError(f"{self.url}: HTTP {e.code} {e.reason} (try {attempt + 1})") from e
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as e:
                if attempt == self.retries:
                    raise BackendError(f"{self.url}: no answer after {self.retries + 1} tries: {e}") from e
            logger.warning("%s: try %d failed, retrying", self.url, attempt + 1)
            time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable: the last try returns or raises")

    def _read_reply(self, data: bytes) -> Generation:
        """A chat completion's content and token counts; a body that is not one is a rejected reply."""
        shown = data[:_SHOWN_BYTES].decode("utf-8", errors="replace")
        try:
            reply = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            return Generation(shown, 0, 0, error="reply_not_json")
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            return Generation(shown, 0, 0, error="reply_malformed")
        if content is None:  # no text at all (e.g. a refusal): an empty answer
            content = ""
        if not isinstance(content, str):
            return Generation(shown, 0, 0, error="reply_malformed")
        counts = _token_counts(reply.get("usage"))  # reply is a dict: it had "choices"
        if counts is None:
            return Generation(content, 0, 0, error="reply_bad_usage")
        return Generation(content, *counts)


def _token_counts(usage: object) -> tuple[int, int] | None:
    """``(prompt_tokens, completion_tokens)`` of a usage field (absent: 0), None when it is malformed."""
    if usage is None:
        return 0, 0
    if not isinstance(usage, dict):
        return None
    counts = (usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts):
        return None
    return counts


PROMPT_STYLES = ("json", "t5")
T5_PREFIX = "paraphrase: "  # the input format of the T5 paraphrasers (LaViLa's rephraser role)


class T5Rephraser:
    """The rephrase prompt answered by a seq2seq paraphraser, one sentence at a time, in plain text.

    It reads the numbered sentences and the ``variant N`` of a rephrase prompt back (as the template backend
    does), sends each sentence to the model as ``"paraphrase: <sentence>"``, and asks for ``num_sequences``
    returned sequences (the best beams, or samples): variant ``v`` is the ``v``-th. Each sequence is read as
    plain text (:func:`egonlq.queries.llm_parsing.parse_paraphrase`, no JSON from the model); the answer is
    the ``[{"i", "text"}]`` list every backend gives, so the rephrase path validates it as any other. A
    sentence's sequences are computed once for all its variants.
    """

    def __init__(self, inner: HFBackend, *, num_sequences: int = 1) -> None:
        if not inner.seq2seq:
            raise InputError(
                inner.model_path,
                "prompt style t5 needs a seq2seq model, this is a causal LM",
                field="is_encoder_decoder",
                expected="a T5-style paraphraser folder",
            )
        if num_sequences < 1:
            raise ValueError(f"num_sequences must be >= 1, got {num_sequences}")
        self.inner, self.num_sequences = inner, num_sequences
        self._memo: dict[str, list[Generation]] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    def fingerprint(self) -> dict:
        return {
            **self.inner.fingerprint(),
            "prompt_style": "t5",
            "input_prefix": T5_PREFIX,
            "num_sequences": self.num_sequences,
        }

    def generate(self, prompts: list[str]) -> list[Generation]:
        from egonlq.queries.llm_parsing import parse_paraphrase

        parsed = [(parse_numbered_list(p), _variant_of(p)) for p in prompts]
        too_far = max((v for _, v in parsed), default=1)
        if too_far > self.num_sequences:
            raise ValueError(f"variant {too_far} asked of a rephraser of {self.num_sequences} sequences")
        sentences = {text for (items, timed), _ in parsed if not timed for _, text in items}
        todo = sorted(sentences - set(self._memo))
        answers = self.inner.generate_sequences([T5_PREFIX + t for t in todo], self.num_sequences)
        self._memo.update(zip(todo, answers, strict=True))
        out = []
        for prompt, ((items, timed), variant) in zip(prompts, parsed, strict=True):
            if timed or not items:  # not a rephrase prompt: nothing to paraphrase
                out.append(Generation(prompt[-_SHOWN_BYTES:], 0, 0, error="parse_failure"))
                continue
            chosen = [self._memo[text][variant - 1] for _, text in items]
            answer = [
                {"i": i, "text": text}
                for i, g in enumerate(chosen, 1)
                if (text := parse_paraphrase(g.text)) is not None
            ]
            n_prompt, n_new = sum(g.n_prompt_tokens for g in chosen), sum(g.n_new_tokens for g in chosen)
            out.append(Generation(json.dumps(answer, ensure_ascii=False), n_prompt, n_new))
        return out


def rephrase_backend(backend: Backend, style: str, *, num_variants: int = 1) -> Backend:
    """The backend that answers rephrase prompts in ``style``: ``json`` (the prompt as written, a JSON
    answer) or ``t5`` (a seq2seq paraphraser of the ``hf`` backend, :class:`T5Rephraser`)."""
    if style == "json":
        return backend
    if style != "t5":
        raise ValueError(f"unknown prompt style {style!r}; expected one of {list(PROMPT_STYLES)}")
    if not isinstance(backend, HFBackend):
        raise ValueError(f"prompt style t5 runs a local seq2seq model: the hf backend, not {backend.name}")
    return T5Rephraser(backend, num_sequences=num_variants)


def source_name(kind: str, model: str | None = None) -> str:
    """The ``source`` tag a backend gives its queries, known without loading it (for planning runs)."""
    if kind == "template":
        return "template"
    if kind in ("hf", "openai"):
        return f"llm:{_model_name(model or DEFAULT_HF_MODEL)}"
    raise ValueError(f"unknown backend {kind!r}; expected one of ['hf', 'openai', 'template']")


def make_backend(kind: str, **kwargs: object) -> Backend:
    """``"template"`` -> :class:`TemplateBackend`, ``"hf"`` -> :class:`HFBackend`, ``"openai"`` ->
    :class:`OpenAIBackend`; ``kwargs`` go to the constructor."""
    classes = {"template": TemplateBackend, "hf": HFBackend, "openai": OpenAIBackend}
    if kind not in classes:
        raise ValueError(f"unknown backend {kind!r}; expected one of {sorted(classes)}")
    return classes[kind](**kwargs)


def write_tiny_random_lm(out_dir: str | Path, *, seed: int = 0, corpus: list[str] | None = None) -> Path:
    """Save a tiny randomly initialised Llama with a byte-level BPE tokenizer and a chat template.

    Its output is gibberish by construction: it exercises batching, chat templates, parsing and rejection
    counting for real without any downloaded weights. ``corpus`` trains the tokenizer (default: the packaged
    prompt files, so that prompts tokenise compactly).
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out_dir = Path(out_dir)
    specials = ["<pad>", "<bos>", "<eos>", "<|user|>", "<|assistant|>", "<|end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    prompts = resources.files("egonlq.queries").joinpath("prompts")
    files = sorted((p for p in prompts.iterdir() if p.name.endswith(".txt")), key=lambda p: p.name)
    text = corpus or [p.read_text(encoding="utf-8") for p in files]
    tok.train_from_iterator(text * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    tokenizer.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def write_tiny_random_t5(out_dir: str | Path, *, corpus: list[str], seed: int = 0) -> Path:
    """Save a tiny randomly initialised T5 with a word-level tokenizer trained on ``corpus`` (pad = decoder
    start, eos): the seq2seq counterpart of :func:`write_tiny_random_lm`, for the rephraser path in tests.
    Its outputs are random words of the corpus."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    out_dir = Path(out_dir)
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=16,
        d_kv=4,
        d_ff=32,
        num_layers=1,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    T5ForConditionalGeneration(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
