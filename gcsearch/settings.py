"""The typed settings of a space file's sections: backbone, data, train, search (frozen dataclasses), and
the values each key allows. No YAML here (``space.py`` reads and validates the file) and no torch: the
modules that train and count read these without importing the reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gcsearch.arch import BLOCK_POSITIONS, STAGES, block_kind
from gcsearch.objectives import DIRECTIONS

DATASETS = ("fashion_mnist", "cifar10", "cifar100", "imagefolder", "synthetic", "farcue")
# dataset -> (channels, height, width), classes
DATASET_SHAPES: dict[str, tuple[tuple[int, int, int], int | None]] = {
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "imagefolder": ((3, 224, 224), None),
    "synthetic": ((1, 28, 28), 10),
    "farcue": ((1, 40, 40), 10),
}
SAMPLERS = ("tpe", "nsga2", "random", "grid", "gp")
PRUNERS = ("none", "median", "successive_halving", "hyperband", "pareto")
PRUNER_SETTINGS = {
    "none": (),
    "median": ("min_epochs", "startup_trials", "min_fidelity", "fidelity_trials"),
    "successive_halving": ("min_epochs", "reduction_factor", "min_fidelity", "fidelity_trials"),
    "hyperband": ("min_epochs", "reduction_factor", "min_fidelity", "fidelity_trials"),
    "pareto": ("min_epochs", "reduction_factor", "min_fidelity", "fidelity_trials"),
}
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "constant", "constant_decay")
DEVICES = ("auto", "cpu", "cuda")
LATENCY_DEVICES = ("cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class PretrainConfig:
    """How a search makes its own trained backbone (``backbone.pretrain``): the baseline without GC,
    trained once with the file's train section and these overrides (None = the file's value)."""

    epochs: int = 4
    train_subset: int | None = None  # None = every training image left after val_size
    lr: float | None = None
    schedule: str | None = None
    batch_size: int | None = None
    seed: int = 0


@dataclass(frozen=True)
class BackboneConfig:
    name: str = "proxy_resnet"
    width: int = 16
    depth: tuple[int, ...] = (1, 1, 1, 1)
    block: str = "basic"
    input_size: tuple[int, int, int] = (1, 28, 28)  # C, H, W
    num_classes: int = 10
    # Fine-tuning (the paper's protocol): every trial starts from these trained backbone weights, GC blocks
    # inserted with their zero-initialised last conv. ``pretrain`` makes the file once, before the trials.
    weights: str | None = None
    weights_sha256: str | None = None  # the file's hash, pinned in a run's space.yaml: a resume checks it
    pretrain: PretrainConfig | None = None

    @property
    def stages(self) -> tuple[str, ...]:
        return STAGES[: len(self.depth)] if self.name == "proxy_resnet" else STAGES

    @property
    def positions(self) -> tuple[str, ...]:
        return BLOCK_POSITIONS[block_kind(self.name, self.block)]

    def build_kwargs(self) -> dict[str, Any]:
        """Arguments of ``models.build_model`` (torch-free so the space stays importable)."""
        return {
            "backbone": self.name,
            "num_classes": self.num_classes,
            "in_channels": self.input_size[0],
            "width": self.width,
            "depth": list(self.depth),
            "block": self.block,
        }


@dataclass(frozen=True)
class FarCueConfig:
    """The far-cue task (``nn/farcue.py``): an item and a cue on a canvas, the label needing both."""

    canvas: int = 40  # px, square; backbone.input_size is [1, canvas, canvas]
    item_size: int = 14  # the Fashion-MNIST item, area-resized to this many px
    cue: int = 5  # px of the cue's square
    min_distance: int = 20  # empty px at least between item and cue: more than the proxy's c5 sees
    shapes: tuple[str, ...] = ("blank", "square")  # cue i shifts the label by i * shift
    shift: int = 5
    seed: int = 0  # the placements' seed (the test split's is seed + 1)
    # The cue's brightness, drawn per image uniformly from [contrast, 1] x 255: below 1 a faint cue is harder to
    # read than a bright one, so how well a block reads it is graded rather than a switch. 1 = always 255.
    contrast: float = 1.0


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "fashion_mnist"
    root: str | None = None  # absolute once read: a relative one is resolved against the working directory
    train_subset: int | None = None  # images drawn (seeded) from the training split; None = all
    val_size: int = 5000  # held out of the training split; the test split is never used in search
    flip: bool = True
    crop_padding: int = 2  # random crop after padding this many pixels; 0 = off
    resized_crop: float = 0.0  # random-resized crop: the smallest share of the image's area kept; 0 = off
    download: bool = False
    synthetic_size: int = 2048  # images of the synthetic dataset (train + val)
    # imagefolder: the decoded images live in a cache under cache_dir (default <output.dir>/cache) named by the
    # content it holds; a run pins that name (cache_key) in its space.yaml, so its trials open it unlisted and
    # a resume over a changed folder is refused like a change of recipe.
    cache_dir: str | None = None
    cache_key: str | None = None
    skip_bad: bool = False  # an unreadable image is skipped and counted, instead of stopping with its name
    farcue: FarCueConfig = field(default_factory=FarCueConfig)  # dataset farcue only


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    batch_size: int = 256
    optimizer: str = "sgd"
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    label_smoothing: float = 0.1
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # torch threads per trial; None = the trial's CPU share
    ema: float = 0.0  # decay of an EMA of the weights, also evaluated each epoch; 0 = off


@dataclass(frozen=True)
class LatencyConfig:
    """How a configuration's latency is measured (``nn/latency.py``): the whole model in eval mode, channels_last,
    BatchNorm folded into the convs, on ``device`` at ``batch`` images of ``resolution`` (None: the training
    input size), after a warm-up of at least ``warmup_s`` seconds and 20 runs, over ``runs`` timed runs (at
    least 200 at batch 1); the median, remeasured while the interquartile range exceeds ``max_spread`` of it (a
    configuration with GC is timed in alternation with the baseline: its ratios' range, the warm-up shared)."""

    device: str = "cpu"
    batch: int = 1
    threads: int = 1
    dtype: str = "float32"
    resolution: int | None = None
    runs: int = 50
    warmup_s: float = 2.0
    max_spread: float = 0.03
    attempts: int = 3  # measurements at most while the spread stays above max_spread; the steadiest is kept

    @property
    def timed_runs(self) -> int:
        """The runs timed per measurement: ``runs``, and at least 200 at batch 1 (each run is short there)."""
        return max(self.runs, 200) if self.batch == 1 else self.runs


@dataclass(frozen=True)
class SearchConfig:
    objectives: tuple[str, ...] = ("accuracy", "macs")
    trials: int = 24
    sampler: str = "tpe"
    pruner: str = "pareto"
    pruner_settings: dict[str, float] = field(default_factory=dict)
    cpu: float = 1.0
    gpu: float = 0.0
    concurrency: int | None = None  # None = as many as the resources allow
    max_macs: float | None = None
    seed: int = 0
    time_budget_s: float | None = None
    retries: int = 1
    # Seeds each reference trial (the baseline, the paper default) is trained with: their paired differences are
    # the noise the front is read against (a point within it of the baseline is marked so). 1 = no estimate.
    reference_seeds: int = 3
    latency: LatencyConfig = field(default_factory=LatencyConfig)  # measured when latency is an objective

    @property
    def directions(self) -> list[str]:
        return [DIRECTIONS[o] for o in self.objectives]
