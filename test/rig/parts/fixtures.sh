# Part "fixtures": the registry content every integration test starts from (wine-classifier v1/v2,
# alias, stages, a runs:/ model, awkward model names), written into each of the three MLflow
# servers by fixtures/mlflow_fixtures.py. Idempotent: the stores persist in $RIG_STATE, so a warm
# `up` only checks what is there. Needs the mlflow part.

_fixtures_stamp() { echo "$RIG_STATE/mlflow/fixtures.stamp"; }
_fixtures_want() { cat "$RIG_DIR/fixtures/mlflow_fixtures.py" "$RIG_DIR/parts/fixtures.sh" | sha256sum | cut -c1-16; }

# The fixtures are in place when the script that made them is unchanged and every server still
# resolves the alias (and the runs:/ run): then `up` skips Python altogether (warm: ~1 s). Generous
# timeouts: the first request to a freshly started MLflow initialises its stores (tens of seconds).
_fixtures_present() {
  local model=wine-classifier token issuer te
  [ "$(cat "$(_fixtures_stamp)" 2>/dev/null)" = "$(_fixtures_want)" ] || return 1
  [ -n "$(env_get FIXTURE_RUN_ID)" ] && [ -n "$(env_get FIXTURE_RUN_ID_OIDC)" ] || return 1
  curl -fsS -o /dev/null --max-time 60 "$(env_get MLFLOW_URI)/api/2.0/mlflow/registered-models/alias?name=$model&alias=champion" || return 1
  curl -fsS -o /dev/null --max-time 60 "$(env_get MLFLOW_URI)/api/2.0/mlflow/runs/get?run_id=$(env_get FIXTURE_RUN_ID)" || return 1
  curl -fsS -o /dev/null --max-time 60 -u "$(env_get MLFLOW_BASIC_ADMIN_USER):$(env_get MLFLOW_BASIC_ADMIN_PASSWORD)" \
    "$(env_get MLFLOW_BASIC_URI)/api/2.0/mlflow/registered-models/alias?name=$model&alias=champion" || return 1
  issuer=$(env_get OIDC_ISSUER)
  te=$(curl -fsS --max-time 60 "$issuer/.well-known/openid-configuration" | sed -n 's/.*"token_endpoint":"\([^"]*\)".*/\1/p')
  token=$(curl -fsS --max-time 60 -u "$(env_get OIDC_ADMIN_CLIENT_ID):$(env_get OIDC_ADMIN_CLIENT_SECRET)" \
    -d grant_type=client_credentials "$te" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || return 1
  curl -fsS -o /dev/null --max-time 60 -H "Authorization: Bearer $token" \
    "$(env_get MLFLOW_OIDC_URI)/api/2.0/mlflow/registered-models/alias?name=$model&alias=champion"
}

fixtures_up() { _mlflow_locked _fixtures_up; }

_fixtures_up() {
  local py facts line
  py=$(env_get MLFLOW_PYTHON)
  [ -n "$py" ] && [ -x "$py" ] || die "fixtures need the mlflow part: run 'rig.sh up mlflow' first"
  mlflow_status >/dev/null 2>&1 || die "fixtures need the mlflow servers running: run 'rig.sh up mlflow' first"
  if _fixtures_present; then log "fixtures already in place"; return 0; fi
  facts=$(MLFLOW_HTTP_REQUEST_MAX_RETRIES=2 "$py" "$RIG_DIR/fixtures/mlflow_fixtures.py" \
    --plain-uri "$(env_get MLFLOW_URI)" \
    --basic-uri "$(env_get MLFLOW_BASIC_URI)" \
    --basic-admin "$(env_get MLFLOW_BASIC_ADMIN_USER)" --basic-password "$(env_get MLFLOW_BASIC_ADMIN_PASSWORD)" \
    --basic-noperm-user "$(env_get MLFLOW_BASIC_NOPERM_USER)" \
    --oidc-uri "$(env_get MLFLOW_OIDC_URI)" --oidc-issuer "$(env_get OIDC_ISSUER)" \
    --oidc-admin-client "$(env_get OIDC_ADMIN_CLIENT_ID)" --oidc-admin-secret "$(env_get OIDC_ADMIN_CLIENT_SECRET)" \
    2> >(tee -a "$(logfile fixtures)" >&2)) || die "fixture script failed (log: $(logfile fixtures))"
  while IFS= read -r line; do
    case "$line" in FACT\ *=*) line=${line#FACT }; env_set "${line%%=*}" "${line#*=}" ;; esac
  done <<<"$facts"
  _fixtures_want >"$(_fixtures_stamp)"
}

fixtures_down() { :; } # nothing runs; the content lives in the MLflow stores

fixtures_status() {
  local uri
  uri=$(env_get MLFLOW_URI)
  [ -n "$uri" ] && [ -n "$(env_get FIXTURE_RUN_ID)" ] &&
    curl -fsS -o /dev/null --max-time 3 "$uri/api/2.0/mlflow/registered-models/alias?name=wine-classifier&alias=champion"
}
