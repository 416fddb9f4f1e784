"""Train the chest X-ray anatomy segmenter (EfficientNet-Lite0 U-Net) on JSRT/SCR + COVID-case lung masks.

    python scripts/train_segmenter.py [--epochs 18] [--out tools/weights/segmenter.pt]

Seeded and CPU-friendly (one thread). JSRT supervises all five structures; the COVID-case masks (both lungs in one
mask) supervise only the union of the two lung channels (noisy-or), heart/clavicle losses are masked out for them.
The weights are saved after every epoch and the last one is kept (no model selection on the validation split);
`--stop-after K` ends the same --epochs schedule after K epochs when the CPU budget runs out.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from tools.segmenter.dataset import cached, covid_split, jsrt_split
from tools.segmenter.model import INPUT_SIZE, STRUCTURES, UNetLite0, load_imagenet_encoder, normalise

log = logging.getLogger("train_segmenter")
EPS = 1e-6


def augment(images: torch.Tensor, masks: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random affine (no flips: left/right matter), brightness, contrast and gamma on a [0,1] batch."""
    n = images.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    angle = uniform(-8, 8) * math.pi / 180
    scale = uniform(0.9, 1.1)
    tx, ty = uniform(-0.06, 0.06), uniform(-0.06, 0.06)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    gamma = uniform(0.8, 1.25).view(n, 1, 1, 1)
    contrast = uniform(0.8, 1.2).view(n, 1, 1, 1)
    brightness = uniform(-0.08, 0.08).view(n, 1, 1, 1)
    images = images.clamp(0, 1) ** gamma
    images = ((images - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)
    return images, masks


def soft_dice_loss(prob: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    inter = (prob * target).sum(dim=(2, 3))
    denom = prob.sum(dim=(2, 3)) + target.sum(dim=(2, 3))
    return (1 - (2 * inter + 1) / (denom + 1)).mean()


def loss_full(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, target) + soft_dice_loss(torch.sigmoid(logits), target)


def loss_union(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lungs-union supervision: p = 1 - (1 - p_right)(1 - p_left); other channels unsupervised."""
    p = torch.sigmoid(logits[:, :2])
    union = (1 - (1 - p[:, :1]) * (1 - p[:, 1:2])).clamp(EPS, 1 - EPS)
    bce = -(target * torch.log(union) + (1 - target) * torch.log(1 - union)).mean()
    return bce + soft_dice_loss(union, target)


def to_tensor(images: np.ndarray, masks: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.from_numpy(images).float().div(255).unsqueeze(1), torch.from_numpy(masks).float().div(255))


@torch.no_grad()
def quick_val_dice(model: UNetLite0, images: torch.Tensor, masks: torch.Tensor) -> list[float]:
    """Monitoring only (input resolution, not used for any choice): Dice per structure on the JSRT val split."""
    model.eval()
    pred = torch.cat([torch.sigmoid(model(normalise(images[i : i + 8]))) for i in range(0, len(images), 8)]) > 0.5
    ref = masks > 0.5
    inter = (pred & ref).sum(dim=(2, 3)).float()
    dice = 2 * inter / (pred.sum(dim=(2, 3)) + ref.sum(dim=(2, 3))).float().clamp_min(1)
    model.train()
    return dice.mean(0).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop after this many epochs of the --epochs schedule (CPU time budget)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--covid-per-epoch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("tools/weights/segmenter.pt"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    jsrt, covid = cached("jsrt"), cached("covid")
    jsplit, csplit = jsrt_split(), covid_split()
    jt = np.isin(jsrt["names"], jsplit.train)
    jv = np.isin(jsrt["names"], jsplit.val)
    ct = np.isin(covid["names"], csplit.train)
    j_img, j_msk = to_tensor(jsrt["images"][jt], jsrt["masks"][jt])
    v_img, v_msk = to_tensor(jsrt["images"][jv], jsrt["masks"][jv])
    c_img, c_msk = to_tensor(covid["images"][ct], covid["masks"][ct])
    log.info("train: %d JSRT, %d COVID (%d/epoch); val: %d JSRT", len(j_img), len(c_img), args.covid_per_epoch,
             len(v_img))

    model = UNetLite0()
    load_imagenet_encoder(model)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(j_img) / args.batch) + math.ceil(args.covid_per_epoch / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.1)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        batches = [("jsrt", b) for b in np.array_split(rng.permutation(len(j_img)), steps_per_epoch -
                                                       math.ceil(args.covid_per_epoch / args.batch))]
        cov = rng.choice(len(c_img), size=args.covid_per_epoch, replace=False)
        batches += [("covid", b) for b in np.array_split(cov, math.ceil(args.covid_per_epoch / args.batch))]
        order = rng.permutation(len(batches))
        total = 0.0
        bar = tqdm([batches[i] for i in order], desc=f"epoch {epoch + 1}/{args.epochs}", leave=False)
        for kind, idx in bar:
            idx_t = torch.from_numpy(idx)
            images, masks = (j_img, j_msk) if kind == "jsrt" else (c_img, c_msk)
            x, y = augment(images[idx_t], masks[idx_t], gen)
            logits = model(normalise(x))
            loss = loss_full(logits, y) if kind == "jsrt" else loss_union(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        dice = quick_val_dice(model, v_img, v_msk)
        log.info("epoch %d loss %.4f val dice@%d %s (%.0fs)", epoch + 1, total / len(batches), INPUT_SIZE,
                 " ".join(f"{s}={d:.3f}" for s, d in zip(STRUCTURES, dice, strict=True)), time.time() - start)
        save(model, args, epoch + 1)
        if args.stop_after and epoch + 1 >= args.stop_after:
            log.info("stopping after %d of %d scheduled epochs", epoch + 1, args.epochs)
            break
    log.info("done in %.0fs -> %s", time.time() - start, args.out)


def save(model: UNetLite0, args: argparse.Namespace, epochs_done: int) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    payload = {
        "state_dict": state,
        "structures": list(STRUCTURES),
        "input_size": INPUT_SIZE,
        "epochs": epochs_done,
        "train_args": {k: str(v) for k, v in vars(args).items()},
        "split": {"jsrt_val": jsrt_split().val},
    }
    torch.save(payload, args.out)
    log.info("saved %s (sha256 %s)", args.out, hashlib.sha256(args.out.read_bytes()).hexdigest()[:12])


if __name__ == "__main__":
    main()
