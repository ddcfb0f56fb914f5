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
