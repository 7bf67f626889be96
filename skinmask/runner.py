"""`predict` as a library call: one input (image or video) -> mask file(s) on disk, and a summary record."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .atomic import refuse_existing
from .errors import IncompleteVideoError, OutputError
from .inference import SkinModel
from .inputs import InputItem
from .maps import mask_from_working, upsample_map
from .media import MaskVideoWriter, VideoReader, read_image, write_png
from .pipeline import prefetch, run_frames

if TYPE_CHECKING:
    from .corpus import Outcome
    from .sources import FrameSource

@dataclass
class PredictOptions:
    """How predict writes its outputs."""

    output_dir: Path
    threshold: float | None = None  # None: soft masks (probability x 255)
    video_format: str = "mkv"  # mkv (lossless FFV1) or png (a folder of PNGs)
    grids: bool = False
    grid_every: int = 30
    overwrite: bool = False
    skip_existing: bool = False  # skip inputs whose outputs all exist (predict_corpus); replace a half-done one's
    batch_size: int = 4
    keep_partial: bool = False
    overlay: bool = False  # also <rel>.overlay.png / .overlay.mp4: the mask tinted over the input


@dataclass
class Record:
    """What one output holds; the JSON-lines schema of `predict --json`."""

    input: str
    output: str | None
    kind: str
    frames: int = 0
    width: int = 0
    height: int = 0
    skin_fraction: float = 0.0
    mean_probability: float = 0.0
    seconds: float = 0.0
    engine: str = "torch"
    complete: bool = True
    error: str | None = None
    extra_outputs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def output_path(item: InputItem, opts: PredictOptions) -> Path:
    """Where the mask for ``item`` goes: <out>/<rel>.png for images, .mkv (or a PNG folder) for videos."""
    if item.kind == "video":
        return opts.output_dir / (item.rel.as_posix() + (".mkv" if opts.video_format == "mkv" else ""))
    return opts.output_dir / (item.rel.as_posix() + ".png")


def item_outputs(item: InputItem, opts: PredictOptions) -> list[Path]:
    """Every file ``predict_item`` writes for ``item`` whose presence means the input is done.

    (A video's ``--grids`` frames are written before its mask is committed, so they need no entry.)
    """
    outs = [output_path(item, opts)]
    if opts.grids and item.kind == "image":
        outs.append(opts.output_dir / (item.rel.as_posix() + ".grid.png"))
    if opts.overlay:
        outs.append(opts.output_dir / (item.rel.as_posix() + (".overlay.mp4" if item.kind == "video" else ".overlay.png")))
    return outs


def check_output(out: Path, item: InputItem, overwrite: bool) -> None:
    """Refuse to write over an input, or over an existing output without --overwrite."""
    if out.exists() and out.resolve() == item.path.resolve():
        raise OutputError(f"output would overwrite the input {item.path}; choose another --output folder", out)
    refuse_existing(out, overwrite)


class _Stats:
    """Running skin fraction and mean probability over frames, from the working-size maps (the same
    shares as the full-size maps up to the bilinear resize, at a fraction of the cost)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.fraction = 0.0
        self.mean = 0.0
        self.n = 0

    def add(self, prob: np.ndarray) -> None:
        self.n += 1
        self.fraction += (float(np.count_nonzero(prob >= self.threshold)) / prob.size - self.fraction) / self.n
        self.mean += (float(prob.mean()) - self.mean) / self.n


def _finish(record: Record, stats: _Stats, start: float, source) -> Record:
    """Fill in the summary fields; a source that ended early marks the record incomplete."""
    if source is not None:
        try:
            source.check_complete()
        except IncompleteVideoError as exc:
            record.complete = False
            record.error = str(exc)
    record.skin_fraction = round(stats.fraction, 6)
    record.mean_probability = round(stats.mean, 6)
    record.seconds = round(time.perf_counter() - start, 4)
    return record


def predict_item(
    model: SkinModel,
    item: InputItem,
    opts: PredictOptions,
    on_frames: Callable[[int], None] | None = None,
) -> Record:
    """Predict one input and write its outputs; raise a typed error on failure (nothing half-written)."""
    from .grids import activation_grid, overlay
    from .visualize import OverlayVideoWriter, activations_sheet

    start = time.perf_counter()
    out = output_path(item, opts)
    may_replace = opts.overwrite or opts.skip_existing
    check_output(out, item, may_replace)
    stats = _Stats(opts.threshold if opts.threshold is not None else model.threshold)
    record = Record(input=str(item.path), output=str(out), kind=item.kind, engine=model.engine)
    grid_dir = opts.output_dir / (item.rel.as_posix() + ".grids")
    overlay_path = opts.output_dir / (item.rel.as_posix() + (".overlay.mp4" if item.kind == "video" else ".overlay.png"))
    if opts.overlay:
        check_output(overlay_path, item, may_replace)

    if item.kind == "image":
        image = read_image(item.path)
        small = model.working_probability_image(image)
        write_png(out, mask_from_working(small, image.shape[:2], opts.threshold))
        stats.add(small)
        record.frames, (record.height, record.width) = 1, image.shape[:2]
        if opts.grids:
            grid_path = opts.output_dir / (item.rel.as_posix() + ".grid.png")
            write_png(grid_path, activations_sheet(model, image, note=item.path.name,
                                                   title=f"Activation maps - {item.path.name}"))
            record.extra_outputs.append(str(grid_path))
        if opts.overlay:
            write_png(overlay_path, overlay(image, upsample_map(small, image.shape[:2])))
            record.extra_outputs.append(str(overlay_path))
        if on_frames:
            on_frames(1)
    else:
        reader = VideoReader(item.path)
        record.width, record.height = reader.info.width, reader.info.height
        every = max(1, opts.grid_every)
        want = (lambda i: i % every == 0) if opts.grids else None
        with MaskVideoWriter(out, reader.info.fps, opts.video_format, opts.keep_partial) as writer, \
                OverlayVideoWriter(overlay_path, reader.info.fps, opts.keep_partial) as tinted:  # opens on first write
            for result in run_frames(model, prefetch(reader.timed()), opts.batch_size, want):
                writer.write(result.mask(opts.threshold), result.time_s)
                stats.add(result.small_prob)
                if opts.overlay:
                    tinted.write(overlay(result.frame, result.prob), result.time_s)
                if result.activations is not None:
                    grid_path = grid_dir / f"{result.index:06d}.png"
                    shown = f"{item.path.name}, frame {result.index}"
                    write_png(grid_path, activation_grid(result.prob, result.activations, model, result.frame,
                                                         note=shown, title=f"Activation maps - {shown}"))
                    record.extra_outputs.append(str(grid_path))
                if on_frames:
                    on_frames(1)
            record.frames = writer.frames
            record.height, record.width = (result.frame.shape[:2] if writer.frames else (record.height, record.width))
            writer.commit()
            if opts.overlay:
                tinted.commit()
                record.extra_outputs.append(str(overlay_path))
        return _finish(record, stats, start, reader)
    return _finish(record, stats, start, None)


def predict_items(
    model: SkinModel,
    items: list[InputItem],
    opts: PredictOptions,
    on_frames: Callable[[int], None] | None = None,
    jobs: int | None = None,
) -> Iterator[Outcome]:
    """:func:`predict_item` over many inputs, ``jobs`` at once (default: one per core), in input order.

    One input runs alone, exactly as :func:`predict_item`; with more, one input's decoding and PNG
    encoding overlap another's inference. A failed input is an Outcome with its error line.
    """
    from .corpus import each

    return each(lambda item, frames: predict_item(model, item, opts, frames), items, on_frames, jobs)


def predict_corpus(
    items: list[InputItem],
    opts: PredictOptions,
    model: SkinModel,
    cluster: Any = None,
    on_frames: Callable[[int], None] | None = None,
) -> Iterator[Outcome]:
    """Predict a corpus: leftovers of killed runs swept, finished inputs skipped with ``opts.skip_existing``,
    the rest through :func:`predict_items` here or, with ``cluster`` (a :class:`skinmask.cluster.Cluster`),
    on its Dask workers. Outcomes come in input order."""
    from . import corpus

    if cluster is None:
        process = lambda todo: predict_items(model, todo, opts, on_frames)  # noqa: E731
    else:
        process = cluster.process(predict_items, model, opts, on_frames)
    grids = (lambda item: [opts.output_dir / (item.rel.as_posix() + ".grids")] if opts.grids and item.kind == "video"
             else [])
    return corpus.run(items, lambda item: item_outputs(item, opts), process, opts.skip_existing, grids)


def predict_stream(
    model: SkinModel,
    source: FrameSource,
    sink,
    opts: PredictOptions,
    output: str | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> Record:
    """Predict a streamed source (stdin image, raw frames, a video sent to stdout) into ``sink``.

    ``sink`` takes each uint8 mask with ``write`` and is finished with ``commit``
    (see :mod:`skinmask.sources`). Frames go through the shared pipeline; a single image takes
    the same (tiled when large) path as :func:`predict_item`.
    """
    start = time.perf_counter()
    stats = _Stats(opts.threshold if opts.threshold is not None else model.threshold)
    record = Record(input=source.name, output=output, kind=source.kind, engine=model.engine)
    if source.kind == "image":
        probs: Iterator[tuple[np.ndarray, tuple[int, ...]]] = (
            (model.working_probability_image(f.image), f.image.shape[:2]) for f in source.frames)
    else:
        probs = ((r.small_prob, r.frame.shape[:2]) for r in run_frames(model, prefetch(source.frames), opts.batch_size))
    with sink:
        for small, size in probs:
            sink.write(mask_from_working(small, size, opts.threshold))
            stats.add(small)
            record.frames += 1
            record.height, record.width = size
            if on_frames:
                on_frames(1)
        sink.commit()
    return _finish(record, stats, start, source)
