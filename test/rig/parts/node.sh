# Part "node": one real Kubernetes node joined to the kube part's apiserver. containerd + runc
# (Debian's runc; containerd Debian's 1.6 or v2 built from the Go module proxy), a CNI bridge for pods, kubelet, kube-proxy (iptables), kube-controller-manager and
# kube-scheduler (the binaries kube_build made). Pods get addresses on the bridge, which the host
# reaches directly; Services answer on their ClusterIP from the host through kube-proxy.
# Sourced by rig.sh (needs lib.sh, docker.sh, registry.sh, kube.sh).

NODE_NAME=rig-node
# v2: containerd $RIG_CONTAINERD_VERSION built here from the Go module proxy (the forward path);
# debian: Debian's containerd 1.6.20 (works; kubelet 1.36 warns that 1.6 support ends with 1.37).
: "${RIG_NODE_CONTAINERD:=v2}"
: "${RIG_CONTAINERD_VERSION:=v2.2.9}"
NODE_CONTAINERD_V2_BIN=$RIG_CACHE/bin/containerd-$RIG_CONTAINERD_VERSION
NODE_DIR=$RIG_STATE/node                       # config, sockets, runtime state: wiped when stale
NODE_CACHE=$RIG_CACHE/node                     # containerd's root (pulled images survive a down)
NODE_BRIDGE=rigbr0
: "${RIG_NODE_POD_CIDR:=10.244.0.0/24}"
NODE_IP=${RIG_NODE_POD_CIDR%.*}.1              # the bridge's address: node IP, pod gateway, endpoints
NODE_CONTAINERD_SOCK=$NODE_DIR/containerd.sock
NODE_KUBELET_ROOT=$NODE_DIR/kubelet
NODE_RUNC_ROOT=$NODE_DIR/runc
NODE_PAUSE_VERSION=3.10.2                      # TAG in build/pause/Makefile of k8s v1.36
NODE_KUBELET_HEALTHZ=10248 NODE_PROXY_HEALTHZ=10256 NODE_KCM_PORT=10257 NODE_SCHED_PORT=10259
# The kernel settings a kubelet wants (protectKernelDefaults): see node_sysctls.
NODE_SYSCTLS=(vm.overcommit_memory=1 vm.panic_on_oom=0 kernel.panic=10 kernel.panic_on_oops=1
  kernel.keys.root_maxkeys=1000000 kernel.keys.root_maxbytes=25000000)

node_bin() { echo "$KUBE_BIN_DIR/$1"; }
node_api_ok() { kube_api GET "$1" >/dev/null 2>&1; }

# --- images: pause (the sandbox) and a tiny HTTP server for tests, both static C, FROM scratch --
node_registry_has() { # node_registry_has port repo tag [curl args]
  local port=$1 repo=$2 tag=$3; shift 3
  curl -fsS -o /dev/null -I --max-time 5 "$@" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://127.0.0.1:$port/v2/$repo/manifests/$tag" 2>/dev/null
}
node_static_image() { # node_static_image source.c binary-name ref [auth-ref] [gcc args...]
  local src=$1 name=$2 ref=$3 auth_ref=$4; shift 4
  local ctx; ctx=$(mktemp -d)
  gcc -Os -Wall -Werror -static "$@" -o "$ctx/$name" "$src" || { rm -rf "$ctx"; die "gcc $src failed"; }
  tar -C "$ctx" -c "$name" | rig_docker import --change "ENTRYPOINT [\"/$name\"]" - "$ref" >/dev/null
  rm -rf "$ctx"
  rig_docker push "$ref" >"$(logfile node-images)" 2>&1 || { tail -5 "$(logfile node-images)" >&2; die "push $ref failed"; }
  if [ -n "$auth_ref" ]; then
    rig_docker tag "$ref" "$auth_ref"
    DOCKER_CONFIG=$(env_get DOCKER_CONFIG_AUTH) rig_docker push "$auth_ref" >>"$(logfile node-images)" 2>&1 ||
      { tail -5 "$(logfile node-images)" >&2; die "push $auth_ref failed"; }
  fi
  log "node: pushed $ref${auth_ref:+ and $auth_ref}"
}
node_images() {
  local pause_c=$RIG_CACHE/go/mod/k8s.io/kubernetes@$RIG_KUBE_VERSION/build/pause/linux/pause.c
  local echo_c=$RIG_DIR/node/http-echo.c tag auth_user auth_pw
  NODE_PAUSE_IMAGE=127.0.0.1:$RIG_REGISTRY_PORT/rig/pause:$NODE_PAUSE_VERSION
  tag=$(sha256sum "$echo_c" | cut -c1-12)
  NODE_HTTP_IMAGE=127.0.0.1:$RIG_REGISTRY_PORT/rig/http-echo:$tag
  NODE_HTTP_IMAGE_AUTH=127.0.0.1:$RIG_REGISTRY_AUTH_PORT/rig/http-echo-private:$tag
  auth_user=$(env_get REGISTRY_AUTH_USER); auth_pw=$(env_get REGISTRY_AUTH_PASSWORD)
  if ! node_registry_has "$RIG_REGISTRY_PORT" rig/pause "$NODE_PAUSE_VERSION"; then
    [ -f "$pause_c" ] || die "no $pause_c: the Kubernetes module is fetched by kube_build"
    docker_status || die "node: the docker part must be up to build the pause image"
    node_static_image "$pause_c" pause "$NODE_PAUSE_IMAGE" "" -DVERSION="v$NODE_PAUSE_VERSION"
  fi
  if ! node_registry_has "$RIG_REGISTRY_PORT" rig/http-echo "$tag" ||
    ! node_registry_has "$RIG_REGISTRY_AUTH_PORT" rig/http-echo-private "$tag" -u "$auth_user:$auth_pw"; then
    docker_status || die "node: the docker part must be up to build the test image"
    node_static_image "$echo_c" http-echo "$NODE_HTTP_IMAGE" "$NODE_HTTP_IMAGE_AUTH"
  fi
}

# --- containerd v2 (RIG_NODE_CONTAINERD=v2) --------------------------------------------------
# containerd, its runc shim and ctr from the module proxy, static (no btrfs/devmapper/zfs), with
# the kube build's module and build caches (about 10 min on 2 busy cores, cached after).
node_containerd_build() {
  local d=$NODE_CONTAINERD_V2_BIN wd=$RIG_CACHE/build/containerd-$RIG_CONTAINERD_VERSION t0=$SECONDS
  [ -x "$d/containerd" ] && [ -x "$d/containerd-shim-runc-v2" ] && [ -x "$d/ctr" ] && return 0
  log "building containerd $RIG_CONTAINERD_VERSION from the Go module proxy (log: $(logfile containerd-build))"
  mkdir -p "$wd" "$d"
  ( cd "$wd"
    [ -f go.mod ] || kube_go mod init rig.local/containerd
    kube_go get "github.com/containerd/containerd/v2@$RIG_CONTAINERD_VERSION"
    printf '//go:build tools\n\npackage tools\n\nimport (\n' >tools.go
    for c in containerd containerd-shim-runc-v2 ctr; do printf '\t_ "github.com/containerd/containerd/v2/cmd/%s"\n' "$c"; done >>tools.go
    printf ')\n' >>tools.go
    kube_go mod tidy && mkdir -p out &&
      CGO_ENABLED=0 kube_go build -trimpath -tags "no_btrfs no_devmapper no_zfs urfave_cli_no_docs" \
        -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$RIG_CONTAINERD_VERSION" -o out/ \
        github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
        github.com/containerd/containerd/v2/cmd/ctr
  ) >"$(logfile containerd-build)" 2>&1 || { tail -20 "$(logfile containerd-build)" >&2; die "containerd build failed"; }
  mv "$wd"/out/* "$d/"
  log "built containerd $RIG_CONTAINERD_VERSION in $((SECONDS - t0)) s"
}
node_containerd_dir() { # where containerd, its shim and ctr come from
  case "$RIG_NODE_CONTAINERD" in
    v2) echo "$NODE_CONTAINERD_V2_BIN" ;;
    debian) echo /usr/bin ;;
    *) die "RIG_NODE_CONTAINERD=$RIG_NODE_CONTAINERD: use debian or v2" ;;
  esac
}

# --- host setup ---------------------------------------------------------------------------
# protectKernelDefaults: true, and the rig sets the values itself. The kubelet otherwise rewrites
# them silently on every start; this way the change is explicit, logged, and undone by `down`
# (the values found first are kept in sysctl-saved), and the kubelet only checks them (as CIS
# hardening asks of real nodes).
node_sysctls() {
  local kv k v saved=$NODE_DIR/sysctl-saved changed=()
  if [ ! -f "$saved" ]; then
    for kv in "${NODE_SYSCTLS[@]}"; do k=${kv%%=*}; echo "$k=$(sysctl -n "$k")"; done >"$saved.tmp"
    mv "$saved.tmp" "$saved"
  fi
  for kv in "${NODE_SYSCTLS[@]}"; do
    k=${kv%%=*}; v=${kv#*=}
    [ "$(sysctl -n "$k")" = "$v" ] && continue
    sysctl -qw "$k=$v" || die "cannot set $k=$v"
    changed+=("$k=$v")
  done
  [ ${#changed[@]} -eq 0 ] || log "node: set ${changed[*]} (restored by down)"
}
node_sysctls_restore() {
  local saved=$NODE_DIR/sysctl-saved kv
  [ -f "$saved" ] || return 0
  while read -r kv; do [ -n "$kv" ] && sysctl -qw "$kv" 2>/dev/null || true; done <"$saved"
  rm -f "$saved"
}
# The bridge exists before any pod so its address can serve as node IP and endpoint address; the
# service range is routed onto it, so ClusterIP traffic never leaves the machine.
node_bridge() {
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 || ip link add "$NODE_BRIDGE" type bridge
  ip -4 addr show dev "$NODE_BRIDGE" | grep -q "inet $NODE_IP/" ||
    ip addr add "$NODE_IP/${RIG_NODE_POD_CIDR#*/}" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  ip route replace "$KUBE_SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  # Pods talk to the host, each other and Services, never past the machine (the rig's rule).
  iptables -N RIG-NODE-EGRESS 2>/dev/null || true
  iptables -F RIG-NODE-EGRESS
  iptables -A RIG-NODE-EGRESS -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j REJECT --reject-with icmp-net-prohibited
  iptables -C FORWARD -j RIG-NODE-EGRESS 2>/dev/null || iptables -I FORWARD 1 -j RIG-NODE-EGRESS
}

# --- credentials --------------------------------------------------------------------------
# The kubelet is system:node:rig-node in group system:nodes (RBAC role system:node); the
# controllers and kube-proxy use the rig's admin kubeconfig.
node_pki() {
  local d=$NODE_DIR/pki
  mkdir -p "$d"
  if [ ! -f "$d/kubelet.crt" ] || ! openssl verify -CAfile "$KUBE_DIR/ca.crt" "$d/kubelet.crt" >/dev/null 2>&1; then
    openssl req -newkey rsa:2048 -nodes -subj "/O=system:nodes/CN=system:node:$NODE_NAME" \
      -keyout "$d/kubelet.key" -out "$d/kubelet.csr" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' >"$d/kubelet.ext"
    openssl x509 -req -in "$d/kubelet.csr" -CA "$KUBE_DIR/ca.crt" -CAkey "$KUBE_DIR/ca.key" -CAcreateserial \
      -days 3650 -extfile "$d/kubelet.ext" -out "$d/kubelet.crt" 2>/dev/null
    chmod 600 "$d/kubelet.key"
  fi
  node_write "$d/kubeconfig-kubelet" <<KCFG
apiVersion: v1
kind: Config
clusters:
  - name: rig
    cluster: {server: "$(kube_server)", certificate-authority: "$KUBE_DIR/ca.crt"}
users:
  - name: kubelet
    user: {client-certificate: "$d/kubelet.crt", client-key: "$d/kubelet.key"}
contexts:
  - name: rig-kubelet
    context: {cluster: rig, user: kubelet}
current-context: rig-kubelet
KCFG
}
node_rbac() {
  local f=$NODE_DIR/rbac.yaml
  cat >"$f" <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: rig-nodes}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}]
YAML
  kube_apply /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/rig-nodes "$f"
}

# --- configuration files ------------------------------------------------------------------
# containerd's configuration: its own root, state, socket and runc root, so nothing is shared with
# the docker part's containerd. Config version 2 for containerd 1.6, version 3 for v2.
# node_cri_runtime_toml TABLE CNI-BIN-LINE : runc (cgroupfs, our runc root) and CNI, the same in
# both config versions but under another table name.
node_cri_runtime_toml() {
  cat <<TOML
[$1.containerd]
  default_runtime_name = "runc"
  [$1.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [$1.containerd.runtimes.runc.options]
      SystemdCgroup = false
      Root = "$NODE_RUNC_ROOT"
[$1.cni]
  $2
  conf_dir = "$NODE_DIR/cni"
  max_conf_num = 1
TOML
}
node_containerd_v2_toml() {
  local d=$NODE_DIR
  cat <<TOML
version = 2
root = "$NODE_CACHE/containerd"
state = "$d/containerd-state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$NODE_CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_CACHE/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NODE_PAUSE_IMAGE"
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower a sandbox's oom_score_adj below ours.
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pod network namespaces under the state dir: a stale one is found and unmounted with the rest.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/certs.d"
TOML
  node_cri_runtime_toml 'plugins."io.containerd.grpc.v1.cri"' 'bin_dir = "/usr/lib/cni"'
}
node_containerd_v3_toml() {
  local d=$NODE_DIR
  cat <<TOML
version = 3
root = "$NODE_CACHE/containerd-v2"
state = "$d/containerd-state"
[grpc]
  address = "$NODE_CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_CACHE/opt"
[plugins."io.containerd.nri.v1.nri"]
  disable = true
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$NODE_PAUSE_IMAGE"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "$d/certs.d"
[plugins."io.containerd.transfer.v1.local"]
  config_path = "$d/certs.d"
[plugins."io.containerd.cri.v1.runtime"]
  # root here lacks CAP_SYS_RESOURCE: runc cannot lower a sandbox's oom_score_adj below ours.
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
TOML
  node_cri_runtime_toml 'plugins."io.containerd.cri.v1.runtime"' 'bin_dirs = ["/usr/lib/cni"]'
}

# node_write file < content : replace only when the content differs (kube-proxy exits when it
# sees its configuration file change, even to the same bytes).
node_write() {
  local tmp; tmp=$(mktemp "$1.XXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}
node_config() {
  local d=$NODE_DIR port
  mkdir -p "$d/cni" "$d/certs.d" "$NODE_CACHE/containerd"
  if [ "$RIG_NODE_CONTAINERD" = v2 ]; then node_containerd_v3_toml; else node_containerd_v2_toml; fi |
    node_write "$d/containerd.toml"
  # The rig registries over plain HTTP; credentials for the auth ones come only from the pod's
  # imagePullSecrets (the kubelet hands them to the CRI per pull).
  for port in "$RIG_REGISTRY_PORT" "$RIG_REGISTRY_AUTH_PORT" "$RIG_REGISTRY_TOKEN_PORT"; do
    mkdir -p "$d/certs.d/127.0.0.1:$port"
    printf 'server = "http://127.0.0.1:%s"\n\n[host."http://127.0.0.1:%s"]\n  capabilities = ["pull", "resolve"]\n' \
      "$port" "$port" | node_write "$d/certs.d/127.0.0.1:$port/hosts.toml"
  done
  node_write "$d/cni/10-rig.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "rig",
  "plugins": [
    {
      "type": "bridge", "bridge": "$NODE_BRIDGE", "isDefaultGateway": true, "hairpinMode": true,
      "ipMasq": false,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "$RIG_NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
               "dataDir": "$d/cni-ipam"}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  node_write "$d/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (hybrid); kubelet 1.36 refuses it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupsPerQOS: true
failSwapOn: false
# Else the kubelet adds KUBE-FIREWALL, which drops non-loopback sources to 127.0.0.0/8.
makeIPTablesUtilChains: false
# The rig sets the kernel values itself (node_sysctls) and restores them on down.
protectKernelDefaults: true
containerRuntimeEndpoint: unix://$NODE_CONTAINERD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $NODE_KUBELET_HEALTHZ
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $KUBE_DIR/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $d/pod-logs
volumePluginDir: $d/volume-plugins
clusterDomain: cluster.local
# No DNS for pods: the host's resolver is not a rig address, and there is no cluster DNS.
resolvConf: ""
# A CI disk is often fuller than 85 %: no disk-pressure evictions or image GC on a test node. In
# bytes, not percent: on a shared 252 GB disk 1 % (2.5 GB) was crossed mid-run and the node tainted
# itself disk-pressure, leaving every new pod Unschedulable.
evictionHard: {memory.available: 100Mi, nodefs.available: 256Mi, imagefs.available: 256Mi, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
rotateCertificates: false
oomScoreAdj: 0   # lowering it needs CAP_SYS_RESOURCE, which root lacks here
YAML
  node_write "$d/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBE_DIR/kubeconfig-admin}
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$NODE_PROXY_HEALTHZ
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $RIG_NODE_POD_CIDR
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$NODE_IP/32"]
iptables: {localhostNodePorts: false, masqueradeAll: false, syncPeriod: 30s, minSyncPeriod: 0s}
# 0 = leave the host's conntrack settings alone.
oomScoreAdj: 0   # lowering it needs CAP_SYS_RESOURCE, which root lacks here
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
}

# --- stale state --------------------------------------------------------------------------
# What a kill -9 of everything leaves: shims and container processes (by our socket / runc root),
# mounts under our dirs (container rootfs, shm, netns, kubelet volumes), the IPAM reservations,
# portmap rules. Runs only while containerd and the kubelet are stopped.
node_clean() {
  local pid id m n=0
  for pid in $(grep -lsF -- "$NODE_CONTAINERD_SOCK" /proc/[0-9]*/cmdline 2>/dev/null | cut -d/ -f3); do
    [ "$pid" = $$ ] && continue
    if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q '^[^ ]*containerd-shim'; then
      kill -KILL "$pid" 2>/dev/null && n=$((n + 1))
    fi
  done
  if [ -d "$NODE_RUNC_ROOT/k8s.io" ]; then
    for id in $(runc --root "$NODE_RUNC_ROOT/k8s.io" list -q 2>/dev/null); do
      runc --root "$NODE_RUNC_ROOT/k8s.io" kill "$id" KILL >/dev/null 2>&1 || true
      runc --root "$NODE_RUNC_ROOT/k8s.io" delete --force "$id" >/dev/null 2>&1 || true
      n=$((n + 1))
    done
  fi
  # Deepest first; lazy, so a busy mount never blocks the next start.
  for m in $(findmnt -rn -o TARGET | grep -E "^($NODE_DIR|$NODE_CACHE)/" | sort -r || true); do
    umount -l "$m" 2>/dev/null || true; n=$((n + 1))
  done
  rm -rf "$NODE_DIR/containerd-state" "$NODE_RUNC_ROOT" "$NODE_DIR/cni-ipam" "$NODE_KUBELET_ROOT"
  # portmap's per-container chains (only this node's CNI uses portmap here).
  local chain
  for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
    iptables -t nat -F "$chain" 2>/dev/null || true
  done
  for chain in $(iptables -t nat -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^CNI-DN-/{print $2}'); do
    iptables -t nat -F "$chain" 2>/dev/null; iptables -t nat -X "$chain" 2>/dev/null || true
  done
  [ "$n" -eq 0 ] || log "node: removed $n leftover shims, containers and mounts"
}

# --- processes ----------------------------------------------------------------------------
node_wait() { # node_wait name url seconds [curl args]
  local name=$1 url=$2 secs=$3; shift 3
  local deadline=$((SECONDS + secs))
  until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
    is_running "$name" || die "$name exited: $(tail -5 "$(logfile "$name")")"
    [ $SECONDS -lt $deadline ] || die "$name not healthy after $secs s: $(tail -5 "$(logfile "$name")")"
    sleep 0.3
  done
}
# node_run name config-file... -- cmd... : start_bg, restarting a running process whose command
# line or configuration files changed (a warm rig picks up a newer checkout's settings).
node_run() {
  local name=$1 files=() want f=$NODE_DIR/$1.started; shift
  while [ "$1" != -- ]; do files+=("$1"); shift; done; shift
  want="$* $(cat "${files[@]}" /dev/null | sha256sum | cut -c1-16)"
  if is_running "$name"; then
    [ "$(cat "$f" 2>/dev/null)" = "$want" ] && return 0
    log "node: $name configuration changed: restarting it"
    stop_bg "$name"
  fi
  start_bg "$name" "$@" 9>&-
  printf '%s' "$want" >"$f"
}
# Which containerd with which effective configuration (its own dump, so an edit of the file's
# text alone does not restart the node's pods).
node_containerd_fingerprint() {
  local bin; bin=$(node_containerd_dir)
  { echo "$bin"; "$bin/containerd" --config "$NODE_DIR/containerd.toml" config dump 2>/dev/null | grep -v '^imports'; } |
    sha256sum
}
node_start_containerd() {
  if is_running containerd; then
    [ "$(cat "$NODE_DIR/containerd.started" 2>/dev/null)" = "$(node_containerd_fingerprint)" ] && return 0
    log "node: containerd configuration changed: restarting the node"
    stop_bg kubelet
    stop_bg containerd
  fi
  stop_bg kubelet   # its volume mounts are about to go
  node_clean
  mkdir -p "$NODE_DIR/containerd-state"
  local bin; bin=$(node_containerd_dir)
  # The shim is looked up on PATH: the one that matches this containerd first.
  start_bg containerd env PATH="$bin:$PATH" "$bin/containerd" --config "$NODE_DIR/containerd.toml" 9>&-
  node_containerd_fingerprint >"$NODE_DIR/containerd.started"
  local deadline=$((SECONDS + 30))
  until "$bin/ctr" --address "$NODE_CONTAINERD_SOCK" version >/dev/null 2>&1; do
    is_running containerd || die "containerd exited: $(tail -5 "$(logfile containerd)")"
    [ $SECONDS -lt $deadline ] || die "containerd did not answer in 30 s: $(tail -5 "$(logfile containerd)")"
    sleep 0.2
  done
}
node_start_controllers() {
  local k=$KUBE_DIR/kubeconfig-admin
  # --authentication-skip-lookup: the apiserver has no front-proxy (requestheader) CA to look up.
  node_run kube-controller-manager -- "$(node_bin kube-controller-manager)" \
    --kubeconfig "$k" --authentication-kubeconfig "$k" --authorization-kubeconfig "$k" \
    --authentication-skip-lookup \
    --bind-address 127.0.0.1 --secure-port "$NODE_KCM_PORT" --cert-dir "$NODE_DIR/kcm-certs" \
    --leader-elect=false --use-service-account-credentials=false \
    --service-account-private-key-file "$KUBE_DIR/sa.key" --root-ca-file "$KUBE_DIR/ca.crt" \
    --cluster-cidr "$RIG_NODE_POD_CIDR" --service-cluster-ip-range "$KUBE_SERVICE_CIDR" \
    --controllers '*' --v 1
  node_run kube-scheduler -- "$(node_bin kube-scheduler)" \
    --kubeconfig "$k" --authentication-kubeconfig "$k" --authorization-kubeconfig "$k" \
    --authentication-skip-lookup \
    --bind-address 127.0.0.1 --secure-port "$NODE_SCHED_PORT" --cert-dir "$NODE_DIR/sched-certs" \
    --leader-elect=false --v 1
}
node_start_kubelet() {
  # A kubelet registers its Node once, at start: after a kube restart (empty etcd) it must restart.
  if is_running kubelet && ! node_api_ok "/api/v1/nodes/$NODE_NAME"; then
    log "node: $NODE_NAME is not in the API (new etcd): restarting the kubelet"
    stop_bg kubelet
  fi
  mkdir -p "$NODE_KUBELET_ROOT" "$NODE_DIR/pod-logs" "$NODE_DIR/volume-plugins"
  local before; before=$(cat "$(pidfile kubelet)" 2>/dev/null || true) NODE_KUBELET_STARTED=$(date +%s)
  node_run kubelet "$NODE_DIR/kubelet.yaml" -- "$(node_bin kubelet)" --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$NODE_DIR/pki/kubeconfig-kubelet" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --root-dir "$NODE_KUBELET_ROOT" --cert-dir "$NODE_DIR/kubelet-certs" --v 1
  # Still the same kubelet: its Ready counts whenever it was posted.
  [ "$(cat "$(pidfile kubelet)")" != "$before" ] || NODE_KUBELET_STARTED=0
}
node_start_proxy() {
  node_run kube-proxy "$NODE_DIR/kube-proxy.yaml" -- "$(node_bin kube-proxy)" --config "$NODE_DIR/kube-proxy.yaml" --v 1
}
# Ready, as reported by a kubelet started at or after $1 (epoch s): right after a restart the
# API still shows the previous kubelet's Ready until the controller's grace period ends.
node_ready() {
  kube_api GET "/api/v1/nodes/$NODE_NAME" 2>/dev/null |
    jq -e --argjson t "${1:-0}" '.status.conditions[]? |
      select(.type == "Ready" and .status == "True" and (.lastHeartbeatTime | fromdateiso8601) >= $t - 1)' >/dev/null 2>&1
}

# A pid file left by a kill -9 may name a pid the kernel has since given to something else:
# forget it unless that process is still our binary.
node_forget_stale_pids() {
  local p f pid
  for p in containerd kubelet kube-proxy kube-controller-manager kube-scheduler; do
    f=$(pidfile "$p"); [ -f "$f" ] || continue
    pid=$(cat "$f")
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "^[^ ]*$p " || rm -f "$f"
  done
}

# Up and down hold the part's lock (rig_locked): two `rig.sh up` at once must not clean up under
# each other. Processes are started without the lock's fd (`9>&-`).
node_up() { rig_locked "$NODE_DIR/.lock" _node_up; }
node_down() { rig_locked "$NODE_DIR/.lock" _node_down; }
_node_up() {
  apt_install containerd runc containernetworking-plugins conntrack iptables gcc libc6-dev openssl jq
  kube_built || die "node: no Kubernetes binaries in $KUBE_BIN_DIR (rig.sh up kube builds them)"
  kube_status || die "node: the kube part must be up first (rig.sh up kube)"
  mkdir -p "$NODE_DIR" "$NODE_CACHE"
  node_forget_stale_pids
  [ "$RIG_NODE_CONTAINERD" = v2 ] && node_containerd_build
  node_images
  node_sysctls
  node_bridge
  node_pki
  node_config
  node_rbac
  node_start_containerd
  node_start_controllers
  node_start_kubelet
  node_start_proxy
  node_wait kube-controller-manager "https://127.0.0.1:$NODE_KCM_PORT/healthz" 60 -k
  node_wait kube-scheduler "https://127.0.0.1:$NODE_SCHED_PORT/healthz" 60 -k
  node_wait kubelet "http://127.0.0.1:$NODE_KUBELET_HEALTHZ/healthz" 60
  node_wait kube-proxy "http://127.0.0.1:$NODE_PROXY_HEALTHZ/healthz" 60
  local deadline=$((SECONDS + 90))
  until node_ready "${NODE_KUBELET_STARTED:-0}"; do
    is_running kubelet || die "kubelet exited: $(tail -5 "$(logfile kubelet)")"
    [ $SECONDS -lt $deadline ] || die "node $NODE_NAME not Ready after 90 s (logs: $(logfile kubelet))"
    sleep 0.5
  done
  env_set NODE_NAME "$NODE_NAME"
  env_set NODE_IP "$NODE_IP"
  env_set NODE_POD_CIDR "$RIG_NODE_POD_CIDR"
  env_set NODE_SERVICE_CIDR "$KUBE_SERVICE_CIDR"
  env_set NODE_CONTAINERD_ADDRESS "$NODE_CONTAINERD_SOCK"
  env_set NODE_CTR "$(node_containerd_dir)/ctr"
  env_set NODE_PAUSE_IMAGE "$NODE_PAUSE_IMAGE"
  env_set NODE_HTTP_IMAGE "$NODE_HTTP_IMAGE"
  env_set NODE_HTTP_IMAGE_AUTH "$NODE_HTTP_IMAGE_AUTH"
}
_node_down() {
  stop_bg kube-proxy
  stop_bg kubelet
  stop_bg kube-scheduler
  stop_bg kube-controller-manager
  stop_bg containerd
  node_clean
  [ -x "$(node_bin kube-proxy)" ] && "$(node_bin kube-proxy)" --cleanup >/dev/null 2>&1 || true
  ip route del "$KUBE_SERVICE_CIDR" dev "$NODE_BRIDGE" 2>/dev/null || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  while iptables -D FORWARD -j RIG-NODE-EGRESS 2>/dev/null; do :; done
  iptables -F RIG-NODE-EGRESS 2>/dev/null && iptables -X RIG-NODE-EGRESS 2>/dev/null || true
  node_sysctls_restore
}
node_status() {
  local p
  for p in containerd kubelet kube-proxy kube-controller-manager kube-scheduler; do
    is_running "$p" || { echo "  $p: not running" >&2; return 1; }
  done
  node_ready
}
