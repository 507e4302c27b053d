# Part "multiarch": building for linux/arm64 on this amd64 machine, as docker/setup-qemu-action
# does on a GitHub runner: Debian's qemu-user-static registered in binfmt_misc with the F
# (fix-binary) flag, so the kernel opens the emulator once at registration and BuildKit's RUN
# steps in their own mount namespaces still find it
# (https://docs.kernel.org/admin-guide/binfmt-misc.html). Then a multi-platform kserve base:
#   127.0.0.1:5001/kserve-base-multi:<kserve>-py3.11, an image index holding the kserve_base
#   part's amd64 manifest (the same digest) and an arm64 one built by BuildKit under QEMU from the
#   same Dockerfile and pins, FROM an arm64 bookworm debootstrapped here (cached tarball).
# Its ref and digest go to rig.env as KSERVE_BASE_IMAGE_MULTI(_DIGEST). Nothing is left running.

MULTIARCH_DIR=$RIG_CACHE/multiarch
MULTIARCH_BINFMT=/proc/sys/fs/binfmt_misc
# psutil 5.9.8 (the kserve pin) ships no aarch64 wheel and the base has no compiler: the arm64
# image takes 6.0.0, the first release with one. kserve uses psutil only for
# Process().cpu_affinity(), which 6.0.0 keeps.
MULTIARCH_ARM64_PINS=(psutil==6.0.0)

multiarch_ref() { echo "127.0.0.1:$RIG_REGISTRY_PORT/kserve-base-multi:$(kserve_base_pin kserve)-py$MLSERVER_IMAGE_PYTHON"; }
multiarch_debian_ref() { echo "127.0.0.1:$RIG_REGISTRY_PORT/rig/debian:bookworm-arm64"; }
multiarch_buildx() { rig_docker buildx --builder "$BUILDKIT_BUILDER_NAME" "$@"; }

# --- QEMU in binfmt_misc ------------------------------------------------------------------------
multiarch_binfmt_ok() {
  local h=$MULTIARCH_BINFMT/qemu-aarch64
  [ -f "$h" ] && grep -qx enabled "$h" && grep -qE '^flags: .*F' "$h" &&
    [ -x "$(awk '$1 == "interpreter" {print $2}' "$h")" ]
}

multiarch_binfmt() {
  [ -f "$MULTIARCH_BINFMT/register" ] || mount -t binfmt_misc binfmt_misc "$MULTIARCH_BINFMT" ||
    die "multiarch: cannot mount binfmt_misc on $MULTIARCH_BINFMT (needs root and a kernel with CONFIG_BINFMT_MISC)"
  apt_install qemu-user-static
  multiarch_binfmt_ok && return 0
  # Without binfmt-support nothing registers Debian's handler: write its line (flags OPF) ourselves,
  # replacing a registration without F.
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || die "multiarch: $conf missing from qemu-user-static"
  [ -f "$MULTIARCH_BINFMT/qemu-aarch64" ] && echo -1 >"$MULTIARCH_BINFMT/qemu-aarch64"
  grep -vE '^\s*(#|$)' "$conf" >"$MULTIARCH_BINFMT/register" ||
    die "multiarch: the kernel refused the qemu-aarch64 binfmt_misc registration"
  multiarch_binfmt_ok || die "multiarch: qemu-aarch64 is registered but not enabled with the F flag: $(tr '\n' ' ' <"$MULTIARCH_BINFMT/qemu-aarch64")"
  log "multiarch: registered qemu-aarch64 in binfmt_misc (flags $(awk '$1 == "flags:" {print $2}' "$MULTIARCH_BINFMT/qemu-aarch64"))"
}

# Every process running under the aarch64 emulator (the kernel shows the interpreter as its exe)
# gets nice 10: two cores are shared with everything else the rig runs.
multiarch_nice_emulated() {
  local interp e pid
  interp=$(readlink -f "$(awk '$1 == "interpreter" {print $2}' "$MULTIARCH_BINFMT/qemu-aarch64")")
  while sleep 2; do
    for e in /proc/[0-9]*/exe; do
      [ "$(readlink "$e" 2>/dev/null)" = "$interp" ] || continue
      pid=${e#/proc/}; pid=${pid%/exe}
      [ "$(awk '{print $19}' "/proc/$pid/stat" 2>/dev/null)" = 10 ] || renice -n 10 -p "$pid" >/dev/null 2>&1 || true
    done
  done
}

# --- arm64 Debian -------------------------------------------------------------------------------
multiarch_rootfs_tar() { # an arm64 bookworm minbase: debootstrap's second stage runs under QEMU
  local tar=$MULTIARCH_DIR/debian-bookworm-minbase-arm64.tar
  if [ ! -s "$tar" ]; then
    apt_install debootstrap
    mkdir -p "$MULTIARCH_DIR"
    local root mirror t0=$SECONDS; root=$(mktemp -d "$MULTIARCH_DIR/rootfs.XXXXXX"); mirror=$(mlserver_mirror)
    log "multiarch: debootstrap --arch=arm64 --variant=minbase bookworm from $mirror (log: $(logfile debootstrap-arm64))"
    { nice -n 10 debootstrap --arch=arm64 --foreign --variant=minbase bookworm "$root" "$mirror" &&
      nice -n 10 chroot "$root" /debootstrap/debootstrap --second-stage; } >"$(logfile debootstrap-arm64)" 2>&1 ||
      { tail -20 "$(logfile debootstrap-arm64)" >&2; rm -rf "$root"; die "multiarch: arm64 debootstrap failed"; }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* "$root"/tmp/*
    tar -C "$root" --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
      -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$root"
    log "multiarch: arm64 rootfs in $((SECONDS - t0)) s"
    echo "arm64 debootstrap (second stage under QEMU): $((SECONDS - t0)) s ($(date -u +%FT%TZ))" >>"$MULTIARCH_DIR/timings.txt"
  fi
  echo "$tar"
}

# The rootfs as an arm64 image in the registry (BuildKit only reads images from registries).
multiarch_debian_image() {
  local ref tar ctx want; ref=$(multiarch_debian_ref)
  tar=$(multiarch_rootfs_tar)
  want=$(stat -c '%s-%Y' "$tar")
  if [ "$(mlserver_registry_label "$ref" io.mlflow-k8s-deploy.rig.rootfs)" = "$want" ]; then return 0; fi
  ctx=$(mktemp -d)
  ln "$tar" "$ctx/rootfs.tar" 2>/dev/null || cp "$tar" "$ctx/rootfs.tar"
  printf 'FROM scratch\nADD rootfs.tar /\nLABEL io.mlflow-k8s-deploy.rig.rootfs="%s"\nCMD ["/bin/bash"]\n' "$want" >"$ctx/Dockerfile"
  log "multiarch: pushing $ref"
  multiarch_buildx build --progress plain --platform linux/arm64 --provenance=false --sbom=false --push \
    -t "$ref" "$ctx" >"$(logfile multiarch-debian)" 2>&1 ||
    { tail -20 "$(logfile multiarch-debian)" >&2; rm -rf "$ctx"; die "multiarch: pushing the arm64 Debian image failed"; }
  rm -rf "$ctx"
}

# --- the multi-platform kserve base --------------------------------------------------------------
# The arm64 image: kserve_base's Dockerfile and pins (but MULTIARCH_ARM64_PINS), FROM the arm64
# Debian given to the Dockerfile's `FROM local/debian:bookworm` as a named build context.
multiarch_arm64_base() {
  local ref=$1 recipe=$2 ctx p t0
  if [ "$(mlserver_registry_label "$ref" io.mlflow-k8s-deploy.rig.recipe)" = "$recipe" ]; then return 0; fi
  multiarch_debian_image
  t0=$SECONDS
  ctx=$(mktemp -d)
  cp "$KSERVE_BASE_DOCKERFILE" "$ctx/Dockerfile"
  mkdir -p "$ctx/extra-ca"
  cp /usr/local/share/ca-certificates/*.crt "$ctx/extra-ca/" 2>/dev/null || true
  grep -vE '^\s*(#|$)' "$KSERVE_BASE_REQS" >"$ctx/base-requirements.txt"
  for p in "${MULTIARCH_ARM64_PINS[@]}"; do
    sed -i "s/^${p%%==*}==.*/$p/I" "$ctx/base-requirements.txt"
  done
  log "multiarch: building $ref under QEMU (slow the first time; log: $(logfile multiarch-arm64-build))"
  # The RUN steps are buildkitd's children, not ours: renice the emulated processes as they appear.
  multiarch_nice_emulated & local nicer=$!
  multiarch_buildx build \
    --progress plain --platform linux/arm64 --provenance=false --sbom=false --network host --push \
    --build-context "local/debian:bookworm=docker-image://$(multiarch_debian_ref)" \
    --build-arg "KSERVE_VERSION=$(kserve_base_pin kserve)" --build-arg "MLFLOW_VERSION=$(kserve_base_pin mlflow-skinny)" \
    --build-arg "RECIPE=$recipe" -t "$ref" "$ctx" >"$(logfile multiarch-arm64-build)" 2>&1 ||
    { kill "$nicer"; tail -30 "$(logfile multiarch-arm64-build)" >&2; rm -rf "$ctx"; die "multiarch: the arm64 kserve base build failed"; }
  kill "$nicer"; rm -rf "$ctx"
  log "multiarch: arm64 kserve base built and pushed in $((SECONDS - t0)) s"
  echo "arm64 kserve base build under QEMU: $((SECONDS - t0)) s ($(date -u +%FT%TZ))" >>"$MULTIARCH_DIR/timings.txt"
}

# multiarch_platforms REF -> "os/arch" of each image in the index at REF (attestations left out)
multiarch_platforms() {
  local ref=$1 repo tag
  repo=${ref#*/}; tag=${repo##*:}; repo=${repo%:*}
  curl -fsS --max-time 5 "${MLSERVER_MANIFEST_ACCEPT[@]}" "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/$repo/manifests/$tag" 2>/dev/null |
    python3 -c '
import json, sys
for m in json.load(sys.stdin).get("manifests", []):
    p = m.get("platform", {})
    if p.get("os") != "unknown": print(p.get("os") + "/" + p.get("architecture"))' 2>/dev/null | sort
}

multiarch_index() {
  local ref arm64 amd64 recipe digest
  ref=$(multiarch_ref); arm64="$ref-arm64"
  amd64="$(kserve_base_ref)@$(mlserver_registry_digest "$(kserve_base_ref)")" || die "multiarch: no $(kserve_base_ref) in the registry (rig.sh up kserve_base)"
  recipe="$(kserve_base_recipe)-arm64-$(printf '%s ' "${MULTIARCH_ARM64_PINS[@]}" | sha256sum | cut -c1-8)"
  multiarch_arm64_base "$arm64" "$recipe"
  # The index is rebuilt when either platform's manifest changed.
  local want have
  want="$(mlserver_registry_digest "$(kserve_base_ref)") $(mlserver_registry_digest "$arm64")"
  have=$(cat "$MULTIARCH_DIR/index-sources" 2>/dev/null || true)
  if [ "$(multiarch_platforms "$ref" | tr '\n' ' ')" != "linux/amd64 linux/arm64 " ] || [ "$want" != "$have" ]; then
    log "multiarch: pushing the index $ref (amd64 $amd64, arm64 $arm64)"
    multiarch_buildx imagetools create -t "$ref" "$amd64" "$arm64@$(mlserver_registry_digest "$arm64")" \
      >"$(logfile multiarch-index)" 2>&1 || { cat "$(logfile multiarch-index)" >&2; die "multiarch: imagetools create $ref failed"; }
    echo "$want" >"$MULTIARCH_DIR/index-sources"
  fi
  [ "$(multiarch_platforms "$ref" | tr '\n' ' ')" = "linux/amd64 linux/arm64 " ] ||
    die "multiarch: $ref does not hold linux/amd64 and linux/arm64: $(multiarch_platforms "$ref" | tr '\n' ' ')"
  digest=$(mlserver_registry_digest "$ref") && [ -n "$digest" ] || die "multiarch: $ref not in the registry"
  env_set KSERVE_BASE_IMAGE_MULTI "$ref"
  env_set KSERVE_BASE_IMAGE_MULTI_DIGEST "$digest"
  log "multiarch: $ref ($digest): linux/amd64 + linux/arm64"
}

multiarch_up() {
  docker_status || die "multiarch: the docker part must be up first (rig.sh up docker registry buildkit kserve_base)"
  buildkit_status || die "multiarch: the buildkit part must be up first (rig.sh up buildkit)"
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/" ||
    die "multiarch: the open registry is not up (rig.sh up registry)"
  mkdir -p "$MULTIARCH_DIR"
  multiarch_binfmt
  multiarch_index
}

multiarch_down() { :; } # nothing runs; the binfmt registration stays, as setup-qemu-action's does

multiarch_status() {
  multiarch_binfmt_ok && [ "$(multiarch_platforms "$(multiarch_ref)" | tr '\n' ' ')" = "linux/amd64 linux/arm64 " ]
}
