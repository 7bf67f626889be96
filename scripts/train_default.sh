#!/usr/bin/env bash
# Reproduce the shipped weights from ../shared/data (never copied into the repo) and their model-card numbers.
# Run from the repository root with the venv active. Same data + seed + thread count -> same weights on one machine.
#   scripts/train_default.sh            # train every shipped model, evaluate, install the default
set -euo pipefail
D=${SKINMASK_DATA:-../shared/data}
SETS="$D/sfa $D/fasseg_multipose01 $D/hgr1 $D/abdomen $D/ccp"
OUT=${OUT:-models}

# The shipped default (session 5's recipe, trained twice as long in session 7): the person prior plus a
# context branch at 1/8 of the working size (softconv-ms-prior), trained on the five sets plus cihp (train
# only): FASSEG's hair weighted 3x as a negative, people shrunk and pasted onto backgrounds, skin close-ups
# (crops magnified 2-4x), 30 % of the labelled crops with the prior zeroed, abdomen drawn twice as often;
# 128-pixel crops so the context branch has room; 6,000 steps, the moving average of the weights saved. Its
# threshold is the best mean F1 among those leaving no held-out split more than 0.01 below the session-3
# default (softconv-ctx), the regression guard of issue 13, and of those the highest within 0.001 of that best
# mean (fewer false alarms where the mean is flat). It is chosen with the person gate in place (session 10): in a
# frame whose skin share is at most 5 %, skin outside the person prior is dropped, ramped off by 15 %, so a
# close-up keeps its skin (skinmask/gate.py); and every frame where the shipped face networks find a face and the
# person covers at least 20 % of it is gated fully (a portrait whose backdrop is called skin). The gate acts
# after the network: the tensors are those of the same line without it. About 25 min on one thread (session 9).
# Float results depend on the CPU: sessions 7-10 re-made the same tensors (run L0) with this line; session 11's
# machine (an Intel Xeon) gives another draw of the recipe (see models/README.md, "Session 11"). The shipped file
# keeps L0's tensors: session 11 added the face-confirmed gate to session 10's file, and session 12 the fine pass
# for small people (skinmask/finepass.py: frames whose people are all small are worked on again at 2.5x inside
# them) to session 11's, and session 13 the face colour rule (skinmask/facecolour.py: near every face found, only
# that face's skin colour is skin) to session 12's, with
#   skinmask train $SETS --init models/softconv-ms-prior.safetensors --steps 0 --person-gate 0.05 0.15 \
#       --gate-faces 0.2 --fine-pass 0.7 0.2 2.5 --face-colour 3 6 3 --no-worse-than softconv-ctx \
#       --threshold-tie 0.001 --seed 0 --threads 1 -o OUT --overwrite
skinmask train $SETS $D/cihp --negatives $D/backgrounds --arch softconv-ms-prior --scale 0.4 --steps 6000 --batch 16 --crop 128 \
    --dice 1 --color-aug 0 --hair-weight 3 --person-paste 0.2 --closeups 0.3 --prior-dropout 0.3 --weight abdomen=2 \
    --ema 0.998 --no-worse-than softconv-ctx --person-gate 0.05 0.15 --gate-faces 0.2 --fine-pass 0.7 0.2 2.5 \
    --face-colour 3 6 3 --threshold-tie 0.001 \
    --seed 0 --threads 1 -o "$OUT/softconv-ms-prior.safetensors" --overwrite
# The session-3 default (--weights softconv-ctx): the context net at working scale 0.4, BCE + per-crop soft Dice.
skinmask train $SETS --negatives $D/backgrounds --arch softconv-ctx --scale 0.4 --steps 4000 --batch 24 --dice 1 --color-aug 0 --seed 0 --threads 1 \
    -o "$OUT/softconv-ctx.safetensors" --overwrite
# The seed net (3x3 conv -> 32 tanh -> 1x1), full resolution, BCE only, batch 16 (session 1).
skinmask train $SETS --negatives $D/backgrounds --arch softconv --scale 1.0 --steps 1500 --batch 16 --dice 0 --color-aug 0 --seed 0 --threads 1 \
    -o "$OUT/softconv.safetensors" --overwrite
# The person-prior net (session 4; --weights softconv-prior, not the default: see models/README.md): the
# context net with MediaPipe's person probability as a 4th input, trained on the five sets plus cihp (train
# only), FASSEG's hair weighted 3x as a negative, people shrunk and pasted onto backgrounds. The person maps
# of the training images are computed once by the run-time segmenter and cached (SKINMASK_PRIOR_CACHE,
# default /tmp/skinmask-prior-cache).
skinmask train $SETS $D/cihp --negatives $D/backgrounds --arch softconv-prior --scale 0.4 --steps 2500 --batch 24 --dice 1 --color-aug 0 \
    --hair-weight 3 --person-paste 0.2 --seed 0 --threads 1 -o "$OUT/softconv-prior.safetensors" --overwrite
cp "$OUT/softconv-ms-prior.safetensors" "$OUT/default.safetensors"

# Model-card numbers: held-out splits of every set, the no-people backgrounds, and the three baselines.
for w in softconv-ms-prior softconv-ctx softconv softconv-prior; do
    skinmask evaluate $SETS --negatives $D/backgrounds --weights "$OUT/$w.safetensors" --baselines --json > "/tmp/eval_$w.json"
done
