# MLServer for the rig, in two forms from the same pins (test/rig/mlserver-requirements.txt):
#  - a host venv, which tests start directly;
#  - the serving base image 127.0.0.1:5001/mlserver-base:<mlserver>-py3.11, built here FROM a
#    debootstrapped Debian (local/debian:bookworm) and pushed to the open registry.
# Nothing is left running by this part: `down` has nothing to stop.

MLSERVER_REQS=$RIG_DIR/mlserver-requirements.txt
MLSERVER_VENV_DIR=$RIG_CACHE/venvs/mlserver
MLSERVER_IMAGE_DIR=$RIG_CACHE/base-image
MLSERVER_IMAGE_PYTHON=3.11 # Debian bookworm's python3
MLSERVER_MANIFEST_ACCEPT=(
  -H 'Accept: application/vnd.docker.distribution.manifest.v2+json'
  -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json'
  -H 'Accept: application/vnd.oci.image.manifest.v1+json'
  -H 'Accept: application/vnd.oci.image.index.v1+json'
)

mlserver_pin() { requirements_pin "$MLSERVER_REQS" "$1"; }
mlserver_base_ref() {
  echo "127.0.0.1:$RIG_REGISTRY_PORT/mlserver-base:$(mlserver_pin mlserver)-py$MLSERVER_IMAGE_PYTHON"
}
# What the image is made of: a change to the Dockerfile or the pins means a rebuild.
mlserver_recipe() { image_recipe "$RIG_DIR/base-image/Dockerfile" "$MLSERVER_REQS"; }

# --- host venv ------------------------------------------------------------------------------
mlserver_venv() {
  local stamp=$MLSERVER_VENV_DIR/.rig-stamp want
  want="$(sha256sum <"$MLSERVER_REQS" | cut -c1-16) sklearn=$RIG_SKLEARN_VERSION"
  if [ -x "$MLSERVER_VENV_DIR/bin/mlserver" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    return 0
  fi
  "$RIG_PYTHON" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] < (3, 13) else 1)' ||
    die "RIG_PYTHON=$RIG_PYTHON: MLServer needs Python >= 3.9 and < 3.13"
  log "mlserver: installing the host venv $MLSERVER_VENV_DIR"
  [ -x "$MLSERVER_VENV_DIR/bin/python" ] || "$RIG_PYTHON" -m venv "$MLSERVER_VENV_DIR"
  local reqs; reqs=$(mktemp)
  grep -viE '^scikit-learn==' "$MLSERVER_REQS" >"$reqs"
  echo "scikit-learn==$RIG_SKLEARN_VERSION" >>"$reqs"
  "$MLSERVER_VENV_DIR/bin/pip" install -q --disable-pip-version-check -r "$reqs" ||
    { rm -f "$reqs"; die "pip install into $MLSERVER_VENV_DIR failed"; }
  rm -f "$reqs"
  "$MLSERVER_VENV_DIR/bin/python" -c 'import mlserver, mlserver_mlflow, mlflow.pyfunc, sklearn' ||
    die "the MLServer venv does not import"
  echo "$want" >"$stamp"
}

# --- base image -------------------------------------------------------------------------------
mlserver_mirror() {
  local m
  m=$(grep -hoE '^URIs: *\S+' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
  [ -n "$m" ] || m=$(grep -hoE '^deb +\S+' /etc/apt/sources.list 2>/dev/null | head -1 | awk '{print $2}')
  echo "${m:-http://deb.debian.org/debian}"
}

mlserver_rootfs_tar() { # the debootstrapped bookworm (minbase), cached as a tarball
  local tar=$MLSERVER_IMAGE_DIR/debian-bookworm-minbase.tar
  if [ ! -s "$tar" ]; then
    apt_install debootstrap
    mkdir -p "$MLSERVER_IMAGE_DIR"
    local root mirror; root=$(mktemp -d "$MLSERVER_IMAGE_DIR/rootfs.XXXXXX"); mirror=$(mlserver_mirror)
    log "mlserver: debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$root" "$mirror" >"$(logfile debootstrap)" 2>&1 ||
      { tail -20 "$(logfile debootstrap)" >&2; rm -rf "$root"; die "debootstrap failed"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
      -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
  fi
  echo "$tar"
}

mlserver_registry_digest() { # mlserver_registry_digest ref -> digest on stdout, 1 when absent
  local ref=$1 repo tag hdrs
  repo=${ref#*/}; tag=${repo##*:}; repo=${repo%:*}
  hdrs=$(curl -fsS -I --max-time 5 "${MLSERVER_MANIFEST_ACCEPT[@]}" \
    "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/$repo/manifests/$tag" 2>/dev/null) || return 1
  printf '%s\n' "$hdrs" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}'
}

mlserver_registry_label() { # mlserver_registry_label ref label -> its value in the image config
  local ref=$1 label=$2 repo tag
  repo=${ref#*/}; tag=${repo##*:}; repo=${repo%:*}
  curl -fsS --max-time 5 "${MLSERVER_MANIFEST_ACCEPT[@]}" \
    "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/$repo/manifests/$tag" 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["config"]["digest"])' 2>/dev/null |
    { read -r cfg && curl -fsS --max-time 10 "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/$repo/blobs/$cfg"; } 2>/dev/null |
    python3 -c 'import json,sys; print((json.load(sys.stdin)["config"].get("Labels") or {}).get(sys.argv[1], ""))' "$label" 2>/dev/null
}

# local/debian:bookworm, which both serving bases (this part's and kserve_base's) build FROM.
# Under a lock: the two parts may ask for it at the same time.
mlserver_debian_image() {
  mkdir -p "$MLSERVER_IMAGE_DIR"
  (
    flock 9
    if ! rig_docker image inspect local/debian:bookworm >/dev/null 2>&1; then
      local tar; tar=$(mlserver_rootfs_tar)
      log "mlserver: docker import local/debian:bookworm"
      rig_docker import --change 'CMD ["/bin/bash"]' "$tar" local/debian:bookworm >/dev/null
    fi
  ) 9>"$MLSERVER_IMAGE_DIR/.debian.lock"
}

# serving_base_image WHO REF RECIPE DOCKERFILE REQUIREMENTS LOG [--build-arg ...]: builds and
# pushes a serving base FROM local/debian:bookworm unless REF in the registry carries RECIPE;
# prints its digest. Shared with parts/kserve_base.sh.
serving_base_image() {
  local who=$1 ref=$2 recipe=$3 dockerfile=$4 reqs=$5 logname=$6 digest ctx; shift 6
  if digest=$(mlserver_registry_digest "$ref") && [ -n "$digest" ] &&
    [ "$(mlserver_registry_label "$ref" io.mlflow-k8s-deploy.rig.recipe)" = "$recipe" ]; then
    log "$who: $ref already in the registry ($digest)"
  else
    mlserver_debian_image
    ctx=$(mktemp -d)
    cp "$dockerfile" "$ctx/Dockerfile"
    mkdir -p "$ctx/extra-ca"
    cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
    grep -vE '^\s*(#|$)' "$reqs" >"$ctx/base-requirements.txt"
    log "$who: building and pushing $ref (log: $(logfile "$logname"))"
    if ! rig_docker buildx build --progress plain --network host --push "$@" \
      --build-arg "RECIPE=$recipe" -t "$ref" "$ctx" >"$(logfile "$logname")" 2>&1; then
      tail -30 "$(logfile "$logname")" >&2; rm -rf "$ctx"; die "$who: base image build failed"
    fi
    rm -rf "$ctx"
    digest=$(mlserver_registry_digest "$ref") && [ -n "$digest" ] || die "$ref not in the registry after push"
    log "$who: pushed $ref ($digest)"
  fi
  echo "$digest"
}

mlserver_base_image() {
  local ref digest reqs
  ref=$(mlserver_base_ref); reqs=$(mktemp)
  # No model libraries in the base: a model's own requirements must be installed on top of it.
  grep -viE '^(scikit-learn|skops)==' "$MLSERVER_REQS" >"$reqs"
  digest=$(serving_base_image mlserver "$ref" "$(mlserver_recipe)" "$RIG_DIR/base-image/Dockerfile" "$reqs" \
    base-image-build --build-arg "MLSERVER_VERSION=$(mlserver_pin mlserver)" \
    --build-arg "MLFLOW_VERSION=$(mlserver_pin mlflow)") || { rm -f "$reqs"; exit 1; }
  rm -f "$reqs"
  env_set BASE_IMAGE "$ref"
  env_set BASE_IMAGE_DIGEST "$digest"
}

mlserver_up() {
  [ -f "$MLSERVER_REQS" ] || die "missing $MLSERVER_REQS"
  mlserver_venv
  env_set MLSERVER_VENV "$MLSERVER_VENV_DIR"
  env_set MLSERVER_BIN "$MLSERVER_VENV_DIR/bin/mlserver"
  docker_status || die "mlserver: the docker part must be up first (rig.sh up docker registry)"
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/" ||
    die "mlserver: the open registry is not up (rig.sh up registry)"
  mlserver_base_image
}

mlserver_down() { :; } # nothing runs: the venv and the image stay cached

mlserver_status() {
  [ -x "$MLSERVER_VENV_DIR/bin/mlserver" ] && [ -n "$(mlserver_registry_digest "$(mlserver_base_ref)")" ]
}
