#!/usr/bin/env bash
# Download benchmark (issue 4): logs a model with a 1 GiB artifact to the rig's plain MLflow,
# times the action's download against curl for the same files, reports peak RSS, then removes
# the model's artifacts and run. Usage: bash bench/download.sh [trials] [size_mib]
# (RUN_ID=<id> reuses a run logged before instead of logging a new one.)
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-3}
size_mib=${2:-1024}
rig_env=${RIG_STATE:-${RIG_CACHE:-/var/cache/mlflow-k8s-deploy-rig}/state}/rig.env
fact() { grep "^$1=" "$rig_env" | tail -1 | cut -d= -f2-; }
MLFLOW_URI=$(fact MLFLOW_URI)
MLFLOW_PYTHON=$(fact MLFLOW_PYTHON)
NODE=./node_modules/.bin/node

run_id=${RUN_ID:-}
if [ -z "$run_id" ]; then
out=$(SIZE_MIB=$size_mib MLFLOW_TRACKING_URI=$MLFLOW_URI "$MLFLOW_PYTHON" - <<'PY'
import os, tempfile, mlflow
size = int(os.environ["SIZE_MIB"])
mlflow.set_experiment("bench-download")
with tempfile.TemporaryDirectory() as d, mlflow.start_run(run_name=f"bench-{size}MiB") as run:
    m = os.path.join(d, "bench-model")
    os.makedirs(os.path.join(m, "data"))
    with open(os.path.join(m, "MLmodel"), "w") as f:
        f.write("flavors:\n  python_function:\n    loader_module: bench\n    env: {virtualenv: python_env.yaml}\n")
    with open(os.path.join(m, "requirements.txt"), "w") as f:
        f.write("mlflow\n")
    with open(os.path.join(m, "python_env.yaml"), "w") as f:
        f.write("python: 3.11\nbuild_dependencies: [pip]\ndependencies: [-r requirements.txt]\n")
    with open(os.path.join(m, "data", "blob.bin"), "wb") as f:
        chunk = os.urandom(1 << 20)  # incompressible, like weights
        for _ in range(size):
            f.write(chunk)
    mlflow.log_artifacts(m, "bench-model")
    print(f"RUN_ID={run.info.run_id}")
PY
)
run_id=$(grep -o 'RUN_ID=[0-9a-f]*' <<<"$out" | cut -d= -f2)
fi
echo "logged run $run_id"

cleanup() {
  # Proxied artifacts can be deleted through the server; then the run itself.
  root=$(curl -fsS "$MLFLOW_URI/api/2.0/mlflow/runs/get?run_id=$run_id" | "$MLFLOW_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["run"]["info"]["artifact_uri"].split(":",1)[1].lstrip("/"))')
  curl -fsS -X DELETE "$MLFLOW_URI/api/2.0/mlflow-artifacts/artifacts/$root/bench-model" >/dev/null || echo "warning: artifact delete failed" >&2
  curl -fsS -X POST -H 'content-type: application/json' -d "{\"run_id\":\"$run_id\"}" "$MLFLOW_URI/api/2.0/mlflow/runs/delete" >/dev/null
  echo "removed run $run_id and its artifacts"
}
if [ -n "${KEEP:-}" ]; then echo "KEEP set: run $run_id stays (clean up with RUN_ID=$run_id bash bench/download.sh 0)"; else trap cleanup EXIT; fi

# The download code is bundled with ncc, as the action ships, so neither timing nor peak RSS
# carries a TypeScript transform at run time.
bundle=$(mktemp -d)
"$NODE" ./node_modules/@vercel/ncc/dist/ncc/cli.js build bench/download.ts -o "$bundle" --quiet
# Ours and curl alternate within each trial (same page-cache conditions for both); RSS is the
# peak of the process that downloads, measured separately so curl runs do not count.
"$NODE" "$bundle/index.js" "$run_id" "$trials" both
/usr/bin/time -f 'ours only: wall %e s, peak RSS %M KiB' "$NODE" "$bundle/index.js" "$run_id" 1 ours
rm -rf "$bundle"
