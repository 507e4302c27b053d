# Part "kserve_base": the kserve runtime's serving base image
# 127.0.0.1:5001/kserve-base:<kserve>-py3.11, built FROM the same debootstrapped Debian as the
# MLServer base (parts/mlserver.sh) from the pins in test/rig/kserve-requirements.txt, and pushed
# to the open registry; its ref goes to rig.env as KSERVE_BASE_IMAGE. Also the venv that makes the
# serving fixture models (fixtures/serving_models.py) and checks predictions against pyfunc.
# Nothing is left running by this part: `down` has nothing to stop.

KSERVE_BASE_REQS=$RIG_DIR/kserve-requirements.txt
KSERVE_BASE_DOCKERFILE=$RIG_DIR/base-image/kserve.Dockerfile
SERVING_FIXTURES_REQS=$RIG_DIR/fixtures/serving-requirements.txt
SERVING_FIXTURES_VENV=$RIG_CACHE/venvs/serving-fixtures

kserve_base_pin() { requirements_pin "$KSERVE_BASE_REQS" "$1"; }
kserve_base_ref() {
  echo "127.0.0.1:$RIG_REGISTRY_PORT/kserve-base:$(kserve_base_pin kserve)-py$MLSERVER_IMAGE_PYTHON"
}
kserve_base_recipe() { image_recipe "$KSERVE_BASE_DOCKERFILE" "$KSERVE_BASE_REQS"; }

kserve_base_image() {
  local ref digest
  ref=$(kserve_base_ref)
  digest=$(serving_base_image kserve_base "$ref" "$(kserve_base_recipe)" "$KSERVE_BASE_DOCKERFILE" \
    "$KSERVE_BASE_REQS" kserve-base-build --build-arg "KSERVE_VERSION=$(kserve_base_pin kserve)" \
    --build-arg "MLFLOW_VERSION=$(kserve_base_pin mlflow-skinny)") || exit 1
  env_set KSERVE_BASE_IMAGE "$ref"
  env_set KSERVE_BASE_IMAGE_DIGEST "$digest"
}

# The serving fixtures' venv: mlflow-skinny, scikit-learn ($RIG_SKLEARN_VERSION, as the MLflow
# fixtures) and lightgbm; the models it saves pin these versions in their requirements.txt.
kserve_base_fixtures_venv() {
  local stamp=$SERVING_FIXTURES_VENV/.rig-stamp want
  want="$(sha256sum <"$SERVING_FIXTURES_REQS" | cut -c1-16) sklearn=$RIG_SKLEARN_VERSION"
  if [ -x "$SERVING_FIXTURES_VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  log "kserve_base: installing the serving-fixtures venv $SERVING_FIXTURES_VENV"
  [ -x "$SERVING_FIXTURES_VENV/bin/python" ] || "$RIG_PYTHON" -m venv "$SERVING_FIXTURES_VENV"
  "$SERVING_FIXTURES_VENV/bin/pip" install -q --disable-pip-version-check -r "$SERVING_FIXTURES_REQS" \
    "scikit-learn==$RIG_SKLEARN_VERSION" || die "pip install into $SERVING_FIXTURES_VENV failed"
  echo "$want" >"$stamp"
}

# The serving fixture models (fixtures/serving_models.py), remade when the script changes.
kserve_base_fixtures() {
  local dir=$RIG_STATE/serving-models want
  want=$(cat "$RIG_DIR/fixtures/serving_models.py" "$SERVING_FIXTURES_REQS" | sha256sum | cut -c1-16)
  if [ "$(cat "$dir/.rig-stamp" 2>/dev/null)" != "$want" ]; then
    rm -rf "$dir"
    log "kserve_base: saving the serving fixture models in $dir"
    "$SERVING_FIXTURES_VENV/bin/python" "$RIG_DIR/fixtures/serving_models.py" "$dir" >/dev/null 2>>"$(logfile serving-fixtures)" ||
      die "serving fixtures failed (log: $(logfile serving-fixtures))"
    echo "$want" >"$dir/.rig-stamp"
  fi
  env_set SERVING_MODELS_DIR "$dir"
}

kserve_base_up() {
  [ -f "$KSERVE_BASE_REQS" ] || die "missing $KSERVE_BASE_REQS"
  docker_status || die "kserve_base: the docker part must be up first (rig.sh up docker registry)"
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/" ||
    die "kserve_base: the open registry is not up (rig.sh up registry)"
  kserve_base_image
  kserve_base_fixtures_venv
  env_set SERVING_FIXTURES_PYTHON "$SERVING_FIXTURES_VENV/bin/python"
  kserve_base_fixtures
}

kserve_base_down() { :; } # nothing runs: the image and the venv stay cached

kserve_base_status() {
  [ -x "$SERVING_FIXTURES_VENV/bin/python" ] && [ -n "$(mlserver_registry_digest "$(kserve_base_ref)")" ]
}
