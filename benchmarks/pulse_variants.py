"""Measure the trace choices that matter for rPPG on UBFC-rPPG clips, then print MAE tables.

    python benchmarks/pulse_variants.py ../shared/data/ubfc_rppg            # traces + tables
    python benchmarks/pulse_variants.py ../shared/data/ubfc_rppg --tables   # tables from cached traces

One decode per clip feeds every variant (the model runs once per mask scale), using trace.py's own
pixel_weights / weighted_mean_rgb, so the numbers are those `skinmask pulse-eval --region skin` gives for
the same options. Traces are cached in out/pulse_traces/ (git-ignored; derived from research data, never commit).
Then every variant is scored with every method and detrending, with heart-rate tracking across windows
(the default, `--track 4`) and without it (`t0`): bpm MAE over 10 s windows (1 s step) against the PPG's
spectral peak in the same frames.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from skinmask import rppg
from skinmask.baselines import ycrcb_mask
from skinmask.groundtruth import check_length, read_ubfc, window_bpm
from skinmask.inference import load_model
from skinmask.media import VideoReader
from skinmask.pulse import find_clips
from skinmask.trace import TraceOptions, pixel_weights, weighted_mean_rgb

CACHE = Path("out/pulse_traces")
TRACKS = (rppg.TRACK_BPM_PER_S, 2.0, 6.0, 0.0)  # bpm/s; 0 = each window's highest peak alone
SMOOTH = 0.5
CUTOFFS = (0.5, 0.6, 0.8, 0.9)  # Hz; "smooth" itself is 0.7 Hz


def variants_for(scale: float, default_scale: float) -> list[tuple[str, TraceOptions]]:
    """(name, options) computed from the masks of one model scale."""
    out = [(f"soft s={scale}", TraceOptions(mask_scale=scale)),
           (f"threshold 0.5 s={scale}", TraceOptions(threshold=0.5, mask_scale=scale))]
    if scale == default_scale:
        out += [
            ("threshold 0.3", TraceOptions(threshold=0.3, mask_scale=scale)),
            ("threshold 0.7", TraceOptions(threshold=0.7, mask_scale=scale)),
            ("thr 0.5 keep-clipped", TraceOptions(threshold=0.5, exclude_clipped=False, mask_scale=scale)),
            ("soft keep-clipped", TraceOptions(exclude_clipped=False, mask_scale=scale)),
            (f"thr 0.5 smooth {SMOOTH}", TraceOptions(threshold=0.5, mask_scale=scale, smooth=SMOOTH)),
            (f"soft smooth {SMOOTH}", TraceOptions(mask_scale=scale, smooth=SMOOTH)),
        ]
    return out


def compute_traces(video: Path, weights: str | None, scales: list[float], baselines: bool) -> dict[str, np.ndarray]:
    """Every variant's (N, 3) trace from one decode: model variants for ``scales``, or the two baselines."""
    from dataclasses import replace

    if not baselines:
        base = load_model(weights, "cpu")
        own = base.meta.scale
        models = {s: replace(base, meta=replace(base.meta, scale=s), max_working_pixels=None) for s in scales}
        names = [n for s in scales for n, _ in variants_for(s, own)]
    else:
        names = ["whole", "ycrcb"]
    rows: dict[str, list] = {n: [] for n in names}
    prev: dict[str, np.ndarray] = {}
    plain = TraceOptions()
    for frame in VideoReader(video):
        if baselines:
            ones = np.ones(frame.shape[:2], np.float32)
            rows["whole"].append(weighted_mean_rgb(frame, pixel_weights(frame, ones, plain)))
            yc = ycrcb_mask(frame).astype(np.float32)
            rows["ycrcb"].append(weighted_mean_rgb(frame, pixel_weights(frame, yc, plain)))
            continue
        for s in scales:
            prob = models[s].probabilities(frame[None])[0]
            for name, opts in variants_for(s, own):
                p = prob
                if opts.smooth > 0:  # the same EMA as trace.trace_frames
                    p = opts.smooth * prev[name] + (1 - opts.smooth) * prob if name in prev else prob
                    prev[name] = p
                rows[name].append(weighted_mean_rgb(frame, pixel_weights(frame, p, opts)))
    return {n: np.asarray(v, np.float64) for n, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--tables", action="store_true", help="only score cached traces")
    ap.add_argument("--scales", default=None, help="model scales to trace, comma-separated (1.0 is slow) "
                    "[default: 0.25 and the weights' own]")
    ap.add_argument("--baselines-only", action="store_true", help="trace only the whole-frame and YCrCb baselines")
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--step", type=float, default=1.0)
    args = ap.parse_args()
    import hashlib

    from skinmask.weights import resolve_weights

    wpath = resolve_weights(args.weights)
    cache_dir = CACHE / hashlib.sha256(wpath.read_bytes()).hexdigest()[:10]  # traces depend on the weights
    cache_dir.mkdir(parents=True, exist_ok=True)
    base_dir = CACHE / "baselines"
    base_dir.mkdir(parents=True, exist_ok=True)
    print(f"weights {wpath} -> traces in {cache_dir}", file=sys.stderr)
    from skinmask.weights import read_weights

    own = read_weights(wpath)[1].scale
    scales = [float(v) for v in (args.scales or f"0.25,{own:g}").split(",") if v]
    clips = find_clips(args.folder)
    fps_of: dict[str, float] = {}
    for clip in clips:
        with VideoReader(clip.video) as r:
            fps_of[clip.name] = r.info.fps
        for is_base, folder in ((True, base_dir), (False, cache_dir)):
            if is_base is False and args.baselines_only:
                continue
            cache = folder / (f"{clip.name}.npz" if is_base else f"{clip.name}_{'_'.join(map(str, scales))}.npz")
            if not cache.exists() and not args.tables:
                t = time.time()
                np.savez(cache, **compute_traces(clip.video, args.weights, scales, is_base))
                print(f"{clip.name}: traced {cache} in {time.time() - t:.0f} s", file=sys.stderr, flush=True)

    results: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    for clip in clips:
        data = {}
        for f in sorted(base_dir.glob(f"{clip.name}.npz")) + sorted(cache_dir.glob(f"{clip.name}_*.npz")):
            with np.load(f) as z:
                data.update({k: z[k] for k in z.files})
        if not data:
            continue
        gt, fps = read_ubfc(clip.gt), fps_of[clip.name]
        n = len(next(iter(data.values())))
        check_length(gt, n)
        bounds = rppg.window_bounds(n, fps, args.window, args.step)
        ref = [window_bpm(gt, s, e, fps) for s, e in bounds]
        for variant in data:
            for method in rppg.METHODS:
                for det in rppg.DETRENDS:
                    for track in TRACKS if (method, det) == ("pos", "smooth") else (rppg.TRACK_BPM_PER_S, 0.0):
                        ws = list(rppg.estimate_windows(data[variant], fps, method, args.window, args.step, det,
                                                        track_bpm_per_s=track))
                        err = [w.bpm - g for w, g in zip(ws, ref) if w.bpm is not None and g is not None]
                        results.setdefault((variant, method, f"{det}/t{track:g}"), {})[clip.name] = err
            for cutoff in CUTOFFS:  # sensitivity of the smoothness-priors cut-off (default: the band edge)
                err = []
                for (s, e), g in zip(bounds, ref):
                    x = rppg.pulse_signal(rppg.fill_gaps(data[variant][s:e]), fps, "pos")
                    bpm, _ = rppg.spectral_bpm(rppg.bandpass(rppg.detrend(x, fps, "smooth", cutoff), fps), fps)
                    if bpm is not None and g is not None:
                        err.append(bpm - g)
                results.setdefault((variant, "pos", f"sm{cutoff:g}Hz/t0"), {})[clip.name] = err
    names = sorted({n for per in results.values() for n in per}, key=[c.name for c in clips].index)

    def mae(errs: list[float]) -> float:
        return float(np.mean(np.abs(errs))) if errs else float("nan")

    print(f"bpm MAE over {args.window:g} s windows, {args.step:g} s step; clips: {', '.join(names)}")
    print(f"{'variant':22s} {'method':6s} {'detrend/track':13s} " + " ".join(f"{n[-9:]:>9s}" for n in names)
          + f" {'ALL':>6s} {'RMSE':>6s}")
    for (variant, method, det), per in sorted(results.items()):
        allerr = [e for n in names for e in per.get(n, [])]
        pairs_ok = len(allerr)
        rmse = float(np.sqrt(np.mean(np.square(allerr)))) if pairs_ok else float("nan")
        print(f"{variant:22s} {method:6s} {det:13s} " + " ".join(f"{mae(per.get(n, [])):9.2f}" for n in names)
              + f" {mae(allerr):6.2f} {rmse:6.2f}")


if __name__ == "__main__":
    main()
