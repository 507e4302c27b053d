# Part "kserve": the real KServe controller manager (github.com/kserve/kserve, built from the Go
# module proxy) running on the host with its own client certificate (in system:masters), its CRDs, ClusterServingRuntimes and
# `inferenceservice-config` from the module's own config/, webhooks on :9443 behind a self-signed
# certificate (URL webhooks on loopback), the MLflow runtime's MLServer image and the storage
# initializer image (PyPI kserve-storage), both built here. Standard (raw) mode: Deployments and
# Services, run by the node part's kubelet. Needs the kube, docker, registry and mlserver parts.

: "${RIG_KSERVE_VERSION:=v0.20.0}"
: "${RIG_KSERVE_WEBHOOK_PORT:=9443}"
: "${RIG_KSERVE_METRICS_PORT:=18443}"
: "${RIG_KSERVE_PROBE_PORT:=18444}"
: "${RIG_KSERVE_STORAGE_VERSION:=0.20.0}"   # PyPI kserve-storage, the controller's version
KSERVE_DIR=$RIG_STATE/kserve

# --- build --------------------------------------------------------------------------------
# The manager as upstream builds it: a wrapper module requiring KServe alone, with KServe's own
# replace directives (controller-runtime, grpc pins bind only its own builds). Knative's
# controllers are built in their own module (knative.sh): in one module with KServe, Go's minimum
# version selection gives them KServe's newer OpenTelemetry, and every one of them panics at start
# ("conflicting Schema URL").
KSERVE_GO_MODULES=("github.com/kserve/kserve $RIG_KSERVE_VERSION")
KSERVE_GO_COMMANDS=("kserve-manager=github.com/kserve/kserve/cmd/manager")
# The module's extracted zip: its config/ holds the CRDs, ConfigMap, runtimes and webhooks applied here.
KSERVE_MODULE_DIR=$(go_group_module_dir kserve github.com/kserve/kserve)
# KServe's replace directives, one-line and blocks alike.
kserve_go_mod_extra() {
  awk '/^replace \(/ {b=1} b || /^replace / {print} b && /^\)/ {b=0}' \
    "$KSERVE_MODULE_DIR/go.mod"
}
KSERVE_MANAGER_BIN=$(go_group_bin_dir kserve)/kserve-manager

# --- S3 over MLflow's artifact store --------------------------------------------------------
# KServe's storage initializer reads s3://, gs://, http(s)://… but not mlflow-artifacts:/. As on a
# cluster where MLflow and KServe share a bucket, the plain MLflow server's artifact directory is
# served as bucket `mlflow-artifacts` by an S3 server (gofakes3's directfs backend: the directory
# itself is the bucket) on the node's bridge address, where pods reach it. So the action's
# artifacts-destination is s3://mlflow-artifacts and the storageUri it derives is read for real.
: "${RIG_KSERVE_S3_PORT:=19000}"
KSERVE_S3_BUCKET=mlflow-artifacts
KSERVE_GOFAKES3_VERSION=v1.2.0
KSERVE_GOFAKES3_BIN=$RIG_CACHE/bin/gofakes3-$KSERVE_GOFAKES3_VERSION/gofakes3
kserve_s3_build() {
  [ -x "$KSERVE_GOFAKES3_BIN" ] && return 0
  log "building gofakes3 $KSERVE_GOFAKES3_VERSION from the Go module proxy"
  ( renice -n 10 -p "$BASHPID" >/dev/null
    GOBIN=$(dirname "$KSERVE_GOFAKES3_BIN") CGO_ENABLED=0 GOFLAGS= kube_go install -trimpath -ldflags '-s -w' \
      "github.com/johannesboyne/gofakes3/cmd/gofakes3@$KSERVE_GOFAKES3_VERSION" ) >>"$(logfile serving-build)" 2>&1 ||
    die "gofakes3 build failed (log: $(logfile serving-build))"
}
kserve_s3_start() { # kserve_s3_start address
  # The plain MLflow server's --artifacts-destination (parts/mlflow.sh).
  local dir=$MLFLOW_DATA/plain/artifacts
  mkdir -p "$dir"
  start_bg kserve-s3 "$KSERVE_GOFAKES3_BIN" -backend directfs -directfs.path "$dir" \
    -directfs.bucket "$KSERVE_S3_BUCKET" -host "$1:$RIG_KSERVE_S3_PORT" -quiet
  wait_http "http://$1:$RIG_KSERVE_S3_PORT/$KSERVE_S3_BUCKET?max-keys=1" 30 ||
    die "the S3 server did not answer on $1:$RIG_KSERVE_S3_PORT: $(tail -5 "$(logfile kserve-s3)")"
}

# --- images ---------------------------------------------------------------------------------
# kserve_image NAME REF : build test/rig context NAME (a Dockerfile written here) unless the
# registry has REF with the same recipe label.
kserve_image() {
  local ctx=$1 ref=$2 recipe digest
  recipe=$(cd "$ctx" && find . -type f | sort | xargs cat | sha256sum | cut -c1-16)
  if digest=$(mlserver_registry_digest "$ref") && [ -n "$digest" ] &&
    [ "$(mlserver_registry_label "$ref" io.mlflow-k8s-deploy.rig.recipe)" = "$recipe" ]; then
    return 0
  fi
  log "kserve: building and pushing $ref (log: $(logfile kserve-images))"
  rig_docker buildx build --progress plain --network host --push --build-arg "RECIPE=$recipe" \
    -t "$ref" "$ctx" >>"$(logfile kserve-images)" 2>&1 ||
    { tail -30 "$(logfile kserve-images)" >&2; die "building $ref failed"; }
}
kserve_runtime_ref() { echo "127.0.0.1:$RIG_REGISTRY_PORT/kserve-mlserver:$(mlserver_pin mlserver)-sklearn$RIG_SKLEARN_VERSION"; }
KSERVE_STORAGE_IMAGE=127.0.0.1:$RIG_REGISTRY_PORT/kserve-storage-initializer:$RIG_KSERVE_STORAGE_VERSION
kserve_runtime_image() {
  local base ctx
  base=$(env_get BASE_IMAGE); [ -n "$base" ] || die "kserve needs the mlserver part (no BASE_IMAGE fact)"
  # The MLflow runtime's server: the rig's MLServer base plus the model library, as
  # seldonio/mlserver ships its runtimes' libraries.
  ctx=$(mktemp -d)
  # (The base's digest is in the Dockerfile, so a new base means a new recipe.)
  printf 'FROM %s\nARG RECIPE\nRUN pip install scikit-learn==%s\nLABEL io.mlflow-k8s-deploy.rig.base-digest="%s" io.mlflow-k8s-deploy.rig.recipe="${RECIPE}"\n' \
    "$base" "$RIG_SKLEARN_VERSION" "$(env_get BASE_IMAGE_DIGEST)" >"$ctx/Dockerfile"
  kserve_image "$ctx" "$(kserve_runtime_ref)"; rm -rf "$ctx"
}
kserve_storage_image() {
  local ctx kmod
  kmod=$KSERVE_MODULE_DIR
  # The storage initializer: PyPI kserve-storage and KServe's own entrypoint script, FROM the
  # rig's Debian (upstream builds FROM python:3.11-slim-bookworm, which Docker Hub would serve).
  ctx=$(mktemp -d)
  mkdir -p "$ctx/scripts" "$ctx/extra-ca"
  cp "$kmod/python/storage-initializer/scripts/initializer-entrypoint" "$ctx/scripts/"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM local/debian:bookworm
ARG RECIPE
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      python3 python3-venv ca-certificates && update-ca-certificates >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
ENV VIRTUAL_ENV=/prod_venv PATH=/prod_venv/bin:/usr/sbin:/usr/bin:/sbin:/bin PIP_NO_CACHE_DIR=1 \\
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /prod_venv && pip install kserve-storage==$RIG_KSERVE_STORAGE_VERSION \\
 && python -c "import kserve_storage"
COPY scripts/initializer-entrypoint /storage-initializer/scripts/initializer-entrypoint
RUN chmod +x /storage-initializer/scripts/initializer-entrypoint \\
 && echo 'kserve:x:1000:1000::/home/kserve:/bin/sh' >>/etc/passwd && echo 'kserve:x:1000:' >>/etc/group \\
 && mkdir -p /home/kserve /work /mnt/models && chown -R 1000:1000 /home/kserve /work /mnt
LABEL io.mlflow-k8s-deploy.rig.recipe="\${RECIPE}"
WORKDIR /work
USER 1000
ENTRYPOINT ["/storage-initializer/scripts/initializer-entrypoint"]
DOCKERFILE
  if ! rig_docker image inspect local/debian:bookworm >/dev/null 2>&1; then
    rig_docker import --change 'CMD ["/bin/bash"]' "$(mlserver_rootfs_tar)" local/debian:bookworm >/dev/null
  fi
  kserve_image "$ctx" "$KSERVE_STORAGE_IMAGE"; rm -rf "$ctx"
}

# --- cluster content ------------------------------------------------------------------------
# The module's CRDs replace the shared ones (v0.20 schemas) the kube part applies: the schema the
# apiserver validates against is the one this controller knows. Applied once per etcd life, with
# stamps beside the kube part's (which etcd's restart clears).
kserve_crds() {
  local kmod f name sum i
  kmod=$KSERVE_MODULE_DIR
  # What config/crd/full/kustomization.yaml installs.
  for f in inferenceservices trainedmodels clusterservingruntimes servingruntimes inferencegraphs \
    clusterstoragecontainer/clusterstoragecontainers; do
    f=$kmod/config/crd/full/$(dirname "$f")/serving.kserve.io_$(basename "$f").yaml
    name=$(awk '/^metadata:/{m=1;next} m&&/^  name:/{print $2; exit}' "$f")
    sum=$(sha256sum "$f" | cut -c1-64)
    [ "$(cat "$KUBE_DIR/applied-kserve-$name" 2>/dev/null)" = "$sum" ] && continue
    kube_apply "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name" "$f" || die "applying CRD $name failed"
    for i in $(seq 1 150); do
      [ "$(kube_api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name" |
        jq -r '.status.conditions[]? | select(.type=="Established") | .status')" = True ] && break
      sleep 0.2
    done
    echo "$sum" >"$KUBE_DIR/applied-kserve-$name"
  done
}

# kserve_py SCRIPT ARGS... : YAML → JSON edits of the module's config (python3-yaml).
kserve_py() { python3 -c "$@"; }

# `inferenceservice-config` as a user of a Gateway API ingress sets it: KServe's own ConfigMap with
# the default mode Standard, the rig's storage initializer, lower default requests (below), the
# rig's ingress domain, and HTTPRoutes on the gateway part's Gateway (Standard mode; Contour
# programs Envoy from them). Serverless predictors are Knative Services behind Knative's own routes:
# no Istio VirtualService.
kserve_configmap() {
  local kmod out=$KSERVE_DIR/inferenceservice-config.json
  kmod=$KSERVE_MODULE_DIR
  kserve_py '
import json, sys, yaml
cm = yaml.safe_load(open(sys.argv[1]))
d = cm["data"]
d.pop("_example", None)
d["deploy"] = json.dumps({"defaultDeploymentMode": "Standard"})
ing = json.loads(d["ingress"])
ing.update({"ingressDomain": "rig.test", "urlScheme": "http", "disableIstioVirtualHost": True})
if sys.argv[4]:
    ing.update({"enableGatewayApi": True, "kserveIngressGateway": sys.argv[4]})
d["ingress"] = json.dumps(ing)
si = json.loads(d["storageInitializer"])
si["image"] = sys.argv[2]
d["storageInitializer"] = json.dumps(si)
# Requests of a predictor container that sets none (1 CPU upstream): two such pods (a rolling
# update, a canary) filled the two-core node and left the next suite Unschedulable. Limits stay.
isvc = json.loads(d["inferenceService"])
isvc["resource"].update({"cpuRequest": "100m", "memoryRequest": "512Mi"})
d["inferenceService"] = json.dumps(isvc)
json.dump(cm, open(sys.argv[3], "w"))
' "$kmod/config/configmap/inferenceservice.yaml" "$KSERVE_STORAGE_IMAGE" "$out" "$(env_get GATEWAY_EXTERNAL)" ||
    die "cannot write $out"
  kube_apply /api/v1/namespaces/kserve/configmaps/inferenceservice-config "$out" || die "applying inferenceservice-config failed"
}

# The module's ClusterServingRuntimes (kustomize's image names resolved as upstream does), the
# MLflow one (kserve-mlserver) on the rig's image. Its default requests (1 CPU, 2 Gi) are lowered so
# a rolling update (two pods) fits the two-core node; the limits stay upstream's.
kserve_runtimes() {
  local kmod f name out
  kmod=$KSERVE_MODULE_DIR
  for f in "$kmod"/config/runtimes/kserve-*.yaml; do
    name=$(basename "$f" .yaml); out=$KSERVE_DIR/runtime-$name.json
    kserve_py '
import json, sys, yaml
rt = yaml.safe_load(open(sys.argv[1]))
images = {i["name"]: i for i in (yaml.safe_load(open(sys.argv[2])).get("images") or [])}
for c in rt["spec"]["containers"]:
    if rt["metadata"]["name"] == "kserve-mlserver":
        c["image"] = sys.argv[3]
        c["resources"]["requests"] = {"cpu": "100m", "memory": "512Mi"}
    else:
        name = c["image"].split(":")[0]
        if name in images:
            c["image"] = "%s:%s" % (images[name]["newName"], images[name].get("newTag", "latest"))
json.dump(rt, open(sys.argv[4], "w"))
' "$f" "$kmod/config/runtimes/kustomization.yaml" "$(kserve_runtime_ref)" "$out" || die "cannot convert $f"
    kube_apply "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes/$name" "$out" || die "applying ClusterServingRuntime $name failed"
  done
}

# The webhooks of config/webhook/manifests.yaml, pointed at the manager on the host by URL
# (loopback is allowed for URL webhooks) with the rig's CA.
kserve_webhooks() {
  local kmod out=$KSERVE_DIR/webhooks.json kind name
  kmod=$KSERVE_MODULE_DIR
  kserve_py '
import base64, json, sys, yaml
ca = base64.b64encode(open(sys.argv[2], "rb").read()).decode()
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    d["metadata"].pop("creationTimestamp", None)
    for w in d["webhooks"]:
        path = w["clientConfig"]["service"]["path"]
        w["clientConfig"] = {"url": "https://127.0.0.1:%s%s" % (sys.argv[3], path), "caBundle": ca}
json.dump(docs, open(sys.argv[4], "w"))
' "$kmod/config/webhook/manifests.yaml" "$KSERVE_DIR/certs/ca.crt" "$RIG_KSERVE_WEBHOOK_PORT" "$out" ||
    die "cannot convert the webhook manifests"
  local n i
  n=$(jq length "$out")
  for i in $(seq 0 $((n - 1))); do
    kind=$(jq -r ".[$i].kind" "$out"); name=$(jq -r ".[$i].metadata.name" "$out")
    jq ".[$i] + {apiVersion: \"admissionregistration.k8s.io/v1\"}" "$out" >"$KSERVE_DIR/webhook-$i.json"
    kube_apply "/apis/admissionregistration.k8s.io/v1/$(tr '[:upper:]' '[:lower:]' <<<"$kind")s/$name" \
      "$KSERVE_DIR/webhook-$i.json" || die "registering $kind $name failed"
  done
}
kserve_unregister_webhooks() {
  local f kind name
  for f in "$KSERVE_DIR"/webhook-*.json; do
    [ -f "$f" ] || continue
    kind=$(jq -r .kind "$f" | tr '[:upper:]' '[:lower:]'); name=$(jq -r .metadata.name "$f")
    kube_api DELETE "/apis/admissionregistration.k8s.io/v1/${kind}s/$name" >/dev/null 2>&1 || true
  done
}

kserve_certs() {
  local d=$KSERVE_DIR/certs serving=$KSERVE_DIR/tmp/k8s-webhook-server/serving-certs
  mkdir -p "$d" "$serving"
  if [ ! -f "$d/tls.crt" ]; then
    ( cd "$d"
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rig-kserve-webhook-ca" \
        -keyout ca.key -out ca.crt 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=kserve-webhook-server" -keyout tls.key -out tls.csr 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >tls.ext
      openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile tls.ext -out tls.crt 2>/dev/null
      chmod 600 ca.key tls.key )
  fi
  # Where controller-runtime's webhook server looks: $TMPDIR/k8s-webhook-server/serving-certs.
  # Replaced whole (rename), never rewritten in place: a running manager re-reads them.
  local f
  for f in tls.crt tls.key; do
    cmp -s "$d/$f" "$serving/$f" && continue
    cp "$d/$f" "$serving/.$f.tmp" && mv "$serving/.$f.tmp" "$serving/$f"
  done
}

# The manager's own identity (kube_controller_cert).
kserve_kubeconfig() {
  kube_controller_identity "$KSERVE_DIR/certs" manager kserve-controller-manager kserve "$KSERVE_DIR/kubeconfig"
}

# What the deployer needs beyond the kube part's rig-deployer role: on Standard mode the predictor's
# Deployment, ReplicaSets, pods and Service (rollout and smoke test), and the mode default. The pods
# also serve Knative rollouts (the new revision's pull errors and crash loops); the rig-deployer role
# alone, without them, is what plan.test.ts binds to show the warning a deploy then gets.
# Storage credentials: a Secret on the `default` ServiceAccount, annotated as KServe reads S3 ones.
kserve_namespace() {
  printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"kserve"}}' >"$KSERVE_DIR/namespace.json"
  kube_apply /api/v1/namespaces/kserve "$KSERVE_DIR/namespace.json"
}
kserve_namespaces_content() {
  local f=$KSERVE_DIR/rbac.json ns s3=$1
  cat >"$f" <<JSON
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"rig-deployer-kserve-standard"},
 "rules":[{"apiGroups":["apps"],"resources":["deployments","replicasets"],"verbs":["get","list","watch"]},
          {"apiGroups":[""],"resources":["pods","services"],"verbs":["get","list","watch"]}]}
JSON
  kube_apply /apis/rbac.authorization.k8s.io/v1/clusterroles/rig-deployer-kserve-standard "$f"
  cat >"$f" <<JSON
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"rig-deployer-kserve-config","namespace":"kserve"},
 "rules":[{"apiGroups":[""],"resources":["configmaps"],"resourceNames":["inferenceservice-config"],"verbs":["get"]}]}
JSON
  kube_apply /apis/rbac.authorization.k8s.io/v1/namespaces/kserve/roles/rig-deployer-kserve-config "$f"
  cat >"$f" <<JSON
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rig-deployer-kserve-config","namespace":"kserve"},
 "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"rig-deployer-kserve-config"},
 "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"deployer"}]}
JSON
  kube_apply /apis/rbac.authorization.k8s.io/v1/namespaces/kserve/rolebindings/rig-deployer-kserve-config "$f"
  for ns in default deploy; do
    cat >"$f" <<JSON
{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"rig-deployer-kserve-standard","namespace":"$ns"},
 "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"rig-deployer-kserve-standard"},
 "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"deployer"}]}
JSON
    kube_apply "/apis/rbac.authorization.k8s.io/v1/namespaces/$ns/rolebindings/rig-deployer-kserve-standard" "$f"
    [ -n "$s3" ] || continue
    # gofakes3 checks no signatures; the keys are there because boto3 wants some.
    cat >"$f" <<JSON
{"apiVersion":"v1","kind":"Secret","metadata":{"name":"rig-s3","namespace":"$ns","annotations":{
   "serving.kserve.io/s3-endpoint":"$s3","serving.kserve.io/s3-usehttps":"0",
   "serving.kserve.io/s3-verifyssl":"0","serving.kserve.io/s3-region":"us-east-1"}},
 "stringData":{"AWS_ACCESS_KEY_ID":"rig","AWS_SECRET_ACCESS_KEY":"rig-not-secret"}}
JSON
    kube_apply "/api/v1/namespaces/$ns/secrets/rig-s3" "$f"
    printf '{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default","namespace":"%s"},"secrets":[{"name":"rig-s3"}]}' \
      "$ns" >"$f"
    kube_apply "/api/v1/namespaces/$ns/serviceaccounts/default" "$f"
  done
}

# --- part interface -----------------------------------------------------------------------
kserve_up() {
  [ -n "$(env_get KUBECONFIG_ADMIN)" ] || die "kserve needs the kube part (no KUBECONFIG_ADMIN fact)"
  apt_install python3-yaml jq openssl
  mkdir -p "$KSERVE_DIR"
  go_group_build kserve
  kserve_s3_build
  kserve_runtime_image
  kserve_storage_image
  kserve_certs
  kserve_kubeconfig
  local node_ip s3=""
  node_ip=$(env_get NODE_IP)
  kserve_crds
  kserve_namespace
  kserve_configmap
  if [ -n "$node_ip" ]; then
    kserve_s3_start "$node_ip"; s3=$node_ip:$RIG_KSERVE_S3_PORT
  else
    log "kserve: no node part (no NODE_IP fact): no S3 server for storage initializers"
  fi
  kserve_namespaces_content "$s3"
  stop_if_stale kserve-manager "$KSERVE_MANAGER_BIN"
  if ! is_running kserve-manager; then
    KUBECONFIG=$KSERVE_DIR/kubeconfig POD_NAMESPACE=kserve TMPDIR=$KSERVE_DIR/tmp \
      start_bg kserve-manager "$KSERVE_MANAGER_BIN" --metrics-addr 0 \
      --health-probe-addr "127.0.0.1:$RIG_KSERVE_PROBE_PORT" --webhook-port "$RIG_KSERVE_WEBHOOK_PORT"
  fi
  local i
  for i in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$RIG_KSERVE_PROBE_PORT/readyz" 2>/dev/null && break
    is_running kserve-manager || die "kserve-manager exited: $(tail -5 "$(logfile kserve-manager)")"
    sleep 0.2
  done
  [ "$i" -lt 300 ] || die "kserve-manager not ready after 60 s: $(tail -5 "$(logfile kserve-manager)")"
  kserve_webhooks
  kserve_runtimes
  env_set KSERVE_VERSION "$RIG_KSERVE_VERSION"
  env_set KSERVE_NAMESPACE kserve
  env_set KSERVE_RUNTIME_IMAGE "$(kserve_runtime_ref)"
  env_set KSERVE_STORAGE_INITIALIZER_IMAGE "$KSERVE_STORAGE_IMAGE"
  if [ -n "$s3" ]; then
    env_set KSERVE_S3_ENDPOINT "http://$s3"
    env_set KSERVE_ARTIFACTS_DESTINATION "s3://$KSERVE_S3_BUCKET"
  fi
}
kserve_down() {
  if is_running kserve-manager && kube_status 2>/dev/null; then kserve_unregister_webhooks; fi
  stop_bg kserve-manager
  stop_bg kserve-s3
}
kserve_status() {
  is_running kserve-manager && curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_KSERVE_PROBE_PORT/readyz"
}
