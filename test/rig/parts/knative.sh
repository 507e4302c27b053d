# Part "knative": real Knative Serving (knative.dev/serving v0.48.1: controller, webhook, activator,
# autoscaler, and the queue-proxy image its revisions run) with knative.dev/net-gateway-api v0.48.0
# as the ingress, in front of the gateway part's Contour and Envoy, built from the Go module proxy.
# The controllers run on the host as processes, with their
# own client certificate in system:masters; the Services that users' clusters route to their pods
# (webhooks, activator, autoscaler) have manual Endpoints on the node's bridge address.
# Status URLs are http://<name>.<namespace>.rig.test; Envoy routes them by Host.
# Needs the kube, node, registry, docker and gateway parts.

: "${RIG_KNATIVE_DOMAIN:=rig.test}"
: "${RIG_KNATIVE_WEBHOOK_PORT:=8443}"
: "${RIG_KNATIVE_GATEWAY_WEBHOOK_PORT:=8444}"
: "${RIG_KNATIVE_ACTIVATOR_PORT:=8012}"       # upstream's; the h2c port (8013) is fixed upstream too
: "${RIG_KNATIVE_AUTOSCALER_PORT:=8080}"      # fixed upstream (statsServerAddr)
# Health probes (see knative_go_patch) and profiling servers, one port per process.
: "${RIG_KNATIVE_PROBES_PORT_BASE:=18100}"
: "${RIG_KNATIVE_PROFILING_PORT_BASE:=18110}"
KNATIVE_VERSION=v0.48.1
KNATIVE_GO_MODULES=("knative.dev/serving $KNATIVE_VERSION" "knative.dev/net-gateway-api v0.48.0")
KNATIVE_GO_COMMANDS=(
  "knative-controller=knative.dev/serving/cmd/controller"
  "knative-webhook=knative.dev/serving/cmd/webhook"
  "knative-activator=knative.dev/serving/cmd/activator"
  "knative-autoscaler=knative.dev/serving/cmd/autoscaler"
  "knative-queue=knative.dev/serving/cmd/queue"
  "net-gateway-api-controller=knative.dev/net-gateway-api/cmd/controller"
  "net-gateway-api-webhook=knative.dev/net-gateway-api/cmd/webhook"
)
KNATIVE_GO_PATCH=1
KNATIVE_BIN_DIR=$(go_group_bin_dir knative)

# Pods each have their own network; the rig runs the Knative controllers as processes on one host.
# They all serve health probes on knative.dev/pkg's fixed port 8080, which the autoscaler's stats
# server also binds (upstream: a constant). The one change made to upstream code: the build uses a
# copy of knative.dev/pkg (a `replace`) in which that constant is a variable read from
# RIG_PROBES_PORT (8080 when unset). (Go refuses -overlay for files in the module cache.)
knative_go_patch() { # in the wrapper module's directory
  local pkg
  pkg=$(kube_go list -m -f '{{.Dir}}' knative.dev/pkg) || return 1
  case "$pkg" in "$PWD"/*) return 0 ;; esac   # already replaced
  rm -rf knative-pkg; cp -r "$pkg" knative-pkg; chmod -R u+w knative-pkg
  sed -i 's/^const HealthCheckDefaultPort = 8080$/var HealthCheckDefaultPort = rigProbesPort()/' \
    knative-pkg/injection/health_check.go
  grep -q 'rigProbesPort()' knative-pkg/injection/health_check.go ||
    { echo "knative_go_patch: injection/health_check.go changed upstream" >&2; return 1; }
  cat >knative-pkg/injection/rig_probes_port.go <<'GO'
package injection

import (
	"os"
	"strconv"
)

func rigProbesPort() int {
	if p, err := strconv.Atoi(os.Getenv("RIG_PROBES_PORT")); err == nil {
		return p
	}
	return 8080
}
GO
  printf '\nreplace knative.dev/pkg => ./knative-pkg\n' >>go.mod
}
KNATIVE_NS=knative-serving
KNATIVE_DIR=$RIG_STATE/knative
# name=binary: the processes, in start order (webhooks first: the controllers' writes go through them).
KNATIVE_PROCESSES=(knative-webhook net-gateway-api-webhook knative-controller net-gateway-api-controller
  knative-autoscaler knative-activator)

# The queue-proxy sidecar every revision pod runs: the built binary in an empty image, as ko builds
# it (non-root: Knative runs the sidecar with runAsNonRoot).
KNATIVE_QUEUE_DOCKERFILE='FROM scratch
COPY queue /ko-app/queue
USER 65532:65532
ENTRYPOINT ["/ko-app/queue"]'
knative_queue_ref() {
  echo "127.0.0.1:$RIG_REGISTRY_PORT/knative-queue:$KNATIVE_VERSION-$(go_group_id knative)-$(sha256sum <<<"$KNATIVE_QUEUE_DOCKERFILE" | cut -c1-8)"
}
knative_queue_image() {
  local ref digest ctx
  ref=$(knative_queue_ref)
  if digest=$(mlserver_registry_digest "$ref") && [ -n "$digest" ]; then
    echo "${ref%:*}@$digest"; return 0
  fi
  ctx=$(mktemp -d)
  cp "$KNATIVE_BIN_DIR/knative-queue" "$ctx/queue"
  printf '%s\n' "$KNATIVE_QUEUE_DOCKERFILE" >"$ctx/Dockerfile"
  log "knative: building and pushing $ref"
  rig_docker buildx build --progress plain --push -t "$ref" "$ctx" >>"$(logfile knative-images)" 2>&1 ||
    { rm -rf "$ctx"; tail -20 "$(logfile knative-images)" >&2; die "building $ref failed"; }
  rm -rf "$ctx"
  digest=$(mlserver_registry_digest "$ref") && [ -n "$digest" ] || die "$ref is not in the registry after its push"
  echo "${ref%:*}@$digest"
}

knative_ports_json() {
  printf '{"webhook": %s, "gateway_webhook": %s, "activator_http": %s, "activator_h2c": 8013, "autoscaler": %s}' \
    "$RIG_KNATIVE_WEBHOOK_PORT" "$RIG_KNATIVE_GATEWAY_WEBHOOK_PORT" "$RIG_KNATIVE_ACTIVATOR_PORT" "$RIG_KNATIVE_AUTOSCALER_PORT"
}

knative_module_dir() { (cd "$(go_group_build_dir knative)" && kube_go list -m -f '{{.Dir}}' "$1"); }

# Writes $KNATIVE_DIR/manifests/{crds,objects}/*.json from the modules' config/ (knative/objects.py).
knative_manifests() {
  local queue=$1 out=$KNATIVE_DIR/manifests
  rm -rf "$out"
  SERVING_DIR=$(knative_module_dir knative.dev/serving) NETWORKING_DIR=$(knative_module_dir knative.dev/networking) \
    CACHING_DIR=$(knative_module_dir knative.dev/caching) GATEWAY_API_DIR=$(knative_module_dir knative.dev/net-gateway-api) \
    NODE_IP=$(env_get NODE_IP) DOMAIN=$RIG_KNATIVE_DOMAIN QUEUE_IMAGE=$queue \
    SKIP_TAG_REGISTRIES="127.0.0.1:$RIG_REGISTRY_PORT,127.0.0.1:$RIG_REGISTRY_AUTH_PORT,localhost:$RIG_REGISTRY_PORT,localhost:$RIG_REGISTRY_AUTH_PORT" \
    GATEWAY_CLASS=$(env_get GATEWAY_CLASS) \
    GATEWAY_EXTERNAL=$(env_get GATEWAY_EXTERNAL) GATEWAY_EXTERNAL_SERVICE=$(env_get GATEWAY_EXTERNAL_SERVICE) \
    GATEWAY_LOCAL=$(env_get GATEWAY_LOCAL) GATEWAY_LOCAL_SERVICE=$(env_get GATEWAY_LOCAL_SERVICE) \
    PORTS=$(knative_ports_json) python3 "$RIG_DIR/knative/objects.py" "$out" ||
    die "cannot write the Knative manifests"
}

# knative_apply_dir DIR : server-side apply each file (first line: `# <API path>`), CRDs waited for.
knative_apply_dir() {
  local f path name i
  for f in "$1"/*.json; do
    path=$(head -1 "$f" | cut -c3-)
    kube_apply "$path" "$f" || die "applying $(basename "$f") failed"
    case "$path" in
      */customresourcedefinitions/*)
        name=${path##*/}
        for i in $(seq 1 150); do
          [ "$(kube_api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name" |
            jq -r '.status.conditions[]? | select(.type=="Established") | .status')" = True ] && break
          sleep 0.2
        done ;;
    esac
  done
}

# The controllers' identity (kube_controller_cert; upstream's ClusterRoles grant about as much).
knative_kubeconfig() {
  kube_controller_identity "$KNATIVE_DIR/certs" controller knative-serving-controller knative "$KNATIVE_DIR/kubeconfig"
}

# The activator dials the autoscaler by its cluster DNS name, which the host cannot resolve (the rig
# has no cluster DNS): it runs in its own mount namespace whose /etc/hosts names the autoscaler.
knative_activator_hosts() {
  { cat /etc/hosts
    printf '%s autoscaler.%s.svc.cluster.local autoscaler.%s.svc\n' "$(env_get NODE_IP)" "$KNATIVE_NS" "$KNATIVE_NS"
  } >"$KNATIVE_DIR/activator-hosts"
}

knative_start() { # knative_start process index
  local name=$1 i=$2 bin env=()
  bin=$KNATIVE_BIN_DIR/$name
  stop_if_stale "$name" "$bin"
  is_running "$name" && return 0
  env=(KUBECONFIG="$KNATIVE_DIR/kubeconfig" SYSTEM_NAMESPACE=$KNATIVE_NS POD_NAME="$name"
    POD_IP="$(env_get NODE_IP)" CONFIG_LOGGING_NAME=config-logging CONFIG_OBSERVABILITY_NAME=config-observability
    CLUSTER_DOMAIN=cluster.local RIG_PROBES_PORT=$((RIG_KNATIVE_PROBES_PORT_BASE + i))
    PROFILING_PORT=$((RIG_KNATIVE_PROFILING_PORT_BASE + i)))
  case "$name" in
    knative-webhook) env+=(WEBHOOK_NAME=webhook WEBHOOK_PORT="$RIG_KNATIVE_WEBHOOK_PORT") ;;
    net-gateway-api-webhook) env+=(WEBHOOK_NAME=net-gateway-api-webhook WEBHOOK_PORT="$RIG_KNATIVE_GATEWAY_WEBHOOK_PORT"
      METRICS_DOMAIN=knative.dev/net-gateway-api) ;;
    net-gateway-api-controller) env+=(METRICS_DOMAIN=knative.dev/net-gateway-api) ;;
  esac
  if [ "$name" = knative-activator ]; then
    knative_activator_hosts
    start_bg "$name" env "${env[@]}" unshare --mount --propagation private \
      sh -c 'mount --bind "$0" /etc/hosts && exec "$1"' "$KNATIVE_DIR/activator-hosts" "$bin"
  else
    start_bg "$name" env "${env[@]}" "$bin"
  fi
}

knative_wait_ready() {
  local i name
  # The webhooks answer TLS on their ports once their certificates are in place.
  for i in $(seq 1 300); do
    curl -ksS -o /dev/null --max-time 2 "https://127.0.0.1:$RIG_KNATIVE_WEBHOOK_PORT/" 2>/dev/null &&
      curl -ksS -o /dev/null --max-time 2 "https://127.0.0.1:$RIG_KNATIVE_GATEWAY_WEBHOOK_PORT/" 2>/dev/null && break
    for name in "${KNATIVE_PROCESSES[@]}"; do
      is_running "$name" || die "$name exited: $(tail -5 "$(logfile "$name")")"
    done
    sleep 0.2
  done
  [ "$i" -lt 300 ] || die "the Knative webhooks did not answer in 60 s (logs: $(logfile knative-webhook))"
  # The webhook fills in its configurations' caBundle: until then the apiserver cannot call it.
  for i in $(seq 1 300); do
    [ -n "$(kube_api GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/webhook.serving.knative.dev |
      jq -r '.webhooks[0].clientConfig.caBundle // empty')" ] && break
    sleep 0.2
  done
  [ "$i" -lt 300 ] || die "the Knative webhook did not register its CA in 60 s"
}

knative_up() {
  [ -n "$(env_get KUBECONFIG_ADMIN)" ] || die "knative needs the kube part (no KUBECONFIG_ADMIN fact)"
  [ -n "$(env_get NODE_IP)" ] || die "knative needs the node part (no NODE_IP fact)"
  [ -n "$(env_get GATEWAY_EXTERNAL)" ] || die "knative needs the gateway part (no GATEWAY_EXTERNAL fact)"
  apt_install python3-yaml jq openssl
  mkdir -p "$KNATIVE_DIR"
  go_group_build knative
  local queue i
  queue=$(knative_queue_image)
  knative_manifests "$queue"
  # Left registered by a killed webhook, its configurations would refuse the ConfigMaps below.
  is_running knative-webhook || knative_unregister_webhooks
  knative_apply_dir "$KNATIVE_DIR/manifests/crds"
  knative_apply_dir "$KNATIVE_DIR/manifests/objects"
  knative_kubeconfig
  for i in "${!KNATIVE_PROCESSES[@]}"; do knative_start "${KNATIVE_PROCESSES[$i]}" "$i"; done
  knative_wait_ready
  env_set KNATIVE_VERSION "$KNATIVE_VERSION"
  env_set KNATIVE_DOMAIN "$RIG_KNATIVE_DOMAIN"
  env_set KNATIVE_QUEUE_IMAGE "$queue"
}

knative_unregister_webhooks() {
  local f path
  for f in "$KNATIVE_DIR"/manifests/objects/*webhookconfiguration*.json; do
    [ -f "$f" ] || continue
    path=$(head -1 "$f" | cut -c3-)
    kube_api DELETE "$path" >/dev/null 2>&1 || true
  done
}

knative_down() {
  local i
  if is_running knative-webhook && kube_status 2>/dev/null; then knative_unregister_webhooks; fi
  for ((i = ${#KNATIVE_PROCESSES[@]} - 1; i >= 0; i--)); do stop_bg "${KNATIVE_PROCESSES[$i]}"; done
}

knative_status() {
  local name
  for name in "${KNATIVE_PROCESSES[@]}"; do is_running "$name" || return 1; done
  curl -ksS -o /dev/null --max-time 3 "https://127.0.0.1:$RIG_KNATIVE_WEBHOOK_PORT/"
}
