# Docker engine for the rig: Debian's docker.io (20.10) with its own socket, data root in the
# cache (base images survive a `down`), no bridge and no iptables (host networking only), and
# buildx from trixie (docker driver: the docker-container driver would need Docker Hub).

DOCKER_DIR=$RIG_STATE/docker
DOCKER_SOCK=$DOCKER_DIR/docker.sock
DOCKER_DATA=$RIG_CACHE/docker-data

# The rig's client: the first `docker` on PATH when it talks to the 20.10 daemon (API version
# negotiation) and finds the buildx plugin, else Debian's own client.
docker_pick_cli() {
  local c
  for c in "$(command -v docker || true)" /usr/bin/docker; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if DOCKER_HOST=unix://$DOCKER_SOCK "$c" version --format '{{.Server.Version}}' >/dev/null 2>&1 &&
      DOCKER_HOST=unix://$DOCKER_SOCK "$c" buildx version >/dev/null 2>&1; then
      echo "$c"; return 0
    fi
  done
  return 1
}

# rig_docker args... : the chosen client against the rig daemon (for the other parts).
rig_docker() {
  local cli; cli=$(env_get DOCKER_CLI); [ -n "$cli" ] || cli=docker
  DOCKER_HOST=unix://$DOCKER_SOCK "$cli" "$@"
}

docker_up() {
  apt_install docker.io
  apt_install_trixie docker-buildx
  mkdir -p "$DOCKER_DIR" "$DOCKER_DATA"
  if ! is_running dockerd; then
    rm -f "$DOCKER_SOCK" "$DOCKER_DIR/dockerd.pid"
    start_bg dockerd dockerd \
      --host "unix://$DOCKER_SOCK" \
      --data-root "$DOCKER_DATA" \
      --exec-root "$DOCKER_DIR/exec" \
      --pidfile "$DOCKER_DIR/dockerd.pid" \
      --bridge=none --iptables=false --ip-masq=false \
      --storage-driver=overlay2
  fi
  local deadline=$((SECONDS + 60))
  until DOCKER_HOST=unix://$DOCKER_SOCK /usr/bin/docker version >/dev/null 2>&1; do
    is_running dockerd || { tail -20 "$(logfile dockerd)" >&2; die "dockerd exited"; }
    [ $SECONDS -lt $deadline ] || die "dockerd did not answer on $DOCKER_SOCK in 60 s"
    sleep 0.3
  done
  local cli
  cli=$(docker_pick_cli) || die "no docker client works with buildx against the rig daemon"
  env_set DOCKER_HOST "unix://$DOCKER_SOCK"
  env_set DOCKER_CLI "$cli"
  log "docker: daemon $(rig_docker version --format '{{.Server.Version}}'), client $cli"
  docker_prune_test_images
}

# Test runs load images into the daemon under repositories of their own (RIG_TEST_REPOS, named per
# run), as they push them (registry.sh): 16 GB after two days of runs here, on a disk
# the kubelet watches. Those created more than RIG_REGISTRY_KEEP_HOURS ago go (the base images and
# the layers shared with them stay), then the dangling ones.
docker_prune_test_images() {
  local cutoff ref day time zone created i old=()
  cutoff=$(($(date +%s) - RIG_REGISTRY_KEEP_HOURS * 3600))
  while read -r ref day time zone _; do
    # A `<none>` tag is only a repo digest of another image (test runs push the base image into
    # their repositories): nothing to remove under that name.
    [[ "$ref" != *:'<none>' && "${ref%:*}" =~ (^|/)$RIG_TEST_REPOS$ ]] || continue
    created=$(date -d "$day $time $zone" +%s 2>/dev/null) || created=0
    [ "$created" -lt "$cutoff" ] && old+=("$ref")
  done < <(rig_docker images --format '{{.Repository}}:{{.Tag}} {{.CreatedAt}}')
  [ ${#old[@]} -gt 0 ] || return 0
  log "docker: removing ${#old[@]} test images older than $RIG_REGISTRY_KEEP_HOURS h"
  for ((i = 0; i < ${#old[@]}; i += 50)); do rig_docker rmi "${old[@]:i:50}" >/dev/null 2>&1 || true; done
  rig_docker image prune -f >/dev/null 2>&1 || true
}

docker_down() {
  # dockerd stops the containerd it started (its own session, pid file under exec-root); make
  # sure of it, by that pid only.
  local cpid=""
  [ -f "$DOCKER_DIR/exec/containerd/containerd.pid" ] && cpid=$(cat "$DOCKER_DIR/exec/containerd/containerd.pid")
  # dockerd stops running containers first (up to its 15 s shutdown timeout): give it 30 s
  # before stop_bg's KILL, so no container or containerd is left behind.
  if is_running dockerd; then
    local pid i; pid=$(cat "$(pidfile dockerd)")
    log "stopping dockerd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  stop_bg dockerd
  if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null &&
    grep -q "$DOCKER_DIR" "/proc/$cpid/cmdline" 2>/dev/null; then
    log "stopping leftover containerd (pid $cpid)"
    kill -TERM "$cpid" 2>/dev/null || true
  fi
  # dockerd leaves its default network namespace bind-mounted under exec-root: unmount it so the
  # state dir can be removed.
  if ! is_running dockerd && mountpoint -q "$DOCKER_DIR/exec/netns/default" 2>/dev/null; then
    umount "$DOCKER_DIR/exec/netns/default" 2>/dev/null || true
  fi
  rm -f "$DOCKER_SOCK"
}

docker_status() {
  is_running dockerd && DOCKER_HOST=unix://$DOCKER_SOCK /usr/bin/docker version >/dev/null 2>&1
}
