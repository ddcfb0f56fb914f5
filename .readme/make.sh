#!/usr/bin/env bash
# Redraw the README's figures: every line reruns the command that drew one figure and copies it here.
# Run from anywhere; FILTERLAB may name the command (default: filterlab, e.g. .venv/bin/filterlab).
set -euo pipefail
cd "$(dirname "$0")/.."
FL=${FILTERLAB:-filterlab}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

# The convolution explainer (README: "The convolution explainer")
$FL convolve --kernel sobel_x --image edge6x6 --at 1,1 --pool max:2 --animate --out "$T/c" >/dev/null && cp "$T/c/convolve.png" .readme/convolve_6x6.png && cp "$T/c/convolve_pool.gif" .readme/convolve_6x6_pool.gif
$FL convolve --kernel sobel_x --image edge6x6 --stride 2 --padding 1 --animate --out "$T/s" >/dev/null && cp "$T/s/convolve.gif" .readme/convolve_stride2_pad1.gif
$FL convolve --kernel prewitt_x --image edge6x6 --dilation 2 --animate --out "$T/d" >/dev/null && cp "$T/d/convolve.gif" .readme/convolve_dilation2.gif
$FL convolve --gallery --image seven --out "$T/g" >/dev/null && cp "$T/g/kernel_gallery.png" .readme/kernel_gallery.png
$FL shapes configs/mnist_two_conv.yaml --field conv2 --at 5,9 --out "$T/f" >/dev/null && cp "$T/f/receptive_field.png" .readme/receptive_field.png

# What each filter detects (README: "What each filter detects"); trains two small runs on the MNIST files beside the
# repository (FILTERLAB_DATASETS may point elsewhere): the notebook net (about a minute on 2 CPU cores) and the article
D=${FILTERLAB_DATASETS:-../shared/datasets}
NB=$($FL train configs/notebook_two_conv.yaml --set data.root="$D/mnist" --set data.download=false --device cpu --out "$T/runs" -q | tail -1)
$FL visualize "$NB" --insight --image test:first-7 --out "$T/nb" >/dev/null && for f in filter_change_conv1 weights_conv1 top_patches_conv2 feature_vis_conv2 saliency; do cp "$T/nb/$f.png" .readme/; done
SI=$($FL train configs/single_four.yaml --set data.root="$D/mnist" --out "$T/runs" -q | tail -1)
$FL visualize "$SI" --insight --out "$T/si" >/dev/null && cp "$T/si/class_outputs.png" .readme/

# Figures of runs: single image, classifier, comparison
fl() { $FL "$@"; }
HERE=.readme
DATASETS="$D"
TMP="$T"
# The article's experiment as published: filters and similarity; the evolution of its first 1000 steps (12 snapshots,
# so that the GIF stays under 200 KB).
RUN=$(fl train configs/single_four.yaml -q --out "$TMP/runs" | tail -1)
cp "$RUN/figures/filters_raw.png" "$HERE/single_four_filters_raw.png"
cp "$RUN/figures/similarity.png" "$HERE/single_four_similarity.png"
RUN=$(fl train configs/single_four.yaml -q --out "$TMP/gif" --set train.steps=1000 --set output.snapshot_every=1000 \
      | tail -1)
cp "$RUN/figures/evolution.gif" "$HERE/single_four_evolution.gif"
# The classifier on Fashion-MNIST, two epochs.
RUN=$(fl train configs/fashion_quick.yaml -q --out "$TMP/runs" --set "data.root=$DATASETS/fashion-mnist" \
      --set data.download=false | tail -1)
cp "$RUN/figures/conv1_filters.png" "$HERE/fashion_quick_conv1_filters.png"
cp "$RUN/figures/curves.png" "$HERE/fashion_quick_curves.png"
# A sweep compared: the clean mechanism at three learning rates, three seeds each.
for lr in 0.003 0.01 0.03; do
  for seed in 0 1 2; do
    fl train configs/single_four_clean.yaml -q --out "$TMP/sweep" --set train.lr=$lr --seed $seed \
       --set output.figures=false >/dev/null
  done
done
CMP=$(fl compare "$TMP"/sweep/single_four_clean/* --out "$TMP/compare" | tail -1)
cp "$CMP/compare_groups.png" "$HERE/sweep_lr_groups.png"
cp "$CMP/compare_curves.png" "$HERE/sweep_lr_curves.png"
# --- end of the figures of runs ---

ls -l "$HERE"

# TensorBoard while fashion_quick trains (README: "Watching training in TensorBoard"); needs Debian's chromium
python .readme/tensorboard_shot.py "$T/tb" "$D/fashion-mnist" .readme/tensorboard_filters.png
