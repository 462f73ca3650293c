#!/usr/bin/env bash
# The GPU check of issue #5 (and the CUDA paths of #4, and #19's video), at most 5.5 minutes on one CUDA device:
#   1. benchmarks/gpu_bench.py: train-step throughput (fp32, bf16 autocast, channels_last, compile) and
#      inference latency/throughput (fp32, bf16, compile) of hg2 and hg8 at 256x256, with the device's peak;
#   2. benchmarks/grad_checkpointing.py --cuda: the GPU memory that gradient checkpointing saves (hg8);
#   3. the real training loop on CUDA through torchrun (nccl, one process): fp16 with gradient scaling and
#      SyncBatchNorm, then bf16, 30 steps each on synthetic figures, then `hourglass eval` of the result;
#   4. benchmarks/predict_video.py --device cuda: `hourglass predict` on a 1280x720 video (overlay written) against
#      the network alone, hg2 256x256 eager bf16 and fp32, with the CPU time of each stage's thread.
# Each phase gets at most what is left of the 5.5 minutes (TOTAL_S, default 330 s).
# Usage: bash benchmarks/gpu.sh [OUT_DIR]   (default $OUT, else runs/gpu). Copy the figures into
# docs/BENCHMARKS.md with the device line that gpu.jsonl starts with.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-runs/gpu}}
mkdir -p "$out"
py=python3
[ -x .venv/bin/python ] && py=.venv/bin/python
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$(date +%s)
total=${TOTAL_S:-330}
status=0
left() {  # seconds for the next phase: at most $1, and no more than what the budget has left
    local rest=$((total - ($(date +%s) - start)))
    [ "$rest" -lt "$1" ] && echo $((rest > 1 ? rest : 1)) || echo "$1"
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/nvidia-smi.txt"

timeout "$(left 180)" "$py" benchmarks/gpu_bench.py --out "$out" --budget-s 150 || status=1

timeout "$(left 30)" "$py" benchmarks/grad_checkpointing.py --model hg8 --batch 16 --size 256 --amp bf16 --cuda \
    2>&1 | tee "$out/grad_checkpointing.txt" || status=1

data=$(mktemp -d)
"$py" -m hourglass synth --out "$data/train" --num 256 --format mpii --seed 1 >/dev/null &&
    "$py" -m hourglass synth --out "$data/val" --num 64 --format mpii --seed 2 >/dev/null || status=1
for amp in fp16 bf16; do
    sets=(--set train.out_dir="$data/run-$amp" --set train.amp=$amp --set train.max_steps=30 --set train.epochs=100
          --set train.time_limit_s=null --set train.val_every=0 --set train.progress=false --set data.num_workers=2
          --set data.train.annotations="$data/train/annotations.json" --set data.train.images="$data/train"
          --set data.val.annotations="$data/val/annotations.json" --set data.val.images="$data/val")
    [ $amp = fp16 ] && sets+=(--set train.sync_batchnorm=true)
    timeout "$(left 45)" "$py" -m torch.distributed.run --nproc_per_node=1 -m hourglass train \
        --config synthetic-hg1 "${sets[@]}" 2>&1 | tail -n 4 | tee "$out/train-$amp.txt" || status=1
    timeout "$(left 20)" "$py" -m hourglass eval --config "$data/run-$amp/config.yaml" \
        --checkpoint "$data/run-$amp/last.safetensors" 2>&1 | tail -n 12 | tee -a "$out/train-$amp.txt" || status=1
done
rm -rf "$data"

timeout "$(left 45)" "$py" benchmarks/predict_video.py --device cuda --frames 240 --repeats 2 \
    --configs hg2:256:eager:bf16 hg2:256:eager:fp32 2>&1 | tee "$out/predict_video.txt" || status=1
echo "gpu.sh: $(($(date +%s) - start)) s, status $status; results in $out/"
exit $status
