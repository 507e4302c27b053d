# Part "mlflow": three real MLflow tracking servers and the identity providers behind the third.
#   plain       127.0.0.1:$RIG_MLFLOW_PORT        (no auth)
#   basic-auth  127.0.0.1:$RIG_MLFLOW_BASIC_PORT  (mlflow server --app-name basic-auth)
#   oidc-auth   127.0.0.1:$RIG_MLFLOW_OIDC_PORT   (mlflow-oidc-auth, trusts the rig IdP and the
#                                                  GitHub-style issuer)
#   IdP         127.0.0.1:$RIG_OIDC_PORT          (test/rig/oidc/provider.ts, npm oidc-provider)
#   GitHub-style ID-token service 127.0.0.1:$RIG_GHA_OIDC_PORT (same process)
# All use sqlite backends and proxied artifacts under $RIG_STATE/mlflow/<which>. Every credential
# below is a loopback-only test value.

MLFLOW_VENV=$RIG_CACHE/venvs/mlflow
MLFLOW_OIDC_VENV=$RIG_CACHE/venvs/mlflow-oidc
MLFLOW_DATA=$RIG_STATE/mlflow
# MLflow 3.17 starts a job runner and about seven Huey consumers per server, each importing MLflow
# (about 230 MB and seconds of CPU apiece); the rig uses no server jobs, so none are started.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false

MLFLOW_BASIC_ADMIN_USER=rig-admin
MLFLOW_BASIC_ADMIN_PASSWORD=rig-admin-password-5051
MLFLOW_BASIC_READER_USER=rig-reader
MLFLOW_BASIC_READER_PASSWORD=rig-reader-password-5051
MLFLOW_BASIC_NOPERM_USER=rig-noperm
MLFLOW_BASIC_NOPERM_PASSWORD=rig-noperm-password-5051

RIG_OIDC_ISSUER=http://127.0.0.1:$RIG_OIDC_PORT
RIG_GHA_ISSUER=http://127.0.0.1:$RIG_GHA_OIDC_PORT
# The resource (aud) of access tokens for the OIDC-protected MLflow.
RIG_OIDC_AUDIENCE_VALUE=http://127.0.0.1:$RIG_MLFLOW_OIDC_PORT
# IdP clients: the action's confidential client, the fixture script's admin client, a client with
# no permission on the fixture model, the federated (GitHub-token) client, and the browser-login
# client the plugin is configured with.
RIG_OIDC_CLIENT_ID_VALUE=mlflow-k8s-deploy
RIG_OIDC_CLIENT_SECRET_VALUE=rig-oidc-client-secret
RIG_OIDC_ADMIN_CLIENT_ID_VALUE=rig-admin
RIG_OIDC_ADMIN_CLIENT_SECRET_VALUE=rig-oidc-admin-secret
RIG_OIDC_NOPERM_CLIENT_ID_VALUE=rig-noperm
RIG_OIDC_NOPERM_CLIENT_SECRET_VALUE=rig-oidc-noperm-secret
RIG_OIDC_FEDERATED_CLIENT_ID_VALUE=github-federated
RIG_OIDC_UI_CLIENT_ID_VALUE=mlflow-ui
RIG_OIDC_UI_CLIENT_SECRET_VALUE=rig-oidc-ui-secret
RIG_GHA_REQUEST_TOKEN_VALUE=rig-actions-id-token-request-token
# What a GitHub token must carry as aud to be exchanged at the IdP (its issuer, as for Databricks
# and Keycloak style federation).
RIG_GHA_EXCHANGE_AUDIENCE_VALUE=$RIG_OIDC_ISSUER

# _mlflow_venv DIR REQUIREMENTS : (re)install only when the pins changed.
_mlflow_venv() {
  local dir=$1 req=$2 stamp want
  want=$( (cat "$req"; echo "scikit-learn==$RIG_SKLEARN_VERSION"; "$RIG_PYTHON" --version) | sha256sum | cut -c1-16)
  stamp=$dir/.rig-stamp
  if [ -x "$dir/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  log "installing $(basename "$dir") venv from $(basename "$req") (a few minutes the first time)"
  [ -x "$dir/bin/python" ] || "$RIG_PYTHON" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$req" "scikit-learn==$RIG_SKLEARN_VERSION" \
    || die "pip install for $dir failed"
  echo "$want" >"$stamp"
}

# _mlflow_server NAME WHICH PORT VENV [extra mlflow server args...] : start one tracking server
# with its data in $MLFLOW_DATA/WHICH.
_mlflow_server() {
  local name=$1 which=$2 port=$3 venv=$4; shift 4
  local dir=$MLFLOW_DATA/$which
  mkdir -p "$dir/artifacts"
  start_bg "$name" "$venv/bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 1 \
    --backend-store-uri "sqlite:///$dir/mlflow.db" \
    --artifacts-destination "$dir/artifacts" --serve-artifacts "$@" 9>&-
}

_mlflow_wait() { # _mlflow_wait NAME URL : up to 240 s, but give up as soon as the process died
  local i
  for i in $(seq 1 48); do
    wait_http "$2" 5 && return 0
    is_running "$1" || break
  done
  tail -n 30 "$(logfile "$1")" >&2
  die "$1 did not come up at $2 (log: $(logfile "$1"))"
}

# Users of the basic-auth server beyond the admin (idempotent: an existing user is left alone).
_mlflow_basic_users() {
  local base=http://127.0.0.1:$RIG_MLFLOW_BASIC_PORT u p code
  for pair in "$MLFLOW_BASIC_READER_USER:$MLFLOW_BASIC_READER_PASSWORD" "$MLFLOW_BASIC_NOPERM_USER:$MLFLOW_BASIC_NOPERM_PASSWORD"; do
    u=${pair%%:*}; p=${pair#*:}
    code=$(curl -s -o /dev/null -w '%{http_code}' -u "$MLFLOW_BASIC_ADMIN_USER:$MLFLOW_BASIC_ADMIN_PASSWORD" \
      "$base/api/2.0/mlflow/users/get?username=$u")
    [ "$code" = 200 ] && continue
    curl -fsS -o /dev/null -u "$MLFLOW_BASIC_ADMIN_USER:$MLFLOW_BASIC_ADMIN_PASSWORD" -H 'Content-Type: application/json' \
      -d "{\"username\":\"$u\",\"password\":\"$p\"}" "$base/api/2.0/mlflow/users/create" || die "could not create basic-auth user $u"
    log "basic-auth user $u created"
  done
}

# What the running servers were started from: when it changes, `up` restarts them.
_mlflow_config_hash() {
  (cat "$RIG_DIR/parts/mlflow.sh" "$RIG_DIR/oidc/provider.ts" "$RIG_DIR/oidc/rig_group_detection.py" \
    "$RIG_DIR/mlflow-requirements.txt" "$RIG_DIR/mlflow-oidc-requirements.txt"
  echo "$RIG_MLFLOW_PORT $RIG_MLFLOW_BASIC_PORT $RIG_MLFLOW_OIDC_PORT $RIG_OIDC_PORT $RIG_GHA_OIDC_PORT $RIG_SKLEARN_VERSION") |
    sha256sum | cut -c1-16
}

# _mlflow_locked FUNC : run FUNC holding the part's lock, so two `rig.sh up` at once (several
# developers' test runs share one rig) do not start servers or write fixtures twice.
# The lock is on fd 9, which every server is started without (`9>&-`): a server that inherited
# it would hold the lock for as long as it runs.
_mlflow_locked() {
  local rc=0
  mkdir -p "$MLFLOW_DATA"
  exec 9>"$MLFLOW_DATA/.lock"
  flock -w 1200 9 || die "timed out waiting for $MLFLOW_DATA/.lock"
  "$@" || rc=$?
  exec 9>&-
  return $rc
}

mlflow_up() { _mlflow_locked _mlflow_up; }

_mlflow_up() {
  local config
  command -v curl >/dev/null || apt_install curl
  [ -x "$NODE24" ] || die "Node 24 missing at $NODE24: run npm ci"
  config=$(_mlflow_config_hash)
  if [ "$(cat "$MLFLOW_DATA/config.stamp" 2>/dev/null)" != "$config" ]; then
    mlflow_down # servers started from another configuration (stops only what is running)
  fi
  _mlflow_venv "$MLFLOW_VENV" "$RIG_DIR/mlflow-requirements.txt"
  _mlflow_venv "$MLFLOW_OIDC_VENV" "$RIG_DIR/mlflow-oidc-requirements.txt"
  mkdir -p "$MLFLOW_DATA/basic" "$MLFLOW_DATA/oidc" "$MLFLOW_DATA/idp"

  # 1. the IdP and the GitHub-style ID-token service
  RIG_OIDC_PORT=$RIG_OIDC_PORT RIG_GHA_OIDC_PORT=$RIG_GHA_OIDC_PORT RIG_OIDC_STATE_DIR=$MLFLOW_DATA/idp \
    RIG_OIDC_AUDIENCE=$RIG_OIDC_AUDIENCE_VALUE RIG_GHA_REQUEST_TOKEN=$RIG_GHA_REQUEST_TOKEN_VALUE \
    RIG_GHA_EXCHANGE_AUDIENCES=$RIG_GHA_EXCHANGE_AUDIENCE_VALUE \
    RIG_OIDC_CLIENT_ID=$RIG_OIDC_CLIENT_ID_VALUE RIG_OIDC_CLIENT_SECRET=$RIG_OIDC_CLIENT_SECRET_VALUE \
    RIG_OIDC_ADMIN_CLIENT_ID=$RIG_OIDC_ADMIN_CLIENT_ID_VALUE RIG_OIDC_ADMIN_CLIENT_SECRET=$RIG_OIDC_ADMIN_CLIENT_SECRET_VALUE \
    RIG_OIDC_NOPERM_CLIENT_ID=$RIG_OIDC_NOPERM_CLIENT_ID_VALUE RIG_OIDC_NOPERM_CLIENT_SECRET=$RIG_OIDC_NOPERM_CLIENT_SECRET_VALUE \
    RIG_OIDC_FEDERATED_CLIENT_ID=$RIG_OIDC_FEDERATED_CLIENT_ID_VALUE \
    RIG_OIDC_UI_CLIENT_ID=$RIG_OIDC_UI_CLIENT_ID_VALUE RIG_OIDC_UI_CLIENT_SECRET=$RIG_OIDC_UI_CLIENT_SECRET_VALUE \
    RIG_OIDC_UI_REDIRECT_URI=http://127.0.0.1:$RIG_MLFLOW_OIDC_PORT/callback \
    start_bg oidc-idp "$NODE24" "$RIG_DIR/oidc/provider.ts" 9>&-

  # 2. plain and basic-auth MLflow (started now, waited for below: they boot in parallel)
  _mlflow_server mlflow plain "$RIG_MLFLOW_PORT" "$MLFLOW_VENV"
  cat >"$MLFLOW_DATA/basic/basic_auth.ini" <<EOF
[mlflow]
default_permission = READ
database_uri = sqlite:///$MLFLOW_DATA/basic/basic_auth.db
admin_username = $MLFLOW_BASIC_ADMIN_USER
admin_password = $MLFLOW_BASIC_ADMIN_PASSWORD
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
EOF
  MLFLOW_AUTH_CONFIG_PATH=$MLFLOW_DATA/basic/basic_auth.ini MLFLOW_FLASK_SERVER_SECRET_KEY=rig-basic-auth-secret \
    _mlflow_server mlflow-basic basic "$RIG_MLFLOW_BASIC_PORT" "$MLFLOW_VENV" --app-name basic-auth

  # 3. MLflow behind OIDC: needs the IdP's discovery document at start.
  wait_http "$RIG_OIDC_ISSUER/.well-known/openid-configuration" 60 \
    || { tail -n 30 "$(logfile oidc-idp)" >&2; die "IdP did not come up"; }
  wait_http "$RIG_GHA_ISSUER/.well-known/openid-configuration" 30 || die "GitHub-style issuer did not come up"
  _mlflow_oidc_start

  _mlflow_wait mlflow "http://127.0.0.1:$RIG_MLFLOW_PORT/health"
  _mlflow_wait mlflow-basic "http://127.0.0.1:$RIG_MLFLOW_BASIC_PORT/health"
  _mlflow_wait mlflow-oidc "http://127.0.0.1:$RIG_MLFLOW_OIDC_PORT/health"
  _mlflow_basic_users
  echo "$config" >"$MLFLOW_DATA/config.stamp"

  env_set MLFLOW_VENV "$MLFLOW_VENV"
  env_set MLFLOW_PYTHON "$MLFLOW_VENV/bin/python"
  env_set MLFLOW_URI "http://127.0.0.1:$RIG_MLFLOW_PORT"
  # Where the plain server keeps proxied artifacts: KServe storageUri tests map mlflow-artifacts:/ onto it.
  env_set MLFLOW_ARTIFACTS_DESTINATION "$MLFLOW_DATA/plain/artifacts"
  env_set MLFLOW_BASIC_URI "http://127.0.0.1:$RIG_MLFLOW_BASIC_PORT"
  env_set MLFLOW_BASIC_ADMIN_USER "$MLFLOW_BASIC_ADMIN_USER"
  env_set MLFLOW_BASIC_ADMIN_PASSWORD "$MLFLOW_BASIC_ADMIN_PASSWORD"
  env_set MLFLOW_BASIC_READER_USER "$MLFLOW_BASIC_READER_USER"
  env_set MLFLOW_BASIC_READER_PASSWORD "$MLFLOW_BASIC_READER_PASSWORD"
  env_set MLFLOW_BASIC_NOPERM_USER "$MLFLOW_BASIC_NOPERM_USER"
  env_set MLFLOW_BASIC_NOPERM_PASSWORD "$MLFLOW_BASIC_NOPERM_PASSWORD"
  env_set MLFLOW_OIDC_URI "http://127.0.0.1:$RIG_MLFLOW_OIDC_PORT"
  env_set OIDC_ISSUER "$RIG_OIDC_ISSUER"
  env_set OIDC_AUDIENCE "$RIG_OIDC_AUDIENCE_VALUE"
  env_set OIDC_CLIENT_ID "$RIG_OIDC_CLIENT_ID_VALUE"
  env_set OIDC_CLIENT_SECRET "$RIG_OIDC_CLIENT_SECRET_VALUE"
  env_set OIDC_CLIENT_EMAIL mlflow-k8s-deploy@rig.example
  env_set OIDC_ADMIN_CLIENT_ID "$RIG_OIDC_ADMIN_CLIENT_ID_VALUE"
  env_set OIDC_ADMIN_CLIENT_SECRET "$RIG_OIDC_ADMIN_CLIENT_SECRET_VALUE"
  env_set OIDC_NOPERM_CLIENT_ID "$RIG_OIDC_NOPERM_CLIENT_ID_VALUE"
  env_set OIDC_NOPERM_CLIENT_SECRET "$RIG_OIDC_NOPERM_CLIENT_SECRET_VALUE"
  env_set OIDC_FEDERATED_CLIENT_ID "$RIG_OIDC_FEDERATED_CLIENT_ID_VALUE"
  env_set OIDC_GITHUB_EMAIL github-actions@acme.example
  env_set GHA_ID_TOKEN_REQUEST_URL "$RIG_GHA_ISSUER/token?api-version=2.0"
  env_set GHA_ID_TOKEN_REQUEST_TOKEN "$RIG_GHA_REQUEST_TOKEN_VALUE"
  env_set GHA_OIDC_ISSUER "$RIG_GHA_ISSUER"
  env_set GHA_EXCHANGE_AUDIENCE "$RIG_GHA_EXCHANGE_AUDIENCE_VALUE"
  env_set GHA_REPOSITORY acme/wine
  env_set GHA_SUBJECT repo:acme/wine:ref:refs/heads/main
}

_mlflow_oidc_start() {
  local dir=$MLFLOW_DATA/oidc providers
  mkdir -p "$dir"
  # Two token issuers (AUTH_PROVIDERS; the token's iss picks one):
  # * "default", the rig IdP: its access tokens carry email and groups (the interactive-login
  #   client and its secret come from the flat OIDC_CLIENT_ID / OIDC_CLIENT_SECRET);
  # * "github", the GitHub-style issuer, token-only: a raw Actions ID token requested with
  #   audience = this MLflow is accepted as a bearer. Its username comes from the `repository`
  #   claim (GitHub tokens have no email) and its group from rig_group_detection.py.
  providers=$(printf '[{"id":"default","type":"oidc","issuer":"%s","audience":"%s","discovery_url":"%s","client_id":"%s"},{"id":"github","type":"oidc","interactive":false,"display_name":"GitHub Actions","issuer":"%s","audience":"%s","discovery_url":"%s","admin_source":"none"}]' \
    "$RIG_OIDC_ISSUER" "$RIG_OIDC_AUDIENCE_VALUE" "$RIG_OIDC_ISSUER/.well-known/openid-configuration" "$RIG_OIDC_UI_CLIENT_ID_VALUE" \
    "$RIG_GHA_ISSUER" "$RIG_OIDC_AUDIENCE_VALUE" "$RIG_GHA_ISSUER/.well-known/openid-configuration")
  AUTH_PROVIDERS=$providers \
    OIDC_DISCOVERY_URL=$RIG_OIDC_ISSUER/.well-known/openid-configuration \
    OIDC_ISSUER=$RIG_OIDC_ISSUER OIDC_AUDIENCE=$RIG_OIDC_AUDIENCE_VALUE \
    OIDC_CLIENT_ID=$RIG_OIDC_UI_CLIENT_ID_VALUE OIDC_CLIENT_SECRET=$RIG_OIDC_UI_CLIENT_SECRET_VALUE \
    OIDC_REDIRECT_URI=http://127.0.0.1:$RIG_MLFLOW_OIDC_PORT/callback \
    SECRET_KEY=rig-oidc-auth-secret-key OIDC_USERS_DB_URI=sqlite:///$dir/oidc-users.db \
    OIDC_PROVISION_ON_BEARER_AUTH=true DEFAULT_MLFLOW_PERMISSION=READ \
    OIDC_USERNAME_FIELD=email,preferred_username,repository \
    OIDC_GROUP_NAME=mlflow-users OIDC_ADMIN_GROUP_NAME=mlflow-admins OIDC_TRUST_BEARER_GROUP_CLAIMS=true \
    OIDC_GROUP_DETECTION_PLUGIN=rig_group_detection PYTHONPATH=$RIG_DIR/oidc PYTHONDONTWRITEBYTECODE=1 \
    RIG_GHA_ISSUER=$RIG_GHA_ISSUER \
    _mlflow_server mlflow-oidc oidc "$RIG_MLFLOW_OIDC_PORT" "$MLFLOW_OIDC_VENV" --app-name oidc-auth
}

mlflow_down() {
  stop_bg mlflow-oidc
  stop_bg mlflow-basic
  stop_bg mlflow
  stop_bg oidc-idp
}

mlflow_status() {
  local ok=0 n
  for n in oidc-idp mlflow mlflow-basic mlflow-oidc; do is_running "$n" || { echo "  $n: not running" >&2; ok=1; }; done
  [ $ok = 0 ] || return 1
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_MLFLOW_PORT/health" &&
    curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_MLFLOW_BASIC_PORT/health" &&
    curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_MLFLOW_OIDC_PORT/health" &&
    curl -fsS -o /dev/null --max-time 3 "$RIG_OIDC_ISSUER/.well-known/openid-configuration" &&
    curl -fsS -o /dev/null --max-time 3 "$RIG_GHA_ISSUER/.well-known/openid-configuration"
}
