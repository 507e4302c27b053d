# Part "actions_cache": GitHub's Actions cache service as @actions/cache (v2 protocol) talks to it.
# The bytes go to a real Azure Blob server, Azurite (npm `azurite`, installed into the cache), over
# SAS URLs as on GitHub; the Twirp control plane in front of it is the rig's own small index
# (actions-cache/server.mjs), since GitHub's service does not run outside GitHub.
# Facts: ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2 (what a runner gives
# an action), ACTIONS_CACHE_AZURITE (the blob endpoint).

: "${RIG_AZURITE_VERSION:=3.37.0}"
: "${RIG_AZURITE_PORT:=19100}"        # Azurite's blob service, 127.0.0.1
: "${RIG_ACTIONS_CACHE_PORT:=19101}"  # the Twirp front, 127.0.0.1
AZURITE_PREFIX=$RIG_CACHE/npm/azurite-$RIG_AZURITE_VERSION
AZURITE_MAIN=$AZURITE_PREFIX/node_modules/azurite/dist/src/blob/main.js
ACTIONS_CACHE_DIR=$RIG_STATE/actions-cache

actions_cache_up() {
  if [ ! -f "$AZURITE_MAIN" ]; then
    log "actions_cache: installing azurite $RIG_AZURITE_VERSION into $AZURITE_PREFIX"
    mkdir -p "$AZURITE_PREFIX"
    PATH=$(dirname "$NODE24"):$PATH npm install --prefix "$AZURITE_PREFIX" --no-audit --no-fund --silent \
      "azurite@$RIG_AZURITE_VERSION" >>"$(logfile actions-cache-install)" 2>&1 ||
      die "installing azurite failed (log: $(logfile actions-cache-install))"
  fi
  mkdir -p "$ACTIONS_CACHE_DIR/blobs"
  local tokfile=$ACTIONS_CACHE_DIR/runtime-token
  [ -s "$tokfile" ] || (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$tokfile")
  # --skipApiVersionCheck: @actions/cache's @azure/storage-blob may speak a newer API version than
  # this Azurite release lists; the operations it uses (Put Block, Put Block List, Get Blob) are old.
  start_bg azurite "$NODE24" "$AZURITE_MAIN" --blobHost 127.0.0.1 --blobPort "$RIG_AZURITE_PORT" \
    --location "$ACTIONS_CACHE_DIR/blobs" --skipApiVersionCheck --loose 9>&-
  wait_port "$RIG_AZURITE_PORT" 60 || { tail -20 "$(logfile azurite)" >&2; die "azurite not listening on :$RIG_AZURITE_PORT"; }
  local blob="http://127.0.0.1:$RIG_AZURITE_PORT/devstoreaccount1"
  start_bg actions-cache "$NODE24" "$RIG_DIR/actions-cache/server.mjs" "$RIG_ACTIONS_CACHE_PORT" "$blob" "$(cat "$tokfile")" 9>&-
  wait_http "http://127.0.0.1:$RIG_ACTIONS_CACHE_PORT/healthz" 30 ||
    { tail -20 "$(logfile actions-cache)" >&2; die "the actions cache front is not answering on :$RIG_ACTIONS_CACHE_PORT"; }
  env_set ACTIONS_RESULTS_URL "http://127.0.0.1:$RIG_ACTIONS_CACHE_PORT/"
  env_set ACTIONS_RUNTIME_TOKEN "$(cat "$tokfile")"
  env_set ACTIONS_CACHE_SERVICE_V2 true
  env_set ACTIONS_CACHE_AZURITE "$blob"
}

actions_cache_down() {
  stop_bg actions-cache
  stop_bg azurite
}

actions_cache_status() {
  is_running azurite && is_running actions-cache &&
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$RIG_ACTIONS_CACHE_PORT/healthz"
}
