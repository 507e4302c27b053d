# Two OCI registries (Debian docker-registry 2.8): an open one and one behind htpasswd (bcrypt)
# basic auth. Storage lives in the cache, so the pushed serving base image survives a `down`.

REGISTRY_DIR=$RIG_STATE/registry
REGISTRY_AUTH_USER_NAME=rig-pusher

registry_config() { # registry_config name port [htpasswd-file]
  local name=$1 port=$2 htpasswd=${3:-}
  mkdir -p "$RIG_CACHE/registry/$name"
  {
    printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n'
    printf 'storage:\n  filesystem:\n    rootdirectory: %s\n' "$RIG_CACHE/registry/$name"
    printf '  delete:\n    enabled: true\n  cache:\n    blobdescriptor: inmemory\n'
    printf 'http:\n  addr: 127.0.0.1:%s\n  secret: rig-%s-not-secret\n' "$port" "$name"
    printf '  headers:\n    X-Content-Type-Options: [nosniff]\n'
    printf 'health:\n  storagedriver:\n    enabled: false\n'
    if [ -n "$htpasswd" ]; then
      printf 'auth:\n  htpasswd:\n    realm: rig-registry\n    path: %s\n' "$htpasswd"
    fi
  } >"$REGISTRY_DIR/$name.yml"
}

# Test runs push to repositories of their own (RIG_TEST_REPOS: it-…, e2e-…, signing-…, bench-…):
# without pruning they pile up in the cache (450 repositories and 11 GB after a day of runs here).
# Before a server starts, those older than RIG_REGISTRY_KEEP_HOURS go, and the registry's garbage
# collector frees the blobs no remaining manifest refers to. Only while the server is stopped: it
# keeps blob descriptors in memory. No --delete-untagged: distribution 2.8 would then also delete
# the images of a tagged index (distribution#3004, #3178; the multi-platform base's are untagged).
: "${RIG_REGISTRY_KEEP_HOURS:=1}"
# The name of a test run's repository (its last path segment), as an extended regex.
RIG_TEST_REPOS='(it|e2e|signing|bench)-[^/]*'
registry_prune() { # registry_prune name
  local name=$1 repos n
  repos=$RIG_CACHE/registry/$name/docker/registry/v2/repositories
  [ -d "$repos" ] && ! is_running "registry-$name" || return 0
  n=$(find "$repos" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex ".*/$RIG_TEST_REPOS" \
    -mmin "+$((RIG_REGISTRY_KEEP_HOURS * 60))" -print -exec rm -rf {} + | wc -l)
  [ "$n" -gt 0 ] || return 0
  log "registry $name: removing $n test repositories older than $RIG_REGISTRY_KEEP_HOURS h, then garbage-collect"
  docker-registry garbage-collect "$REGISTRY_DIR/$name.yml" >>"$(logfile "registry-$name-gc")" 2>&1 ||
    log "registry $name: garbage-collect failed (see $(logfile "registry-$name-gc"))"
}

registry_up() {
  apt_install docker-registry apache2-utils
  mkdir -p "$REGISTRY_DIR"
  # Credentials: generated once per state dir.
  local pwfile=$REGISTRY_DIR/auth-password pw
  [ -s "$pwfile" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pwfile")
  pw=$(cat "$pwfile")
  if [ ! -s "$REGISTRY_DIR/htpasswd" ] ||
    ! htpasswd -vb "$REGISTRY_DIR/htpasswd" "$REGISTRY_AUTH_USER_NAME" "$pw" >/dev/null 2>&1; then
    htpasswd -Bbc "$REGISTRY_DIR/htpasswd" "$REGISTRY_AUTH_USER_NAME" "$pw" 2>/dev/null
  fi
  # A docker config dir that logs the client in to the auth registry (DOCKER_CONFIG=<dir>).
  mkdir -p "$REGISTRY_DIR/docker-config-auth"
  printf '{\n  "auths": {\n    "127.0.0.1:%s": { "auth": "%s" }\n  }\n}\n' \
    "$RIG_REGISTRY_AUTH_PORT" "$(printf '%s:%s' "$REGISTRY_AUTH_USER_NAME" "$pw" | base64 -w0)" \
    >"$REGISTRY_DIR/docker-config-auth/config.json"

  registry_config open "$RIG_REGISTRY_PORT"
  registry_config auth "$RIG_REGISTRY_AUTH_PORT" "$REGISTRY_DIR/htpasswd"
  registry_prune open
  registry_prune auth
  start_bg registry-open docker-registry serve "$REGISTRY_DIR/open.yml"
  start_bg registry-auth docker-registry serve "$REGISTRY_DIR/auth.yml"
  wait_http "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/" 30 ||
    { tail -20 "$(logfile registry-open)" >&2; die "open registry not answering on :$RIG_REGISTRY_PORT"; }
  wait_http "http://127.0.0.1:$RIG_REGISTRY_AUTH_PORT/v2/" 30 -u "$REGISTRY_AUTH_USER_NAME:$pw" ||
    { tail -20 "$(logfile registry-auth)" >&2; die "auth registry not answering on :$RIG_REGISTRY_AUTH_PORT"; }

  env_set REGISTRY "127.0.0.1:$RIG_REGISTRY_PORT"
  env_set REGISTRY_AUTH "127.0.0.1:$RIG_REGISTRY_AUTH_PORT"
  env_set REGISTRY_AUTH_USER "$REGISTRY_AUTH_USER_NAME"
  env_set REGISTRY_AUTH_PASSWORD "$pw"
  env_set DOCKER_CONFIG_AUTH "$REGISTRY_DIR/docker-config-auth"
}

registry_down() {
  stop_bg registry-auth
  stop_bg registry-open
}

registry_status() {
  is_running registry-open && is_running registry-auth &&
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/" &&
    [ "$(curl -sS -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$RIG_REGISTRY_AUTH_PORT/v2/")" = 401 ]
}
