"""`visualize` as library calls: filter sheets, activation sheets and mask overlays (images and videos).

The drawing lives in :mod:`skinmask.grids`; this module runs the model, picks frames and writes files.

    >>> model = load_model()
    >>> cv2.imwrite("filters.png", filters_sheet(model))
    >>> cv2.imwrite("grid.png", activations_sheet(model, read_image("face.jpg"), note="face.jpg"))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from . import grids
from .errors import OutputError, UsageError
from .inference import SkinModel, as_bgr
from .archs import ARCHITECTURES
from .media import AtomicVideoWriter, PyAvEncoder, VideoReader, pyav_encoder_available, write_file_atomic
from .pipeline import prefetch, run_frames

# Activation maps of larger frames are computed on a copy downscaled to this (as predict --grids does):
# a sheet tile is ~190 px wide, and 32 full-resolution float maps of a 12 MP photo would need 1.5 GB.
ACTIVATION_MAX_SIDE = 1024
# Overlay videos are H.264 (yuv420p, moov first: browsers, GitHub, Slack and Jupyter play them) through PyAV's
# libx264; without it, OpenCV's encoders, most widely playable first (the PyPI OpenCV wheel has only mp4v).
H264_OPTIONS = {"preset": "veryfast", "crf": "20"}
OVERLAY_CODECS = ("avc1", "mp4v")


# --- filters --------------------------------------------------------------------------------------


def _display_kernels(weight: np.ndarray, model: SkinModel) -> np.ndarray:
    """RGB-input kernels (N, 3, k, k) -> weights on 0..1 pixel values in B, G, R order (display order)."""
    spec = model.meta.input
    k = weight / np.asarray(spec.std, np.float32)[None, :, None, None]
    return k[:, ::-1] if spec.channel_order == "rgb" else k


def filters_sheet(model: SkinModel) -> np.ndarray:
    """The model's 32 first-layer filters (4x8 enlarged tiles) beside its sorted projection weights, BGR uint8.

    For the seed net conv1 sees RGB and each tile is a colour picture of its 3x3 kernel. For stem variants
    (softconv-ctx...) conv1 sees the stem's feature maps, so each tile shows its per-feature-map 3x3 kernels on a
    diverging scale, and the stem's first layer (the one that does see RGB) is drawn above as colour kernels.
    """
    net = model.net
    conv1 = net.conv1.weight.detach().float().cpu().numpy()  # (32, C, 3, 3)
    weights, bias = grids.projection_weights(model)
    path = model.weights_path
    caption = [f"weights file: {path if path is not None else '(in memory)'}",
               f"arch {net.arch}: {ARCHITECTURES[net.arch].summary}"]
    stem0 = None
    if conv1.shape[1] == 3:
        conv1 = _display_kernels(conv1, model)
        caption.append("kernels act on pixel values in 0..1 (the input normalisation is folded in)")
    else:
        from torch import nn  # here, not at import: predict imports this module, and its fast path needs no torch

        first = next(m for m in net.stem if isinstance(m, nn.Conv2d))
        stem0 = _display_kernels(first.weight.detach().float().cpu().numpy()[:, :3], model)
        caption.append(f"conv1 does not see RGB: it reads the stem's {conv1.shape[1]} feature maps (ReLU'd), so its "
                       "tiles show weights per feature map; the stem's first layer is the RGB one")
        if ARCHITECTURES[net.arch].face:
            caption.append("the stem's first layer also reads a 4th and 5th input, the person prior and the face map "
                           "(those weights are not drawn)")
        elif ARCHITECTURES[net.arch].prior:
            caption.append("the stem's first layer also reads a 4th input, the person prior (those weights are not drawn)")
        if ARCHITECTURES[net.arch].context:
            caption.append("conv1's inputs also carry the context branch (1/8 of the working size, upsampled and added "
                           "to the stem's maps; not drawn)")
    title = f"First-layer filters - {Path(path).name if path is not None else 'model in memory'}"
    return grids.filter_sheet(conv1, weights, bias, stem0=stem0, title=title, caption=tuple(caption)).image


# --- activations ----------------------------------------------------------------------------------


def downscale(frame: np.ndarray, max_side: int = ACTIVATION_MAX_SIDE) -> np.ndarray:
    """The frame shrunk (area-averaged) so its longer side is at most max_side; smaller frames unchanged."""
    h, w = frame.shape[:2]
    if max(h, w) <= max_side:
        return frame
    f = max_side / max(h, w)
    return cv2.resize(frame, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)


def activations_sheet(
    model: SkinModel,
    frame: np.ndarray,
    *,
    sort: str = "index",
    width: int = grids.DEFAULT_WIDTH,
    note: str | None = None,
    title: str | None = None,
    boxes: dict | None = None,
) -> np.ndarray:
    """One frame's sheet: input, mask, overlay and the 32 tanh maps on one -1..1 scale, BGR uint8.

    frame is uint8 BGR (or gray/BGRA) of any size; the maps are computed on a copy at most 1024 px on its
    longer side (said in the caption when it happens). sort: 'index' or 'weight'. ``boxes``, when given, is
    filled with the layout (name -> x, y, w, h), e.g. ``tile:<slot>``.
    """
    frame = as_bgr(frame)
    small = downscale(frame)
    probs, acts = model.probabilities_and_activations(small[None])
    sizes = f"input {frame.shape[1]}x{frame.shape[0]}, maps {acts.shape[3]}x{acts.shape[2]}"
    if small is not frame:
        sizes += f" (computed on a copy downscaled to {small.shape[1]}x{small.shape[0]})"
    note = f"{note};   {sizes}" if note else sizes
    return grids.activation_grid(probs[0], acts[0], model, small, sort=sort, width=width, title=title, note=note,
                                  boxes=boxes)


def video_activation_sheets(
    model: SkinModel,
    video: str | Path,
    every: int,
    *,
    sort: str = "index",
    width: int = grids.DEFAULT_WIDTH,
    batch_size: int = 4,
) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, sheet) for frames 0, every, 2 x every, ... of a video, streamed."""
    if every < 1:
        raise UsageError(f"--every must be at least 1, not {every}")
    name = Path(video).name
    for i, frame in enumerate(prefetch(VideoReader(video))):
        if i % every == 0:
            yield i, activations_sheet(model, frame, sort=sort, width=width, note=f"{name}, frame {i}",
                                       title=f"Activation maps - {name}, frame {i}")


# --- overlays -------------------------------------------------------------------------------------


def overlay_image(model: SkinModel, image: np.ndarray) -> np.ndarray:
    """The image with its skin mask tinted over it (alpha from the probability), BGR uint8, same size."""
    image = as_bgr(image)
    return grids.overlay(image, model.probability_image(image))


class OverlayVideoWriter(AtomicVideoWriter):
    """BGR frames as an .mp4 every player shows: H.264 yuv420p with the index first (``+faststart``) through
    PyAV's libx264; where that is missing, OpenCV's H.264 (avc1) if it has one, else MPEG-4 Part 2 (mp4v).

    ``codec`` names the one used ("h264", "avc1" or "mp4v"). Odd frame sizes are cropped to even, as the
    encoders need; otherwise as :class:`AtomicVideoWriter`.
    """

    def __init__(self, path: Path, fps: float, keep_partial: bool = False) -> None:
        super().__init__(path, fps, keep_partial)
        self.codec: str | None = None

    def _frame_size(self, frame: np.ndarray) -> tuple[int, int]:
        h, w = frame.shape[:2]
        if min(w, h) < 2:
            raise OutputError(f"frames of {w}x{h} are too small for a video", self.path)
        return w - w % 2, h - h % 2

    def _open_writer(self, size: tuple[int, int]) -> None:
        if pyav_encoder_available("libx264"):
            self._writer = PyAvEncoder(self._tmp, "libx264", self.fps, size, "yuv420p", H264_OPTIONS,
                                       {"movflags": "+faststart"}, name=self.path)
            self.codec = "h264"
            return
        for codec in OVERLAY_CODECS:
            writer = cv2.VideoWriter(str(self._tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*codec), self.fps, size)
            if writer.isOpened():
                self._writer, self.codec = writer, codec
                return
            writer.release()
        raise OutputError(f"cannot open an .mp4 writer ({' or '.join(OVERLAY_CODECS)}; OpenCV without FFmpeg?)",
                          self.path)

    def _encode(self, frame: np.ndarray, time_s: float | None = None) -> None:
        w, h = self._size or self._frame_size(frame)
        super()._encode(np.ascontiguousarray(frame[:h, :w]), time_s)


def write_overlay_video(
    model: SkinModel,
    video: str | Path,
    out: str | Path,
    *,
    batch_size: int = 4,
    keep_partial: bool = False,
    on_frames: Callable[[int], None] | None = None,
) -> int:
    """Write the overlay video of ``video`` to ``out`` (.mp4); returns the number of frames written."""
    reader = VideoReader(video)
    with OverlayVideoWriter(Path(out), reader.info.fps, keep_partial) as writer:
        for result in run_frames(model, prefetch(reader.timed()), batch_size):
            writer.write(grids.overlay(result.frame, result.prob), result.time_s)
            if on_frames:
                on_frames(1)
        writer.commit()
    return writer.frames


# --- files ----------------------------------------------------------------------------------------


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Encode by the file's suffix (.png, .jpg, ...) and write atomically; OutputError naming the file."""
    path = Path(path)
    try:
        ok, buf = cv2.imencode(path.suffix.lower() or ".png", image)
    except cv2.error:
        ok = False
    if not ok:
        raise OutputError(f"cannot encode an image as {path.suffix or '(no suffix)'}; use .png or .jpg", path)
    write_file_atomic(path, buf.tobytes())
