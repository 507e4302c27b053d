# Part "buildkit": a standalone BuildKit (buildkitd built from the Go module proxy) with its OCI
# worker on Debian's runc, and a buildx builder named rig-buildkit on it (the `remote` driver).
# That is what docker/setup-buildx-action gives a GitHub job: a BuildKit outside dockerd, so pushes
# carry attestations (an OCI index), registry caches export, and nothing lands in `docker images`.
# Its RUN steps use the host's network (the rig has no bridge), as the docker driver's do here.

: "${RIG_BUILDKIT_VERSION:=v0.34.2}"
BUILDKIT_BUILDER_NAME=rig-buildkit
BUILDKIT_DIR=$RIG_STATE/buildkit
BUILDKIT_SOCK=$BUILDKIT_DIR/buildkitd.sock
# Layers and the local cache live in the cache dir, like the docker part's data root.
BUILDKIT_ROOT=$RIG_CACHE/buildkit-root
BUILDKIT_GO_MODULES=("github.com/moby/buildkit $RIG_BUILDKIT_VERSION")
BUILDKIT_GO_COMMANDS=(buildkitd=github.com/moby/buildkit/cmd/buildkitd buildctl=github.com/moby/buildkit/cmd/buildctl)
# buildx reads the daemon's version (buildx ls, inspect): give it the real one.
BUILDKIT_GO_LDFLAGS="-X github.com/moby/buildkit/version.Version=$RIG_BUILDKIT_VERSION -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"

buildkit_bin() { echo "$(go_group_bin_dir buildkit)/$1"; }
buildkit_ctl() { "$(buildkit_bin buildctl)" --addr "unix://$BUILDKIT_SOCK" "$@"; }

buildkit_config() {
  # The rig's registries speak plain http. network.host: the builds' `--network host` (the
  # action's build-network input) is an entitlement the daemon must allow
  # (https://docs.docker.com/build/buildkit/configure/).
  cat >"$BUILDKIT_DIR/buildkitd.toml" <<EOF
root = "$BUILDKIT_ROOT"
insecure-entitlements = ["network.host"]

[grpc]
  address = ["unix://$BUILDKIT_SOCK"]

[worker.oci]
  enabled = true
  binary = "$(command -v runc || echo /usr/sbin/runc)"
  networkMode = "host"
  gc = true
  maxUsedSpace = "12GB"

[worker.containerd]
  enabled = false

[registry."127.0.0.1:$RIG_REGISTRY_PORT"]
  http = true

[registry."127.0.0.1:$RIG_REGISTRY_AUTH_PORT"]
  http = true

[registry."127.0.0.1:$RIG_REGISTRY_TOKEN_PORT"]
  http = true
EOF
}

# buildx keeps builders per Docker config dir: create ours in the one a plain `docker` uses
# ($DOCKER_CONFIG or ~/.docker). Tests with their own DOCKER_CONFIG create it there from
# BUILDKIT_ADDR, as setup-buildx-action does in a job.
buildkit_builder() {
  rig_docker buildx rm "$BUILDKIT_BUILDER_NAME" >/dev/null 2>&1 || true
  rig_docker buildx create --name "$BUILDKIT_BUILDER_NAME" --driver remote "unix://$BUILDKIT_SOCK" >/dev/null ||
    die "docker buildx create --driver remote failed"
  rig_docker buildx inspect --bootstrap "$BUILDKIT_BUILDER_NAME" >"$BUILDKIT_DIR/inspect.txt" 2>&1 ||
    { cat "$BUILDKIT_DIR/inspect.txt" >&2; die "buildx cannot reach buildkitd at unix://$BUILDKIT_SOCK"; }
}

buildkit_up() {
  command -v runc >/dev/null || apt_install runc
  go_group_build buildkit
  mkdir -p "$BUILDKIT_DIR" "$BUILDKIT_ROOT"
  buildkit_config
  stop_if_stale buildkitd "$(buildkit_bin buildkitd)"
  if ! is_running buildkitd; then
    rm -f "$BUILDKIT_SOCK"
    start_bg buildkitd "$(buildkit_bin buildkitd)" --config "$BUILDKIT_DIR/buildkitd.toml" 9>&-
  fi
  local deadline=$((SECONDS + 60))
  until buildkit_ctl debug workers >/dev/null 2>&1; do
    is_running buildkitd || { tail -20 "$(logfile buildkitd)" >&2; die "buildkitd exited"; }
    [ $SECONDS -lt $deadline ] || { tail -20 "$(logfile buildkitd)" >&2; die "buildkitd did not answer on $BUILDKIT_SOCK in 60 s"; }
    sleep 0.3
  done
  buildkit_builder
  env_set BUILDKIT_ADDR "unix://$BUILDKIT_SOCK"
  env_set BUILDKIT_BUILDER "$BUILDKIT_BUILDER_NAME"
  env_set BUILDKIT_VERSION "$RIG_BUILDKIT_VERSION"
  log "buildkit: buildkitd $RIG_BUILDKIT_VERSION on unix://$BUILDKIT_SOCK, buildx builder $BUILDKIT_BUILDER_NAME"
}

buildkit_down() {
  rig_docker buildx rm "$BUILDKIT_BUILDER_NAME" >/dev/null 2>&1 || true
  stop_bg buildkitd
  rm -f "$BUILDKIT_SOCK"
}

buildkit_status() {
  is_running buildkitd && buildkit_ctl debug workers >/dev/null 2>&1
}
