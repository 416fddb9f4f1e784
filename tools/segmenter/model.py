"""U-Net-style segmenter: ImageNet EfficientNet-Lite0 encoder (timm) + a light upsampling decoder."""

from __future__ import annotations

import logging

import timm
import torch
import torch.nn.functional as F
from torch import nn

from tools.backbone import load_imagenet_features, standardise

log = logging.getLogger(__name__)

STRUCTURES: tuple[str, ...] = ("right_lung", "left_lung", "heart", "right_clavicle", "left_clavicle")
INPUT_SIZE = 384
DECODER_CHANNELS = (96, 64, 32, 24, 16)


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNetLite0(nn.Module):
    """Grey image (N,1,H,W) normalised to zero mean/unit std -> logits (N,len(STRUCTURES),H,W)."""

    def __init__(self, n_classes: int = len(STRUCTURES)) -> None:
        super().__init__()
        self.encoder = timm.create_model("efficientnet_lite0", features_only=True, pretrained=False, in_chans=1)
        skips = self.encoder.feature_info.channels()  # strides 2, 4, 8, 16, 32
        blocks = []
        cin = skips[-1]
        for i, cout in enumerate(DECODER_CHANNELS):
            skip = skips[-2 - i] if i < len(skips) - 1 else 0
            blocks.append(_conv_bn_relu(cin + skip, cout))
            cin = cout
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Conv2d(cin, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = feats[-1]
        for i, block in enumerate(self.decoder):
            skip = feats[-2 - i] if i < len(feats) - 1 else None
            size = skip.shape[-2:] if skip is not None else x.shape[-2:]
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            if skip is not None:
                y = torch.cat([y, skip], dim=1)
            y = block(y)
        return self.head(y)


def load_imagenet_encoder(model: UNetLite0) -> None:
    load_imagenet_features(model.encoder)


normalise = standardise
