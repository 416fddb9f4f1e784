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
DEFAULT_POS_WEIGHT = "1,1,2,10,10"
DEFAULT_DICE_WEIGHT = "1,1,1,2,2"


def augment(images: torch.Tensor, masks: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random affine (no flips: left/right matter), brightness, contrast and gamma on a [0,1] batch."""
    n = images.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:  # drawn on the CPU generator: same draws on any device
        return (lo + (hi - lo) * torch.rand(n, generator=gen)).to(images.device)

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
    """Soft Dice loss per (image, channel): (N, C)."""
    inter = (prob * target).sum(dim=(2, 3))
    denom = prob.sum(dim=(2, 3)) + target.sum(dim=(2, 3))
    return 1 - (2 * inter + 1) / (denom + 1)


def parse_channel_weights(text: str) -> torch.Tensor:
    values = [float(v) for v in text.split(",")]
    if len(values) != len(STRUCTURES):
        raise argparse.ArgumentTypeError(f"expected {len(STRUCTURES)} comma-separated values ({STRUCTURES})")
    return torch.tensor(values)


class LossTerms:
    """Per-channel BCE and soft-Dice terms of the JSRT loss, accumulated over an epoch (for the log)."""

    def __init__(self) -> None:
        self.bce = torch.zeros(len(STRUCTURES))
        self.dice = torch.zeros(len(STRUCTURES))
        self.n = 0

    def add(self, bce: torch.Tensor, dice: torch.Tensor) -> None:
        self.bce += bce.detach().cpu()
        self.dice += dice.detach().cpu()
        self.n += 1

    def describe(self) -> str:
        n = max(self.n, 1)
        return " ".join(f"{s}:bce={b / n:.3f},dice={d / n:.3f}"
                        for s, b, d in zip(STRUCTURES, self.bce.tolist(), self.dice.tolist(), strict=True))


def loss_full(logits: torch.Tensor, target: torch.Tensor, pos_weight: torch.Tensor, dice_weight: torch.Tensor,
              terms: LossTerms | None = None) -> torch.Tensor:
    """BCE (positives of channel c weighted by pos_weight[c]) + soft Dice weighted per channel.

    Plain mean BCE drives the small structures (clavicles: ~1 % of the pixels) to a saturated sigmoid within the
    first epoch, where the Dice gradient (x p(1-p)) vanishes: the positive weight keeps a non-vanishing gradient
    on their pixels and the Dice weight raises their share of the loss.
    """
    bce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight.view(1, -1, 1, 1),
                                             reduction="none").mean(dim=(0, 2, 3))
    dice = soft_dice_loss(torch.sigmoid(logits), target).mean(dim=0)
    if terms is not None:
        terms.add(bce, dice)
    return bce.mean() + (dice * dice_weight).sum() / dice_weight.sum()


def loss_union(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Lungs-union supervision: p = 1 - (1 - p_right)(1 - p_left); other channels unsupervised."""
    p = torch.sigmoid(logits[:, :2])
    union = (1 - (1 - p[:, :1]) * (1 - p[:, 1:2])).clamp(EPS, 1 - EPS)
    bce = -(target * torch.log(union) + (1 - target) * torch.log(1 - union)).mean()
    return bce + soft_dice_loss(union, target).mean()


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


@torch.no_grad()
def recalibrate_batch_norm(model: UNetLite0, images: torch.Tensor, batch: int) -> None:
    """Replace the running BN statistics with a plain average over batches of the JSRT training images.

    Training batches are single-source (JSRT or COVID) and the sources differ, so the exponential running average
    ends up dominated by whichever source the last few batches came from: the validation Dice of the last epochs
    swung by several points (heart 0.78-0.94) with a learning rate near zero. JSRT is the only source that
    supervises the heart and clavicles, so its statistics are the ones those outputs were trained under. Averaging
    in the COVID images instead (all of them, or one epoch's share) degraded the JSRT validation Dice (heart 0.20
    and 0.68): recorded in the model card as a choice made on the validation split.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches below
    model.train()
    for i in range(0, len(images), batch):
        model(normalise(images[i : i + batch]))
    for m in norms:
        m.momentum = 0.1
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--stop-after", type=int, default=None,
                        help="stop after this many epochs of the --epochs schedule (CPU time budget)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--covid-per-epoch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pos-weight", type=parse_channel_weights, default=parse_channel_weights(DEFAULT_POS_WEIGHT),
                        help=f"BCE weight of the positive pixels per channel {STRUCTURES}")
    parser.add_argument("--dice-weight", type=parse_channel_weights,
                        default=parse_channel_weights(DEFAULT_DICE_WEIGHT), help="soft-Dice weight per channel")
    parser.add_argument("--size", type=int, default=INPUT_SIZE, help="model input size (px, square)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--recalibrate", type=Path, default=None, metavar="WEIGHTS",
                        help="no training: recompute the batch-norm statistics of these weights and save to --out")
    parser.add_argument("--out", type=Path, default=Path("tools/weights/segmenter.pt"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    device = torch.device(args.device)
    jsrt, covid = cached("jsrt", args.size), cached("covid", args.size)
    jsplit, csplit = jsrt_split(), covid_split()
    jt = np.isin(jsrt["names"], jsplit.train)
    jv = np.isin(jsrt["names"], jsplit.val)
    ct = np.isin(covid["names"], csplit.train)
    j_img, j_msk = (t.to(device) for t in to_tensor(jsrt["images"][jt], jsrt["masks"][jt]))
    v_img, v_msk = (t.to(device) for t in to_tensor(jsrt["images"][jv], jsrt["masks"][jv]))
    c_img, c_msk = (t.to(device) for t in to_tensor(covid["images"][ct], covid["masks"][ct]))
    log.info("train: %d JSRT, %d COVID (%d/epoch); val: %d JSRT", len(j_img), len(c_img), args.covid_per_epoch,
             len(v_img))

    model = UNetLite0()
    load_imagenet_encoder(model)
    epochs_done = 0
    if args.recalibrate:
        trained = torch.load(args.recalibrate, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in trained["state_dict"].items()})
        epochs_done = int(trained["epochs"])
    model.to(device)
    pos_weight, dice_weight = args.pos_weight.to(device), args.dice_weight.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(len(j_img) / args.batch) + math.ceil(args.covid_per_epoch / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.1)
    start = time.time()
    for epoch in range(0 if args.recalibrate else args.epochs):
        model.train()
        batches = [("jsrt", b) for b in np.array_split(rng.permutation(len(j_img)), steps_per_epoch -
                                                       math.ceil(args.covid_per_epoch / args.batch))]
        cov = rng.choice(len(c_img), size=args.covid_per_epoch, replace=False)
        batches += [("covid", b) for b in np.array_split(cov, math.ceil(args.covid_per_epoch / args.batch))]
        order = rng.permutation(len(batches))
        total = 0.0
        terms = LossTerms()
        bar = tqdm([batches[i] for i in order], desc=f"epoch {epoch + 1}/{args.epochs}", leave=False)
        for kind, idx in bar:
            idx_t = torch.from_numpy(idx)
            images, masks = (j_img, j_msk) if kind == "jsrt" else (c_img, c_msk)
            x, y = augment(images[idx_t], masks[idx_t], gen)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                logits = model(normalise(x))
            logits = logits.float()
            loss = loss_full(logits, y, pos_weight, dice_weight, terms) if kind == "jsrt" else loss_union(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            bar.set_postfix(loss=f"{loss.item():.3f}")
        log.info("epoch %d JSRT loss terms %s", epoch + 1, terms.describe())
        dice = quick_val_dice(model, v_img, v_msk)
        log.info("epoch %d loss %.4f val dice@%d %s (%.0fs)", epoch + 1, total / len(batches), args.size,
                 " ".join(f"{s}={d:.3f}" for s, d in zip(STRUCTURES, dice, strict=True)), time.time() - start)
        epochs_done = epoch + 1
        save(model, args, epochs_done)
        if args.stop_after and epoch + 1 >= args.stop_after:
            log.info("stopping after %d of %d scheduled epochs", epoch + 1, args.epochs)
            break
    recalibrate_batch_norm(model, j_img, args.batch)
    dice = quick_val_dice(model, v_img, v_msk)
    log.info("after batch-norm recalibration: val dice@%d %s", args.size,
             " ".join(f"{s}={d:.3f}" for s, d in zip(STRUCTURES, dice, strict=True)))
    save(model, args, epochs_done)
    log.info("done in %.0fs -> %s", time.time() - start, args.out)


def save(model: UNetLite0, args: argparse.Namespace, epochs_done: int) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    payload = {
        "state_dict": state,
        "structures": list(STRUCTURES),
        "input_size": args.size,
        "epochs": epochs_done,
        "train_args": {k: v.tolist() if isinstance(v, torch.Tensor) else str(v) for k, v in vars(args).items()},
        "split": {"jsrt_val": jsrt_split().val},
    }
    torch.save(payload, args.out)
    log.info("saved %s (sha256 %s)", args.out, hashlib.sha256(args.out.read_bytes()).hexdigest()[:12])


if __name__ == "__main__":
    main()
