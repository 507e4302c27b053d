#!/usr/bin/env bash
# `npm run demo`: the action end to end on the local rig. Brings the rig up (which registers the
# sample wine model), runs dist/index.js exactly as a GitHub runner would (INPUT_* variables,
# GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), then prints the URL and a real prediction fetched
# through the rig's ingress (Envoy), with the service's host as Host, as a load balancer would.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x node_modules/node/bin/node ] || npm ci --no-audit --no-fund
export PATH=$PWD/node_modules/.bin:$PATH

bash test/rig/rig.sh up
eval "$(bash test/rig/rig.sh env)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
: >"$work/output"; : >"$work/summary"

echo
echo "== mlflow-k8s-deploy: models:/$FIXTURE_MODEL@$FIXTURE_ALIAS → Knative on the rig =="
status=0
env GITHUB_OUTPUT="$work/output" GITHUB_STEP_SUMMARY="$work/summary" RUNNER_TEMP="$work" \
  DOCKER_HOST="$DOCKER_HOST" KUBECONFIG="$KUBECONFIG_ADMIN" \
  "INPUT_MODEL-URI=models:/$FIXTURE_MODEL@$FIXTURE_ALIAS" \
  "INPUT_TRACKING-URI=$MLFLOW_URI" \
  "INPUT_TARGET=knative" \
  "INPUT_NAME=wine-demo" \
  "INPUT_NAMESPACE=default" \
  "INPUT_IMAGE-REPOSITORY=$REGISTRY/wine-classifier" \
  "INPUT_BASE-IMAGE=$KSERVE_BASE_IMAGE" \
  "INPUT_BUILD-NETWORK=host" \
  "INPUT_INGRESS-ADDRESS=$GATEWAY_HTTP_ADDRESS" \
  "INPUT_TIMEOUT=10m" \
  node dist/index.js | grep -v "^::debug::" || status=${PIPESTATUS[0]}

# GITHUB_OUTPUT holds name<<DELIMITER blocks; print the one-line outputs.
output() { awk -v k="$1" '$0 ~ "^"k"<<" {getline; print; exit}' "$work/output"; }
echo
for k in url revision image cache-hit model-version run-id; do printf '%-14s %s\n' "$k:" "$(output "$k")"; done
[ $status -eq 0 ] || { echo "the action failed (exit $status)"; exit $status; }

url=$(output url)
body='{"inputs": ['
first=1
# One row of the wine data, column by column as the model's signature names them.
while IFS='=' read -r col val; do
  [ $first -eq 1 ] || body+=', '
  first=0
  body+="{\"name\": \"$col\", \"shape\": [1], \"datatype\": \"FP64\", \"data\": [$val]}"
done <<'ROW'
alcohol=13.2
malic_acid=1.78
ash=2.14
alcalinity_of_ash=11.2
magnesium=100.0
total_phenols=2.65
flavanoids=2.76
nonflavanoid_phenols=0.26
proanthocyanins=1.28
color_intensity=4.38
hue=1.05
od280/od315_of_diluted_wines=3.4
proline=1050.0
ROW
body+=']}'
host=${url#*://}; host=${host%%/*}
echo
echo "POST $url/v2/models/wine-demo/infer (through Envoy at $GATEWAY_HTTP_ADDRESS, Host: $host)"
curl -fsS -H "Host: $host" -H 'Content-Type: application/json' -d "$body" \
  "http://$GATEWAY_HTTP_ADDRESS/v2/models/wine-demo/infer"
echo
