"""Centre-point (CenterNet-style) nodule detector: ImageNet EfficientNet-Lite0 encoder + a light stride-4 decoder.

Heads: a nodule-centre heatmap (1 logit channel) and the nodule diameter (log of pixels at the model's input size).
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from tools.backbone import load_imagenet_features, standardise

INPUT_SIZE = 384
STRIDE = 4
DECODER_CHANNELS = (96, 48, 32)  # strides 16, 8, 4
PRIOR_PROBABILITY = 0.01


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CenterNetLite0(nn.Module):
    """Grey image (N,1,H,W), standardised per image -> (heatmap logits, log-diameter) each (N,1,H/4,W/4)."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = timm.create_model("efficientnet_lite0", features_only=True, pretrained=False, in_chans=1,
                                         out_indices=(1, 2, 3, 4))  # strides 4, 8, 16, 32
        skips = self.encoder.feature_info.channels()
        blocks, cin = [], skips[-1]
        for i, cout in enumerate(DECODER_CHANNELS):
            blocks.append(_conv_bn_relu(cin + skips[-2 - i], cout))
            cin = cout
        self.decoder = nn.ModuleList(blocks)
        self.heatmap = nn.Sequential(_conv_bn_relu(cin, cin), nn.Conv2d(cin, 1, 1))
        self.size = nn.Sequential(_conv_bn_relu(cin, cin), nn.Conv2d(cin, 1, 1))
        bias = -torch.log(torch.tensor((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))
        nn.init.constant_(self.heatmap[-1].bias, float(bias))
        nn.init.constant_(self.size[-1].bias, 2.5)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.encoder(x)
        y = feats[-1]
        for i, block in enumerate(self.decoder):
            skip = feats[-2 - i]
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = block(torch.cat([y, skip], dim=1))
        return self.heatmap(y), self.size(y)


def load_imagenet_encoder(model: CenterNetLite0) -> None:
    load_imagenet_features(model.encoder)


normalise = standardise
