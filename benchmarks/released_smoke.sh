#!/usr/bin/env bash
# Full-size released-model stand-ins on a device: import (score_sde format, diffusers folder) and images per second of
# each applicable sampler at ~35 evaluations, into results/benchmarks/released_throughput_<device>.md.
# Usage: bash benchmarks/released_smoke.sh [cuda|cpu] [batch]
set -euo pipefail
cd "$(dirname "$0")/.."
device=${1:-cuda}
python benchmarks/released_throughput.py --device "$device" --batch "${2:-500}" \
  --out "results/benchmarks/released_throughput_${device%%:*}.md"
