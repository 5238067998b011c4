#!/bin/bash
# Every figure of the speed sections of docs/performance.md, in sequence, on a quiet machine
# (about 15 minutes on 2 cores): run from the repository root after `make .venv/bin/sketchrnn`.
#
#   bash benchmarks/speed_figures.sh [OUT]     # each output also in OUT/ (runs/speed_figures)
#
# The @magenta/sketch columns need Node (Debian's) and the repository's node_modules
# (`make node_modules`: package-lock.json's @magenta/sketch), or NODE_MODULES=/path/to/it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-runs/speed_figures}
mkdir -p "$OUT"
NODE=()
if [ -n "${NODE_MODULES:-}" ]; then NODE=(--node-modules "$NODE_MODULES"); fi

run() {  # run NAME COMMAND...: prints and keeps the output
    local name=$1
    shift
    echo "== $name: $*" | tee "$OUT/$name.txt"
    local start=$SECONDS
    "$@" 2>&1 | tee -a "$OUT/$name.txt"
    echo "   ($((SECONDS - start)) s)" | tee -a "$OUT/$name.txt"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs);" \
    "load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/machine.txt"

# Drawing: one decoder step, sampling, the server's first stroke (before/after the fused step,
# @magenta/sketch beside them).
run decoder_step "$PY" benchmarks/decoder_step.py --batch 1 9
run sampling "$PY" benchmarks/sampling_throughput.py --batch 100 --rounds 3 --single 20 \
    --node-sketches 20 "${NODE[@]}"
run web_latency "$PY" benchmarks/web_latency.py --repeats 30 --node-drawings 10 "${NODE[@]}"

# Training against the roofline, 1 and 2 threads (the paper preset at a smaller batch and length:
# its full-size step takes about a minute a thread count and cell).
run roofline "$PY" benchmarks/roofline.py --presets magenta,small --steps 2
# The mixture head's training loss: the fused kernel against the reference ops it replaced.
run mixture_loss "$PY" benchmarks/mixture_loss.py
run roofline_paper "$PY" benchmarks/roofline.py --presets paper --batch 20 --n-max 100 --steps 1
# The same at two threads with PyTorch's own OpenMP waiting (threads spin up to a few ms).
GOMP_SPINCOUNT=300000 run roofline_spin "$PY" benchmarks/roofline.py --presets magenta \
    --cells lstm,layernorm --threads 2 --steps 2

# Training beside a CPU hog: the default settings against fixed thread counts and policies.
run busy_machine "$PY" benchmarks/busy_machine.py --preset small --steps 3
echo "outputs in $OUT/"
