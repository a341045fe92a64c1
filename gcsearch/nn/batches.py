"""Batches as tensor operations on whole uint8 ``[N, C, H, W]`` batches, on the training device, no per-sample
Python: moving a batch to the device (``fetch``), normalisation, flips, crops after padding and random-resized
crops."""

from __future__ import annotations

import math

import torch


def fetch(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch (rows already gathered on the CPU, from memory or a memory-mapped cache) on ``device``: through
    pinned memory and asynchronously on CUDA, so the copy overlaps the previous step."""
    if device.type != "cuda":
        return x
    return x.pin_memory().to(device, non_blocking=True)


class Normalize:
    """uint8 [N, C, H, W] -> float, (x / 255 - mean) / std, in the memory format the model uses."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device, channels_last: bool):
        self.device = device
        self.scale = (1 / (255 * torch.tensor(std, device=device))).view(1, -1, 1, 1)
        self.shift = (-torch.tensor(mean, device=device) / torch.tensor(std, device=device)).view(1, -1, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(memory_format=self.memory_format).float()
        return torch.addcmul(self.shift, x, self.scale)


def augment(x: torch.Tensor, flip: bool, crop_padding: int, generator: torch.Generator,
            resized_crop: float = 0.0) -> torch.Tensor:  # fmt: skip
    """Random-resized crops (``resized_crop``: the smallest area share), horizontal flips and random crops after
    zero padding, for a whole uint8 batch at once, on its device."""
    if resized_crop:
        x = random_resized_crop(x, resized_crop, generator)
    n, c, h, w = x.shape
    dev = x.device
    if flip:
        mask = torch.rand(n, generator=generator, device=generator.device).to(dev) < 0.5
        x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
    if crop_padding:
        p = crop_padding
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        shifts = torch.randint(0, 2 * p + 1, (2, n), generator=generator, device=generator.device).to(dev)
        rows = (shifts[0].view(n, 1) + torch.arange(h, device=dev)).view(n, 1, h, 1)
        cols = (shifts[1].view(n, 1) + torch.arange(w, device=dev)).view(n, 1, 1, w)
        batch = torch.arange(n, device=dev).view(n, 1, 1, 1)
        chans = torch.arange(c, device=dev).view(1, c, 1, 1)
        x = padded[batch, chans, rows, cols]  # one gather: [N, C, H, W]
    return x


def random_resized_crop(x: torch.Tensor, min_area: float, generator: torch.Generator) -> torch.Tensor:
    """Each image's random crop of ``min_area``..1 of its area, aspect ratio 3/4..4/3 (the Inception crop),
    resized back to the batch's size: one affine grid and one bilinear sample for the whole batch."""
    n = x.shape[0]
    draw = torch.rand(4, n, generator=generator, device=generator.device).to(x.device)
    area = min_area + (1 - min_area) * draw[0]
    ratio = torch.exp(math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * draw[1])
    w, h = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)  # shares of width and height
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 1, 1] = w, h
    theta[:, 0, 2], theta[:, 1, 2] = (2 * draw[2] - 1) * (1 - w), (2 * draw[3] - 1) * (1 - h)  # centres, inside
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)
