# Part "fixtures": the registry content every integration test starts from (wine-classifier v1/v2,
# alias, stages, a runs:/ model, awkward model names), written into each of the three MLflow
# servers by fixtures/mlflow_fixtures.py. Idempotent: the stores persist in $RIG_STATE, so a warm
# `up` only checks what is there. Needs the mlflow part.

fixtures_up() {
  local py facts line
  py=$(env_get MLFLOW_PYTHON)
  [ -n "$py" ] && [ -x "$py" ] || die "fixtures need the mlflow part: run 'rig.sh up mlflow' first"
  mlflow_status >/dev/null 2>&1 || die "fixtures need the mlflow servers running: run 'rig.sh up mlflow' first"
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
}

fixtures_down() { :; } # nothing runs; the content lives in the MLflow stores

fixtures_status() {
  local uri
  uri=$(env_get MLFLOW_URI)
  [ -n "$uri" ] && [ -n "$(env_get FIXTURE_RUN_ID)" ] &&
    curl -fsS -o /dev/null --max-time 3 "$uri/api/2.0/mlflow/registered-models/alias?name=wine-classifier&alias=champion"
}
