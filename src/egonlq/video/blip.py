"""BLIP as a frame scorer: a local Hugging Face ``BlipForImageTextRetrieval`` folder, two heads.

- **ITC** (image-text contrastive, :class:`BlipEncoder`): ``normalize(vision_proj(vision CLS))`` and
  ``normalize(text_proj(text CLS))``, a :class:`~egonlq.video.frame_encoders.FrameEncoder` like CLIP: frames
  are embedded once and scored against any text by cosine (:class:`~egonlq.video.scorers.EncoderScorer`).
- **ITM** (image-text matching, :class:`BlipITMScorer`): the text encoder reads the query with
  cross-attention to the frame's patch embeddings, and the ITM head's softmax gives ``P(match)`` in (0, 1).
  Sharper than ITC but one text-encoder pass per (frame, text) pair; the vision pass is done once per clip
  and its patch embeddings (``frames x patches x hidden`` floats) are kept while the clip's queries are
  scored.

Both are the two scores of the keyframe source system's ``blip`` feature extractor. The folder is checked
(``model_type`` ``blip``, image processor, tokenizer, weights) before anything is loaded; nothing is
downloaded. :func:`write_tiny_random_blip` writes a tiny random one for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from egonlq.video.decode import iter_frames
from egonlq.video.frame_encoders import (
    check_frames,
    check_model_folder,
    l2_normalise,
    load_image_text_model,
    model_folder_fingerprint,
)
from egonlq.video.scorers import ClipSample, digest

BLIP_HEADS = ("itc", "itm")
BLIP_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
BLIP_MAX_TOKENS = 35  # BLIP's retrieval fine-tuning caps captions at 35 tokens


class BlipEncoder:
    """The ITC embeddings of a local BLIP retrieval model (module docstring); the model is ``self.model``."""

    def __init__(self, model_path: str | Path, *, device: str = "cpu", batch_size: int = 32):
        import torch
        from transformers import BlipForImageTextRetrieval

        self.model_path = Path(model_path)
        check_model_folder(
            self.model_path, "blip", "BLIP", BLIP_TOKENIZER_FILES, processor_hint="BlipImageProcessor"
        )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tokenizer, self.processor, self.model = load_image_text_model(
            self.model_path, BlipForImageTextRetrieval, "the BLIP retrieval model", device
        )
        self._torch = torch
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.dim = int(self.model.config.image_text_hidden_size)
        max_positions = self.model.config.text_config.max_position_embeddings
        self.max_tokens = int(min(BLIP_MAX_TOKENS, max_positions))
        self.name = f"blip-itc:{self.model_path.name}"
        self._fingerprint = model_folder_fingerprint(self.model_path)  # config, weights, tokenizer, processor

    def fingerprint(self) -> str:
        return self._fingerprint

    def patch_embeddings(self, frames: np.ndarray):
        """The vision tower's ``last_hidden_state`` ``[B, patches + 1, H]`` (torch, on the device)."""
        frames = check_frames(frames)
        pixels = self.processor(images=list(frames), return_tensors="pt")["pixel_values"].to(self.device)
        with self._torch.inference_mode():
            return self.model.vision_model(pixel_values=pixels).last_hidden_state

    def tokens(self, texts: Sequence[str]):
        return self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt"
        ).to(self.device)

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        frames = check_frames(frames)
        out = np.zeros((len(frames), self.dim), dtype=np.float32)
        for start in range(0, len(frames), self.batch_size):
            patches = self.patch_embeddings(frames[start : start + self.batch_size])
            with self._torch.inference_mode():
                out[start : start + len(patches)] = (
                    self.model.vision_proj(patches[:, 0]).float().cpu().numpy()
                )
        return l2_normalise(out)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokens(texts[start : start + self.batch_size])
            with self._torch.inference_mode():
                hidden = self.model.text_encoder(
                    input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
                ).last_hidden_state
                out[start : start + len(hidden)] = self.model.text_proj(hidden[:, 0]).float().cpu().numpy()
        return l2_normalise(out)


class BlipITMScorer:
    """``P(match)`` of the ITM head for each sampled frame of a clip and a text (module docstring).

    Frames are decoded and run through the vision tower once per clip, ``batch_size`` at a time; the
    text-encoder passes go in batches of ``batch_size`` frames too.
    """

    def __init__(self, encoder: BlipEncoder):
        self.encoder = encoder
        self.name = f"blip-itm:{encoder.model_path.name}"
        self.batch_size = encoder.batch_size
        self._clip_key: tuple | None = None
        self._patches = None
        self.stats = {"frames_encoded": 0, "texts_scored": 0}

    def fingerprint(self) -> str:
        return digest("blip-itm", self.encoder.fingerprint())

    def _clip_patches(self, clip: ClipSample):
        key = (str(clip.path), clip.video_uid, clip.frame_idx.tobytes())
        if key != self._clip_key:
            torch = self.encoder._torch
            batches = [
                self.encoder.patch_embeddings(frames)
                for _, frames in iter_frames(clip.path, clip.frame_idx, batch_size=self.batch_size)
            ]
            self._patches = torch.cat(batches) if batches else None
            self._clip_key = key
            self.stats["frames_encoded"] += len(clip.frame_idx)
        return self._patches

    def score(self, clip: ClipSample, text: str) -> np.ndarray:
        torch = self.encoder._torch
        model = self.encoder.model
        patches = self._clip_patches(clip)
        if patches is None:
            return np.zeros(0, np.float32)
        tokens = self.encoder.tokens([text])
        out = np.zeros(len(patches), dtype=np.float32)
        for start in range(0, len(patches), self.batch_size):
            image = patches[start : start + self.batch_size]  # [b, P, H]
            b = len(image)
            with torch.inference_mode():
                hidden = model.text_encoder(
                    input_ids=tokens["input_ids"].expand(b, -1),
                    attention_mask=tokens["attention_mask"].expand(b, -1),
                    encoder_hidden_states=image,
                    encoder_attention_mask=torch.ones(image.shape[:2], dtype=torch.long, device=image.device),
                ).last_hidden_state
                logits = model.itm_head(hidden[:, 0])  # [b, 2]: (no match, match)
                out[start : start + b] = torch.softmax(logits.float(), dim=-1)[:, 1].cpu().numpy()
        self.stats["texts_scored"] += 1
        return out


def make_blip_scorer(model_path: str | Path, *, head: str = "itm", device: str = "cpu", batch_size: int = 32):
    """The BLIP scorer of ``head`` (one of :data:`BLIP_HEADS`): ITM probability or ITC cosine."""
    from egonlq.video.scorers import EncoderScorer

    if head not in BLIP_HEADS:
        raise ValueError(f"BLIP head must be one of {BLIP_HEADS}, got {head!r}")
    encoder = BlipEncoder(model_path, device=device, batch_size=batch_size)
    return BlipITMScorer(encoder) if head == "itm" else EncoderScorer(encoder, batch_size=batch_size)


def write_tiny_random_blip(out_dir: str | Path, *, seed: int = 0, image_size: int = 32) -> Path:
    """Save a tiny random BLIP retrieval model (model, word-level BERT tokenizer, image processor).

    Its scores mean nothing: it exercises the BLIP scorers through the real ``from_pretrained`` APIs
    (tests, benchmarks) without any downloaded weights.
    """
    import string

    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForImageTextRetrieval, BlipImageProcessorPil

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = [*string.ascii_lowercase, *string.digits, *"?'.,-!", *(f"##{c}" for c in string.ascii_lowercase)]
    vocab = out_dir / "vocab.txt"
    vocab.write_text("\n".join([*special, *words]) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(str(vocab), do_lower_case=True)
    hidden = 32
    config = BlipConfig(
        text_config={
            "vocab_size": len(special) + len(words),
            "hidden_size": hidden,
            "encoder_hidden_size": hidden,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "pad_token_id": 0,
            "bos_token_id": 2,
            "sep_token_id": 3,
        },
        vision_config={
            "hidden_size": hidden,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": 8,
        },
        image_text_hidden_size=16,
    )
    torch.manual_seed(seed)
    BlipForImageTextRetrieval(config).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    size = {"height": image_size, "width": image_size}
    BlipImageProcessorPil(size=size).save_pretrained(out_dir)
    return out_dir
