#!/usr/bin/env bash
# One session on a lent GPU machine (1 CUDA GPU, 16 CPU cores), as run for the issue-6 numbers:
#   foreground: the GPU benchmark of the paper's CIFAR CNN (benchmarks/bench_deep_gpu.py) and the
#               CUDA tests (pytest -m gpu);
#   background: CPU training runs on Fashion-MNIST, one process per core, stopped at a deadline
#               (every run checkpoints per epoch; rerunning resumes it):
#               - deep_np.md check 5 at the paper's learning rate: NP and FA, seeds 0-2, 1e5 steps;
#               - check 7, the autoencoder: BP-SGD, FA and NP, seeds 0-2, as many epochs as fit.
# Usage (from the repository root): OUT=folder DEADLINE=seconds analysis/gpu_machine_session.sh
# Needs Fashion-MNIST IDX files under $BCI_CREDIT_DATA/fashion-mnist. Afterwards, here:
#   python analysis/deep_fashion_mnist.py --aggregate --runs-dir <unpacked deep_runs>
set -u
OUT=${OUT:-out/gpu_session}
DEADLINE=${DEADLINE:-500}
RUNS=${RUNS:-/tmp/deep_runs}
mkdir -p "$OUT" "$RUNS" /tmp/logs
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg
export BCI_CREDIT_DATA=${BCI_CREDIT_DATA:-$PWD/.devdata}
PY=${PY:-python3}
start=$(date +%s)
pin() { if command -v taskset >/dev/null && taskset -c "$1" true 2>/dev/null; then taskset -c "$1" nice -n 5 "${@:2}"; else nice -n 5 "${@:2}"; fi; }
pids=()
core=1
for s in 0 1 2; do
  for m in np fa; do
    pin $core $PY analysis/deep_fashion_mnist.py --part check5 --method $m --seed $s --runs-dir "$RUNS" \
      > /tmp/logs/check5_${m}_s$s.log 2>&1 & pids+=($!); core=$((core + 1))
  done
  for m in bp fa np; do
    pin $core $PY analysis/deep_fashion_mnist.py --part one --model autoencoder --method $m --seed $s --epochs 400 \
      --runs-dir "$RUNS" > /tmp/logs/ae_${m}_s$s.log 2>&1 & pids+=($!); core=$((core + 1))
  done
done
{ nvidia-smi; $PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"; } > /tmp/logs/gpu_info.log 2>&1
pin 0 timeout 260 $PY benchmarks/bench_deep_gpu.py --out "$OUT/deep_gpu.json" > /tmp/logs/bench_deep_gpu.log 2>&1
echo "bench rc=$? at $(( $(date +%s) - start )) s"
pin 0 timeout 150 $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_deep_cuda.py tests/test_deep_train.py \
  > "$OUT/pytest_gpu.log" 2>&1
echo "pytest rc=$? at $(( $(date +%s) - start )) s"
while [ $(( $(date +%s) - start )) -lt "$DEADLINE" ]; do
  alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 5
done
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
pkill -TERM -f analysis/deep_fashion_mnist.py  # the python children of the wrappers
sleep 3
echo "stopped background runs at $(( $(date +%s) - start )) s"
tail -n 3 /tmp/logs/*.log > "$OUT/logs_tail.txt" 2>&1
tar czf "$OUT/deep_runs.tar.gz" --exclude=checkpoint.pt -C "$(dirname "$RUNS")" "$(basename "$RUNS")" /tmp/logs 2>/dev/null
ls -la "$OUT"
