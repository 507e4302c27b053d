# Part "kube": etcd 3.5 + a real kube-apiserver (built from the Go module proxy) on 127.0.0.1,
# TLS, token auth and RBAC, plus the Knative/KServe CRDs. Sourced by rig.sh (needs lib.sh).

: "${RIG_KUBE_VERSION:=v1.36.3}"
KUBE_DIR=$RIG_STATE/kube
# Every Kubernetes binary the rig runs, built in one go from one module cache and one build cache.
KUBE_BIN_DIR=$RIG_CACHE/bin/kubernetes-$RIG_KUBE_VERSION
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet)
KUBE_APISERVER_BIN=$KUBE_BIN_DIR/kube-apiserver
# A setting only until the node part runs kube-proxy, which routes it onto the node's bridge.
KUBE_SERVICE_CIDR=10.0.0.0/24

# --- build --------------------------------------------------------------------------------
# A wrapper module requires k8s.io/kubernetes and replaces each staging module it requires at
# v0.0.0 (k/k's own replace block points them at ./staging) with the published v0.<minor>.<patch>.
kube_go() {
  GOPATH=$RIG_CACHE/go GOMODCACHE=$RIG_CACHE/go/mod GOCACHE=$RIG_CACHE/go/build \
    GOTOOLCHAIN=local GOFLAGS=-mod=mod /usr/local/go/bin/go "$@"
}
kube_built() { local c; for c in "${KUBE_COMMANDS[@]}"; do [ -x "$KUBE_BIN_DIR/$c" ] || return 1; done; }
kube_build() {
  kube_built && return 0
  local v=$RIG_KUBE_VERSION staging=v0.${RIG_KUBE_VERSION#v1.} wd=$RIG_CACHE/build/kubernetes-$RIG_KUBE_VERSION
  local t0=$SECONDS kkmod major minor c pkgs=()
  major=$(cut -d. -f1 <<<"${v#v}"); minor=$(cut -d. -f2 <<<"$v")
  log "building ${KUBE_COMMANDS[*]} $v from the Go module proxy (about 15 min on 2 cold cores; cached after)"
  mkdir -p "$wd" "$KUBE_BIN_DIR"
  kkmod=$(cd "$wd" && kube_go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$kkmod" ] || die "cannot download k8s.io/kubernetes@$v"
  {
    printf 'module rig.local/kubernetes\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$v"
    awk '/^replace \(/{r=1;next} r&&/=> \.\/staging/{print $1} /^\)/{r=0}' "$kkmod" | while read -r m; do
      if grep -qE "^\s+$m v0\.0\.0$" "$kkmod"; then printf '\t%s => %s %s\n' "$m" "$m" "$staging"; fi
    done
    printf ')\n'
  } >"$wd/go.mod"
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${KUBE_COMMANDS[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    printf ')\n'; } >"$wd/tools.go"
  local ld="-s -w -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=$major"
  ld+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  # The Go build cache stays under the rig cache: a version bump or another binary rebuilds little.
  ( cd "$wd" && kube_go mod tidy && mkdir -p out &&
    CGO_ENABLED=0 kube_go build -trimpath -ldflags "$ld" -o out/ "${pkgs[@]}" ) || die "Kubernetes build failed"
  for c in "${KUBE_COMMANDS[@]}"; do mv "$wd/out/$c" "$KUBE_BIN_DIR/$c"; done
  log "built ${KUBE_COMMANDS[*]} in $((SECONDS - t0)) s"
}

# --- credentials (generated once) ---------------------------------------------------------
kube_credentials() {
  local d=$KUBE_DIR
  mkdir -p "$d"
  if [ ! -f "$d/tokens.csv" ] || [ ! -f "$d/apiserver.crt" ] || [ ! -f "$d/sa.key" ]; then
    log "generating kube CA, serving cert, service-account keys and tokens in $d"
    ( cd "$d"
      openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=rig-kube-ca" \
        -keyout ca.key -out ca.crt 2>/dev/null
      openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout apiserver.key -out apiserver.csr 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >apiserver.ext
      openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile apiserver.ext -out apiserver.crt 2>/dev/null
      openssl genrsa -out sa.key 2048 2>/dev/null
      openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
      printf '%s,rig-admin,rig-admin,"system:masters"\n%s,deployer,deployer,"rig:deployers"\n' \
        "$(openssl rand -hex 24)" "$(openssl rand -hex 24)" >tokens.csv.tmp
      chmod 600 ca.key apiserver.key sa.key tokens.csv.tmp
      mv tokens.csv.tmp tokens.csv )
    rm -f "$d/kubelet-client.crt"
  fi
  # The apiserver's identity towards kubelets (pod logs, exec): system:masters.
  [ -f "$d/kubelet-client.crt" ] || ( cd "$d"
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
      -keyout kubelet-client.key -out kubelet-client.csr 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >kubelet-client.ext
    openssl x509 -req -in kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile kubelet-client.ext -out kubelet-client.crt 2>/dev/null
    chmod 600 kubelet-client.key )
}
kube_token() { grep ",$1,$1," "$KUBE_DIR/tokens.csv" | cut -d, -f1; }
kube_server() { echo "https://127.0.0.1:$RIG_APISERVER_PORT"; }
kube_kubeconfig() { # kube_kubeconfig user file
  local user=$1 file=$2 tmp
  tmp=$(mktemp)
  cat >"$tmp" <<KCFG
apiVersion: v1
kind: Config
clusters:
  - name: rig
    cluster:
      server: $(kube_server)
      certificate-authority-data: $(base64 -w0 "$KUBE_DIR/ca.crt")
users:
  - name: $user
    user:
      token: $(kube_token "$user")
contexts:
  - name: rig-$user
    context: {cluster: rig, user: $user, namespace: default}
current-context: rig-$user
KCFG
  chmod 600 "$tmp"; mv "$tmp" "$file"
}
# kube_api METHOD PATH [curl args...] : admin call, body on stdout, fails on HTTP >= 400.
kube_api() {
  local method=$1 path=$2; shift 2
  curl -sS --fail-with-body --max-time 60 --cacert "$KUBE_DIR/ca.crt" \
    -H "Authorization: Bearer $(kube_token rig-admin)" -X "$method" "$@" "$(kube_server)$path"
}
# kube_apply PATH YAML-FILE : server-side apply (the 2 MB isvc CRD cannot be applied client-side).
kube_apply() {
  sed '/^---\s*$/d' "$2" | kube_api PATCH "$1?fieldManager=rig&force=true" \
    -H 'Content-Type: application/apply-patch+yaml' --data-binary @- >/dev/null
}

# A controller's own identity, as its service account would be on a cluster: a client certificate
# from the kube CA in system:masters (what the controller writes is told apart from the rig's
# admin), renewed when the kube CA changed.
kube_controller_cert() { # kube_controller_cert dir file CN -> dir/file.{crt,key}
  local d=$1 f=$2 cn=$3
  mkdir -p "$d"
  [ -f "$d/$f.crt" ] && openssl verify -CAfile "$KUBE_DIR/ca.crt" "$d/$f.crt" >/dev/null 2>&1 && return 0
  ( cd "$d"
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=$cn" -keyout "$f.key" -out "$f.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >"$f.ext"
    openssl x509 -req -in "$f.csr" -CA "$KUBE_DIR/ca.crt" -CAkey "$KUBE_DIR/ca.key" -CAcreateserial \
      -days 3650 -extfile "$f.ext" -out "$f.crt" 2>/dev/null
    chmod 600 "$f.key" )
}
kube_controller_identity() { # kube_controller_identity dir file CN user out : the cert and out, a kubeconfig
  kube_controller_cert "$1" "$2" "$3"
  kube_controller_kubeconfig "$1" "$2" "$4" >"$5.tmp"
  chmod 600 "$5.tmp"; mv "$5.tmp" "$5"
}
kube_controller_kubeconfig() { # kube_controller_kubeconfig dir file user -> the kubeconfig on stdout
  local d=$1 f=$2 user=$3
  cat <<KCFG
apiVersion: v1
kind: Config
clusters: [{name: rig, cluster: {server: "$(kube_server)", certificate-authority: "$KUBE_DIR/ca.crt"}}]
users: [{name: $user, user: {client-certificate: "$d/$f.crt", client-key: "$d/$f.key"}}]
contexts: [{name: $user, context: {cluster: rig, user: $user}}]
current-context: $user
KCFG
}

# --- processes ----------------------------------------------------------------------------
kube_start_etcd() {
  is_running etcd && return 0
  rm -rf "$KUBE_DIR/etcd-data" "$KUBE_DIR"/applied-*   # throwaway cluster state: every start is empty
  start_bg etcd etcd --name rig --data-dir "$KUBE_DIR/etcd-data" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$RIG_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$RIG_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$RIG_ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$RIG_ETCD_PEER_PORT" \
    --initial-cluster "rig=http://127.0.0.1:$RIG_ETCD_PEER_PORT" --log-level warn
  wait_http "http://127.0.0.1:$RIG_ETCD_PORT/health" 30 || die "etcd did not start: $(tail -5 "$(logfile etcd)")"
}
kube_start_apiserver() {
  local d=$KUBE_DIR
  # Flags in the style of controller-runtime's envtest, plus what a node needs: the ServiceAccount
  # admission plugin (pods get their token volume as on a real cluster; the node part's
  # controller-manager creates the `default` accounts) and a client cert towards kubelets.
  # Endpoints stay unreconciled: the apiserver listens on loopback, which an endpoint may not be.
  local args=(
    --etcd-servers "http://127.0.0.1:$RIG_ETCD_PORT"
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$RIG_APISERVER_PORT"
    --cert-dir "$d" --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key"
    --client-ca-file "$d/ca.crt"
    --service-cluster-ip-range "$KUBE_SERVICE_CIDR"
    --service-account-issuer "$(kube_server)"
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key"
    --authorization-mode RBAC --token-auth-file "$d/tokens.csv" --allow-privileged=true
    --kubelet-client-certificate "$d/kubelet-client.crt" --kubelet-client-key "$d/kubelet-client.key"
    --kubelet-preferred-address-types InternalIP
    --endpoint-reconciler-type none
  )
  # Restart a running apiserver whose flags changed (a checkout with a newer rig).
  if is_running kube-apiserver; then
    [ "$(cat "$d/apiserver.args" 2>/dev/null)" = "${args[*]}" ] && return 0
    log "kube-apiserver flags changed: restarting it"
    stop_bg kube-apiserver
  fi
  start_bg kube-apiserver "$KUBE_APISERVER_BIN" "${args[@]}"
  echo "${args[*]}" >"$d/apiserver.args"
  local i
  for i in $(seq 1 600); do
    curl -fsS -o /dev/null --max-time 2 --cacert "$d/ca.crt" -H "Authorization: Bearer $(kube_token rig-admin)" \
      "$(kube_server)/readyz" 2>/dev/null && return 0
    is_running kube-apiserver || die "kube-apiserver exited: $(tail -5 "$(logfile kube-apiserver)")"
    sleep 0.2
  done
  die "kube-apiserver not ready after 120 s: $(tail -5 "$(logfile kube-apiserver)")"
}

# --- cluster content ----------------------------------------------------------------------
kube_rbac() {
  local f=$KUBE_DIR/rbac.yaml ns
  for ns in deploy forbidden; do
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$ns" >"$f"
    kube_apply "/api/v1/namespaces/$ns" "$f"
  done
  cat >"$f" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: rig-deployer
rules:
  - apiGroups: [serving.knative.dev]
    resources: [services]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: [serving.kserve.io]
    resources: [inferenceservices]
    verbs: [get, list, watch, create, update, patch, delete]
  - apiGroups: ["", events.k8s.io]
    resources: [events]
    verbs: [get, list, watch]
YAML
  kube_apply /apis/rbac.authorization.k8s.io/v1/clusterroles/rig-deployer "$f"
  # Bound in `default` and `deploy` only: the deployer can do nothing in `forbidden`.
  for ns in default deploy; do
    cat >"$f" <<YAML
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rig-deployer, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: rig-deployer}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: deployer}]
YAML
    kube_apply "/apis/rbac.authorization.k8s.io/v1/namespaces/$ns/rolebindings/rig-deployer" "$f"
  done
}
kube_crds() {
  local f name sum group plural version i pending=()
  for f in knative-service kserve-isvc-full kserve-servingruntimes-full; do
    name=$(awk '/^metadata:/{m=1;next} m&&/^  name:/{print $2; exit}' "$SHARED_DIR/crds/$f.yaml")
    # Applied once per etcd life: re-applying makes the apiserver reinitialize the CR storage.
    sum=$(sha256sum "$SHARED_DIR/crds/$f.yaml" | cut -c1-64)
    [ "$(cat "$KUBE_DIR/applied-$name" 2>/dev/null)" = "$sum" ] && continue
    version=$(sed '/^---\s*$/d' "$SHARED_DIR/crds/$f.yaml" |
      kube_api PATCH "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name?fieldManager=rig&force=true" \
        -H 'Content-Type: application/apply-patch+yaml' --data-binary @- |
      jq -r '.spec.versions[] | select(.storage) | .name') || die "applying CRD $name failed"
    pending+=("$name $version $sum")
  done
  # Established = served: wait on discovery (small) rather than polling the 2 MB CRD objects.
  for f in "${pending[@]}"; do
    read -r name version sum <<<"$f"
    plural=${name%%.*}; group=${name#*.}
    for i in $(seq 1 300); do
      # Before the group exists the body is not a discovery object ("404 page not found"): quiet.
      kube_api GET "/apis/$group/$version" 2>/dev/null |
        jq -e --arg p "$plural" 'objects | .resources[]? | select(.name == $p)' >/dev/null 2>&1 && break
      sleep 0.2
    done
    [ "$(kube_api GET "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/$name" |
      jq -r '.status.conditions[]? | select(.type=="Established") | .status')" = True ] || die "CRD $name not Established"
    echo "$sum" >"$KUBE_DIR/applied-$name"
  done
}

# --- part interface -----------------------------------------------------------------------
kube_up() {
  apt_install_trixie etcd-server
  apt_install openssl curl jq
  kube_build
  kube_credentials
  kube_start_etcd
  kube_start_apiserver
  kube_rbac
  kube_crds
  kube_kubeconfig rig-admin "$KUBE_DIR/kubeconfig-admin"
  kube_kubeconfig deployer "$KUBE_DIR/kubeconfig-deployer"
  env_set KUBE_SERVER "$(kube_server)"
  env_set KUBE_CA "$KUBE_DIR/ca.crt"
  env_set KUBECONFIG_ADMIN "$KUBE_DIR/kubeconfig-admin"
  env_set KUBECONFIG_DEPLOYER "$KUBE_DIR/kubeconfig-deployer"
  env_set KUBE_ADMIN_TOKEN "$(kube_token rig-admin)"
  env_set KUBE_DEPLOYER_TOKEN "$(kube_token deployer)"
  env_set KUBE_FORBIDDEN_NAMESPACE forbidden
}
kube_down() {
  stop_bg kube-apiserver
  stop_bg etcd
}
kube_status() {
  is_running etcd && is_running kube-apiserver &&
    curl -fsS -o /dev/null --max-time 3 --cacert "$KUBE_DIR/ca.crt" \
      -H "Authorization: Bearer $(kube_token rig-admin)" "$(kube_server)/readyz"
}
