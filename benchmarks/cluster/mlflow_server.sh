#!/usr/bin/env bash
# A shared MLflow tracking server: PostgreSQL (the distribution's package) as the backend store and a served artifact
# store (`mlflow server --serve-artifacts`), as a lab would run one for its cluster. Debian/Ubuntu, as root:
#   benchmarks/cluster/mlflow_server.sh start [PORT] [ARTIFACT_DIR]   # default 5057, /var/lib/sgm-bench/mlartifacts
#   benchmarks/cluster/mlflow_server.sh stop
# Then point the workflow at it by the tracking URI alone:
#   MLFLOW_TRACKING_URI=http://HOST:PORT snakemake --cores all
# Database: sgm_bench, user sgm_bench, password sgm_bench (a test server: set your own for a shared one).
set -euo pipefail
cmd=${1:-start}
port=${2:-5057}
artifacts=${3:-/var/lib/sgm-bench/mlartifacts}
here=$(cd "$(dirname "$0")/../.." && pwd)
mlflow=${MLFLOW:-$(command -v mlflow || echo "$here/.venv/bin/mlflow")}
pidfile=/run/sgm-bench-mlflow.pid

if [[ $cmd == stop ]]; then
  [[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
  exit 0
fi

if ! command -v pg_ctlcluster >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_ctlcluster "$version" main start 2>/dev/null || true
for _ in $(seq 30); do pg_isready -q && break; sleep 1; done
su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='sgm_bench'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE USER sgm_bench WITH PASSWORD 'sgm_bench'\""
su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='sgm_bench'\"" | grep -q 1 ||
  su postgres -c "psql -qc 'CREATE DATABASE sgm_bench OWNER sgm_bench'"

"$mlflow" --version >/dev/null  # the server needs psycopg2: pip install -e ".[cluster]"
mkdir -p "$artifacts"
[[ -f $pidfile ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
nohup "$mlflow" server --backend-store-uri "postgresql://sgm_bench:sgm_bench@localhost/sgm_bench" \
  --artifacts-destination "$artifacts" --serve-artifacts --host 127.0.0.1 --port "$port" --workers 4 \
  > /var/log/sgm-bench-mlflow.log 2>&1 &
echo $! > "$pidfile"
for _ in $(seq 120); do
  if curl -sf "http://127.0.0.1:$port/health" >/dev/null; then
    echo "MLflow server at http://127.0.0.1:$port (backend postgresql://localhost/sgm_bench, artifacts $artifacts)"
    exit 0
  fi
  sleep 1
done
echo "the MLflow server did not answer; see /var/log/sgm-bench-mlflow.log" >&2
exit 1
