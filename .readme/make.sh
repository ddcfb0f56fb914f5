#!/usr/bin/env bash
# Regenerate the README's figures from the current code: each block reruns the commands that draw its figures and
# copies them here. Run from anywhere: .readme/make.sh  (FILTERLAB: the command to run, default "python -m filterlab";
# FILTERLAB_DATASETS: the folder of the shared datasets, default ../shared/datasets beside the repository).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
cd "$REPO"
FILTERLAB="${FILTERLAB:-python -m filterlab}"
DATASETS="${FILTERLAB_DATASETS:-$REPO/../shared/datasets}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
fl() { $FILTERLAB "$@"; }

# --- figures: single image, classifier, comparison (issue 12) ---------------------------------------------------------
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
# --- end of the figures block (issue 12) -------------------------------------------------------------------------------

ls -l "$HERE"
