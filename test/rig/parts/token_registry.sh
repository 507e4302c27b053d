# Part "token_registry": an OCI registry behind Bearer-token auth, the way GHCR, Docker Hub, ECR's
# token endpoint, GAR, ACR and Harbor work: Debian's docker-registry 2.8 with `auth: token`, and the
# distribution project's own token server (github.com/docker/distribution contrib/token-server,
# built from the Go module proxy) issuing JWTs signed with a key whose certificate the registry
# trusts. The token server authenticates htpasswd users and grants each only repositories under
# "<user>/" (and the catalog); tokens live 15 minutes (fixed upstream); refresh tokens
# (offline_token=true) live in its memory, so a restart forgets them.
# Key rotation for tests: `RIG_TOKEN_REGISTRY_KEY=rotated rig.sh up token_registry` restarts both
# servers on a second key pair (tokens signed with the first are refused); a plain `up` restores.

TOKEN_REGISTRY_DIR=$RIG_STATE/token-registry
TOKEN_REGISTRY_USER_NAME=rig-alice
TOKEN_REGISTRY_OTHER_USER_NAME=rig-bob
TOKEN_REGISTRY_SERVICE=rig-token-registry
TOKEN_REGISTRY_ISSUER=rig-token-server
# contrib/token-server has no go.mod: the +incompatible module, its imports resolved by tidy.
TOKEN_REGISTRY_GO_MODULES=("github.com/docker/distribution v2.8.3+incompatible")
TOKEN_REGISTRY_GO_COMMANDS=("token-server=github.com/docker/distribution/contrib/token-server")

token_registry_realm() { echo "http://127.0.0.1:$RIG_TOKEN_SERVER_PORT/token/"; }

# token_registry_password user : generated once per state dir, mode 600.
token_registry_password() {
  local f=$TOKEN_REGISTRY_DIR/password-$1
  [ -s "$f" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$f")
  cat "$f"
}

# token_registry_keypair name : an EC P-256 key (PEM "EC PRIVATE KEY", what libtrust's LoadKeyFile
# reads) and a self-signed certificate of it for the registry's rootcertbundle.
token_registry_keypair() {
  local key=$TOKEN_REGISTRY_DIR/key-$1.pem cert=$TOKEN_REGISTRY_DIR/cert-$1.pem
  if [ ! -s "$key" ] || [ ! -s "$cert" ]; then
    (umask 077; openssl ecparam -name prime256v1 -genkey -noout -out "$key") || die "openssl: cannot make $key"
    openssl req -new -x509 -key "$key" -out "$cert" -days 3650 -subj "/CN=$TOKEN_REGISTRY_ISSUER ($1)" 2>/dev/null ||
      die "openssl: cannot make $cert"
  fi
}

token_registry_config() { # token_registry_config keyname
  mkdir -p "$RIG_CACHE/registry/token"
  cat >"$TOKEN_REGISTRY_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $RIG_CACHE/registry/token
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:$RIG_REGISTRY_TOKEN_PORT
  secret: rig-token-not-secret
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
auth:
  token:
    realm: $(token_registry_realm)
    service: $TOKEN_REGISTRY_SERVICE
    issuer: $TOKEN_REGISTRY_ISSUER
    rootcertbundle: $TOKEN_REGISTRY_DIR/cert-$1.pem
EOF
}

# The challenge an anonymous /v2/ gets: 401 with a Bearer challenge naming our realm.
token_registry_challenged() {
  local h
  h=$(curl -sS -o /dev/null -D - --max-time 2 "http://127.0.0.1:$RIG_REGISTRY_TOKEN_PORT/v2/" 2>/dev/null) || return 1
  grep -q '^HTTP/[0-9.]* 401' <<<"$h" && grep -qi "^www-authenticate: Bearer realm=\"$(token_registry_realm)\"" <<<"$h"
}

token_registry_up() {
  apt_install docker-registry apache2-utils openssl
  go_group_build token_registry
  local bin keyname=${RIG_TOKEN_REGISTRY_KEY:-primary} u pw
  bin=$(go_group_bin_dir token_registry)/token-server
  mkdir -p "$TOKEN_REGISTRY_DIR"
  [[ $keyname =~ ^[a-z]+$ ]] || die "RIG_TOKEN_REGISTRY_KEY must be a lowercase word, not '$keyname'"
  token_registry_keypair "$keyname"

  # Two users, bcrypt (the only hash distribution's htpasswd reads); rewritten when a password changed.
  touch "$TOKEN_REGISTRY_DIR/htpasswd"
  for u in "$TOKEN_REGISTRY_USER_NAME" "$TOKEN_REGISTRY_OTHER_USER_NAME"; do
    pw=$(token_registry_password "$u")
    htpasswd -vb "$TOKEN_REGISTRY_DIR/htpasswd" "$u" "$pw" >/dev/null 2>&1 ||
      htpasswd -Bb "$TOKEN_REGISTRY_DIR/htpasswd" "$u" "$pw" 2>/dev/null || die "htpasswd failed for $u"
  done
  pw=$(token_registry_password "$TOKEN_REGISTRY_USER_NAME")

  # A docker config dir logged in to the token registry as the first user (DOCKER_CONFIG=<dir>).
  mkdir -p "$TOKEN_REGISTRY_DIR/docker-config"
  (umask 077; printf '{\n  "auths": {\n    "127.0.0.1:%s": { "auth": "%s" }\n  }\n}\n' \
    "$RIG_REGISTRY_TOKEN_PORT" "$(printf '%s:%s' "$TOKEN_REGISTRY_USER_NAME" "$pw" | base64 -w0)" \
    >"$TOKEN_REGISTRY_DIR/docker-config/config.json")

  # Another key pair asked for (or the binary rebuilt): both servers restart on it.
  if [ "$(cat "$TOKEN_REGISTRY_DIR/active-key" 2>/dev/null)" != "$keyname" ]; then
    stop_bg token-registry
    stop_bg token-server
  fi
  stop_if_stale token-server "$bin"
  token_registry_config "$keyname"
  start_bg token-server "$bin" -addr "127.0.0.1:$RIG_TOKEN_SERVER_PORT" -issuer "$TOKEN_REGISTRY_ISSUER" \
    -key "$TOKEN_REGISTRY_DIR/key-$keyname.pem" -passwd "$TOKEN_REGISTRY_DIR/htpasswd" -realm rig-token-server 9>&-
  start_bg token-registry docker-registry serve "$TOKEN_REGISTRY_DIR/registry.yml" 9>&-
  echo "$keyname" >"$TOKEN_REGISTRY_DIR/active-key"
  wait_port "$RIG_TOKEN_SERVER_PORT" 30 ||
    { tail -20 "$(logfile token-server)" >&2; die "token server not listening on :$RIG_TOKEN_SERVER_PORT"; }
  local deadline=$((SECONDS + 30))
  until token_registry_challenged; do
    [ $SECONDS -lt $deadline ] ||
      { tail -20 "$(logfile token-registry)" >&2; die "token registry on :$RIG_REGISTRY_TOKEN_PORT gives no Bearer challenge"; }
    sleep 0.3
  done

  env_set REGISTRY_TOKEN "127.0.0.1:$RIG_REGISTRY_TOKEN_PORT"
  env_set REGISTRY_TOKEN_REALM "$(token_registry_realm)"
  env_set REGISTRY_TOKEN_SERVICE "$TOKEN_REGISTRY_SERVICE"
  env_set REGISTRY_TOKEN_USER "$TOKEN_REGISTRY_USER_NAME"
  env_set REGISTRY_TOKEN_PASSWORD "$pw"
  env_set REGISTRY_TOKEN_OTHER_USER "$TOKEN_REGISTRY_OTHER_USER_NAME"
  env_set REGISTRY_TOKEN_OTHER_PASSWORD "$(token_registry_password "$TOKEN_REGISTRY_OTHER_USER_NAME")"
  env_set REGISTRY_TOKEN_KEY "$keyname"
  env_set REGISTRY_TOKEN_SERVER_LOG "$(logfile token-server)"
  env_set DOCKER_CONFIG_TOKEN "$TOKEN_REGISTRY_DIR/docker-config"
  log "token registry on :$RIG_REGISTRY_TOKEN_PORT, token server on :$RIG_TOKEN_SERVER_PORT (key $keyname)"
}

token_registry_down() {
  stop_bg token-registry
  stop_bg token-server
}

token_registry_status() {
  is_running token-server && is_running token-registry && token_registry_challenged
}
