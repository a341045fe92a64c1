"""The decode-once image cache: an image folder read once, at the proxy resolution, into uint8 arrays that every
trial memory-maps (`gcsearch prepare`, and `gcsearch run` before its first trial).

    <data.cache_dir>/<key>/         key: a hash of what the cache holds (format, resolution, split seed and
        train_x.npy  uint8 [N, C, H, W]     sizes, the class mapping, and every training file's path, size and
        train_y.npy  int64 [N]              mtime): a changed folder gets a new key and is decoded again
        val_x.npy    val_y.npy          the validation images, held out of train/ by the split seed
        manifest.json                   classes (one mapping for every split), counts, resolution, the
                                        normalisation, skipped files, the arrays' content hash
    <data.cache_dir>/<key>-test/    the test split (the folder's val/), built only when asked

Only the images a search uses are decoded: the seeded training subset and the validation set. Decoding runs in
parallel over the node's cores (``decode.py``, PIL only), chunk by chunk into a memory-mapped file, in a
temporary directory renamed into place when whole: a killed build is never used. A trial opens the arrays
with ``mmap_mode="c"``: the OS page cache holds one copy per node however many trials read it, and nothing is
decoded inside a trial. On a cluster the cache lives under ``output.dir`` like the checkpoints, so nodes share
it by the same storage (an unshared ``output.dir`` breaks checkpoints too); a trial that cannot find it says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

from gcsearch import failpoints
from gcsearch.errors import ConfigError, DataError, Interrupted
from gcsearch.files import sweep_temporaries, temporary, write_atomic
from gcsearch.nn.decode import decode_rows, header_problem
from gcsearch.nn.readers import split_order

if TYPE_CHECKING:
    from gcsearch.space import SearchSpace

FORMAT = 2  # 2: EXIF orientation applied, 16-bit images scaled. Bump it when what a cache holds or how
# it is decoded changes: old caches are then never reused.
EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")  # torchvision's
CHUNK = 64  # images per task handed to a decode worker


@dataclass(frozen=True)
class Listing:
    """One split folder: its class names (sorted: the label of a class is its index) and its images."""

    folder: Path
    classes: tuple[str, ...]
    files: tuple[tuple[str, int, int, int], ...]  # (path relative to folder, label, bytes, mtime in ns)

    def signature(self) -> list[list[Any]]:
        return [list(f) for f in self.files]


def list_split(folder: Path) -> Listing:
    """The images of ``folder/<class>/...`` (subfolders of a class included, hidden files left out). Strings and
    os.scandir, not pathlib: listing runs before the parallel decode, and 8,000 Path objects cost a third of it."""
    if not folder.is_dir():
        raise ConfigError("root", f"must hold {folder.name}/<class>/<image>", str(folder.parent), "data.root")
    classes = sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ConfigError("root", f"must hold class folders under {folder.name}/, but it holds none", str(folder))
    files: list[tuple[str, int, int, int]] = []
    for label, name in enumerate(classes):
        found = _images_under(os.path.join(str(folder), name), name, label)
        if not found:
            raise ConfigError("root", f"must hold images in every class folder; {folder / name} holds none",
                              str(folder / name))  # fmt: skip
        files += found
    return Listing(folder, tuple(classes), tuple(files))


def _images_under(top: str, rel: str, label: int) -> list[tuple[str, int, int, int]]:
    """(path relative to the split, label, bytes, mtime in ns) of the images under ``top``, sorted by name."""
    found: list[tuple[str, int, int, int]] = []
    entries = sorted((e for e in os.scandir(top) if not e.name.startswith(".")), key=lambda e: e.name)
    for e in entries:
        if e.is_dir():
            found += _images_under(e.path, f"{rel}/{e.name}", label)
        elif e.name.lower().endswith(EXTENSIONS):
            st = e.stat()
            found.append((f"{rel}/{e.name}", label, st.st_size, st.st_mtime_ns))
    return found


@dataclass(frozen=True)
class Plan:
    """What a cache of a space holds: the training listing and the rows each split takes from it."""

    train: Listing
    val_rows: tuple[int, ...]
    train_rows: tuple[int, ...]
    size: tuple[int, int, int]
    key: str


def plan(space: SearchSpace) -> Plan:
    """The folder checked against the space, the split drawn, the key computed. Lists the folder (one stat per
    file: seconds per 100,000 images) and decodes nothing."""
    d, b = space.data, space.backbone
    root = Path(d.root or "")
    if not root.is_dir():
        raise ConfigError("root", "must name an existing image folder", str(root), f"{space.path}: data.root")
    train = list_split(root / "train")
    if (root / "val").is_dir():
        val_classes = sorted(e.name for e in os.scandir(root / "val") if e.is_dir() and not e.name.startswith("."))
        only = sorted(set(train.classes) ^ set(val_classes))
        if only:
            split = "train/" if only[0] in train.classes else "val/"
            raise ConfigError("root", f"must hold the same class folders in train/ and val/; {only[0]!r} is only in "
                              f"{split}", str(root), f"{space.path}: data.root")  # fmt: skip
    if len(train.classes) > b.num_classes:
        raise ConfigError("num_classes", f"must be at least the {len(train.classes)} classes of {root}/train",
                          b.num_classes, f"{space.path}: backbone.num_classes")  # fmt: skip
    n = len(train.files)
    if d.val_size >= n:
        raise ConfigError("val_size", f"must leave training images: {root}/train holds {n}", d.val_size,
                          f"{space.path}: data.val_size")  # fmt: skip
    order = split_order(n, space.train.seed)  # the in-memory datasets' rule
    val_rows, train_rows = order[: d.val_size], order[d.val_size :]
    if d.train_subset is not None:
        train_rows = train_rows[: d.train_subset]
    blob = json.dumps({"format": FORMAT, "size": list(b.input_size), "seed": space.train.seed, "val": d.val_size,
                       "subset": d.train_subset, "skip_bad": d.skip_bad, "classes": list(train.classes),
                       "files": train.signature()})  # fmt: skip
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return Plan(train, tuple(val_rows), tuple(train_rows), b.input_size, key)


def prepare(space: SearchSpace, stream: TextIO | None = None, test: bool = False) -> SearchSpace:
    """The space with its image cache built (or found) and its key pinned; other datasets come back as they are.
    ``test``: the test split (the folder's val/) too."""
    if space.data.dataset != "imagefolder":
        return space
    stream = stream or sys.stdout
    p = plan(space)
    pinned = space.data.cache_key
    if pinned and pinned != p.key:
        raise ConfigError("data.cache_key", f"must match the images the run started from ({pinned}); "
                          f"{space.data.root} now holds other files or settings ({p.key}). Give another --name for "
                          "other data")  # fmt: skip
    target = Path(space.data.cache_dir or "") / p.key
    if not (target / "manifest.json").is_file():
        rows = {"train": p.train_rows, "val": p.val_rows}
        _build(target, p.train, rows, p.size, space.data.skip_bad, stream)
    else:
        stream.write(f"data cache {target}: reused ({_summary(target)})\n")
    if test:
        prepare_test(space, p, stream)
    return dataclasses.replace(space, data=dataclasses.replace(space.data, cache_key=p.key))


def pin(space: SearchSpace) -> SearchSpace:
    """The space with the key its image folder has now (listed, nothing decoded): what names a pretrained
    backbone's file, which depends on the data it was trained on."""
    if space.data.dataset != "imagefolder":
        return space
    return dataclasses.replace(space, data=dataclasses.replace(space.data, cache_key=plan(space).key))


def prepare_test(space: SearchSpace, p: Plan, stream: TextIO) -> Path:
    test = list_split(Path(space.data.root or "") / "val")
    key = hashlib.sha256(json.dumps({"format": FORMAT, "size": list(p.size), "classes": list(p.train.classes),
                                     "files": test.signature()}).encode()).hexdigest()[:16]  # fmt: skip
    target = Path(space.data.cache_dir or "") / f"{p.key}-test-{key}"
    if not (target / "manifest.json").is_file():
        _build(target, test, {"test": tuple(range(len(test.files)))}, p.size, space.data.skip_bad, stream)
    return target


def _summary(target: Path) -> str:
    m = json.loads((target / "manifest.json").read_text())
    counts = ", ".join(f"{n:,d} {split}" for split, n in m["counts"].items())
    return f"{counts} images at {'x'.join(map(str, m['size']))}, {m['bytes'] / 2**20:,.0f} MiB"


def _build(target: Path, listing: Listing, rows: Mapping[str, Sequence[int]], size: tuple[int, int, int],
           skip_bad: bool, stream: TextIO) -> None:  # fmt: skip
    """Decode the rows of each split into ``target``, atomically (a temporary directory renamed when whole)."""
    sweep_temporaries(target.parent)  # builds on this host killed before they finished
    tmp = temporary(target)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = _decode_into(tmp, listing, rows, size, skip_bad, stream)
        write_atomic(tmp / "manifest.json", json.dumps(manifest, indent=1))
        try:
            os.rename(tmp, target)
        except OSError:  # another process built the same cache first: the same content, keep theirs
            if not (target / "manifest.json").is_file():
                raise
            shutil.rmtree(tmp)
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        raise Interrupted(
            f"interrupted: decoding {listing.folder} stopped, nothing kept (a cache is written whole or "
            "not at all); continue with: the same command, which decodes from the start"
        ) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    stream.write(f"data cache {target}: built ({_summary(target)})\n")


def _decode_into(tmp: Path, listing: Listing, rows: Mapping[str, Sequence[int]], size: tuple[int, int, int],
                 skip_bad: bool, stream: TextIO) -> dict[str, Any]:  # fmt: skip
    import multiprocessing

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    total = sum(len(r) for r in rows.values())
    checksums: list[int] = []
    counts: dict[str, int] = {}
    skipped: list[str] = []
    unreadable: list[tuple[str, str]] = []  # (path, why) of the split being decoded
    done, start, shown = 0, time.perf_counter(), 0.0
    tty = stream.isatty()
    stream.write(f"decoding {total:,d} images of {listing.folder} at {'x'.join(map(str, size))} on {cores} cores\n")
    # fork where there is fork (torch's DataLoader forks its workers the same way): the workers run decode.py
    # (PIL, numpy) only, and need no importable __main__ (spawn hangs a `python -` script's pool). Each writes its
    # rows into the memory-mapped array itself: no pixels cross a pipe, and this process only adds up.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    # The workers ignore Ctrl-C (a terminal sends it to them too): this process alone stops, in one line.
    workers = min(cores, max(1, total // CHUNK))
    with multiprocessing.get_context(method).Pool(workers, signal.signal, (signal.SIGINT, signal.SIG_IGN)) as pool:
        for split, split_rows in rows.items():
            root = str(listing.folder)
            paths = [os.path.join(root, listing.files[r][0]) for r in split_rows]
            labels = np.array([listing.files[r][1] for r in split_rows], dtype=np.int64)
            array = tmp / f"{split}_x.npy"
            np.lib.format.open_memmap(array, mode="w+", dtype=np.uint8, shape=(len(paths), *size)).flush()
            tasks = [(i, paths[i : i + CHUNK]) for i in range(0, len(paths), CHUNK)]
            work = partial(decode_rows, array=str(array), size=size)
            keep = np.ones(len(paths), dtype=bool)
            for (first, chunk_paths), chunk in zip(tasks, pool.imap(work, tasks), strict=True):
                checksums.append(chunk.crc)
                failpoints.hit("cache-chunk")
                for path, _ in chunk.bad:
                    keep[first + chunk_paths.index(path)] = False
                unreadable += chunk.bad
                done += len(chunk_paths)
                now = time.perf_counter()
                if now - shown > (0.5 if tty else 10) or done == total:
                    shown = now
                    line = f"  {done:,d}/{total:,d} images ({done / total:.0%}), {done / (now - start):,.0f}/s"
                    stream.write(("\r" + line) if tty else line + "\n")
                    stream.flush()
            if unreadable and not skip_bad:  # every bad file of the folder at once, not one per attempt
                raise DataError(bad_files(unreadable, "fix or remove them, or set data.skip_bad: true to skip them"))
            skipped += [path for path, _ in unreadable]
            unreadable = []
            kept = int(keep.sum())
            if kept < len(paths):  # skipped files left empty rows: the array keeps the images read
                _compact(array, keep)
            np.save(tmp / f"{split}_y.npy", labels[keep])
            counts[split] = kept
            if kept == 0:
                raise DataError(f"no image of the {split} split could be read ({len(skipped)} skipped)")
    if tty:
        stream.write("\n")
    if skipped:
        stream.write(f"skipped {len(skipped)} unreadable images (data.skip_bad), e.g. {skipped[0]}\n")
    mean, std = _normalisation(tmp / "train_x.npy") if "train" in counts else (np.zeros(size[0]), np.ones(size[0]))
    return {"format": FORMAT, "classes": list(listing.classes), "size": list(size), "counts": counts,
            "skipped": skipped, "mean": mean.tolist(), "std": std.tolist(),
            # the arrays' content: a hash of their chunks' crc32 checksums, in order
            "sha256": hashlib.sha256(json.dumps(checksums).encode()).hexdigest(),
            "bytes": sum(counts.values()) * int(np.prod(size)), "source": str(listing.folder)}  # fmt: skip


def _normalisation(array: Path, sample: int = 2048, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (0..1) of a seeded sample of the training images: the statistics
    of normalisation need no more, and summing every pixel cost more than decoding them. Summed a chunk at a time:
    the sample as float32 at once held 1.2 GB at 224 px, the driver's peak."""
    x = np.load(array, mmap_mode="r")
    rows = np.sort(np.random.default_rng(0).choice(len(x), min(sample, len(x)), replace=False))
    total, squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for i in range(0, len(rows), chunk):
        pixels = np.asarray(x[rows[i : i + chunk]], dtype=np.float64).transpose(1, 0, 2, 3).reshape(x.shape[1], -1)
        total += pixels.sum(1)
        squares += np.square(pixels).sum(1)
    n = len(rows) * x.shape[2] * x.shape[3]
    mean = total / n / 255
    std = np.sqrt(np.maximum(squares / n / 255**2 - mean**2, 0))
    return mean, np.maximum(std, 1e-3)


def _compact(path: Path, keep: np.ndarray) -> None:
    whole = np.load(path, mmap_mode="r")
    np.save(path.with_suffix(".part.npy"), whole[keep])
    del whole
    os.replace(path.with_suffix(".part.npy"), path)


def open_arrays(directory: Path, splits: Sequence[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A cache's manifest and its arrays, memory-mapped copy-on-write: read-only in effect, shared through the page
    cache by every process that maps them, and writable as far as torch.from_numpy cares."""
    manifest_path = directory / "manifest.json"
    if not manifest_path.is_file():
        raise DataError(
            f"the data cache {directory} is missing on this node: run `gcsearch prepare` (gcsearch "
            "run does before its first trial); on a cluster, every node must share output.dir"
        )
    manifest = json.loads(manifest_path.read_text())
    arrays = {f"{s}_{k}": np.load(directory / f"{s}_{k}.npy", mmap_mode="c") for s in splits for k in ("x", "y")}
    return manifest, arrays


def locate(space: SearchSpace, test: bool = False) -> tuple[Path, Path | None]:
    """Where a prepared space's cache is (its pinned key, or the key its folder has now), and its test split's;
    never builds one."""
    d = space.data
    key = d.cache_key or plan(space).key
    base = Path(d.cache_dir or "") / key
    if not test:
        return base, None
    tests = sorted(Path(d.cache_dir or "").glob(f"{key}-test-*"), key=lambda p: p.stat().st_mtime)
    if not tests:
        raise DataError(f"the test split of {d.root} is not prepared: run `gcsearch prepare --test {space.path}`")
    return base, tests[-1]


def unreadable_headers(space: SearchSpace, test: bool = False) -> tuple[int, list[tuple[str, str]]]:
    """``gcsearch validate``: every training image's header opened (and the folder's val/ with ``test``), nothing
    decoded; (how many files, the unreadable with why)."""
    folders = ["train", "val"] if test else ["train"]
    root = Path(space.data.root or "")
    bad, count = [], 0
    for split in folders:
        if split == "val" and not (root / "val").is_dir():
            continue
        listing = list_split(root / split)
        count += len(listing.files)
        for rel, *_ in listing.files:
            problem = header_problem(str(listing.folder / rel))
            if problem:
                bad.append((str(listing.folder / rel), problem))
    return count, bad


def bad_files(bad: Sequence[tuple[str, str]], advice: str, shown: int = 10) -> str:
    """Unreadable images in one message: the first ``shown`` with why, how many more, and what to do."""
    listed = "; ".join(f"{path} ({why})" for path, why in bad[:shown])
    more = f"; and {len(bad) - shown} more" if len(bad) > shown else ""
    return f"cannot read {len(bad)} image{'s' if len(bad) > 1 else ''}: {listed}{more}: {advice}"
