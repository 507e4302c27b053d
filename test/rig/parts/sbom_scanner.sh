# Part "sbom_scanner": the SBOM generator image BuildKit runs for `--attest type=sbom`
# (https://github.com/moby/buildkit/blob/master/docs/attestations/sbom-protocol.md). BuildKit's
# default, docker/buildkit-syft-scanner, lives on Docker Hub, which the rig cannot reach: ours is
# syft (github.com/anchore/syft, built from the Go module proxy) plus a small entrypoint of our own,
# pushed to the open registry. Builds pick it with `--attest type=sbom,generator=<image>` (the
# action's `sbom` input set to the image); SBOM_GENERATOR_IMAGE names it.

: "${RIG_SYFT_VERSION:=v1.57.1}"
SBOM_SCANNER_GO_MODULES=("github.com/anchore/syft $RIG_SYFT_VERSION")
SBOM_SCANNER_GO_COMMANDS=("syft=github.com/anchore/syft/cmd/syft")
# syft --version prints this; without it the SBOM's creator says "[not provided]".
SBOM_SCANNER_GO_LDFLAGS="-X main.version=${RIG_SYFT_VERSION#v}"
SBOM_SCANNER_SRC=$RIG_DIR/sbom-scanner

# The tag carries the recipe (syft's version, the image files, busybox's package version): a warm
# up only asks the registry whether that tag exists.
sbom_scanner_ref() {
  local recipe
  recipe=$(cat "$SBOM_SCANNER_SRC/Dockerfile" "$SBOM_SCANNER_SRC/scan.sh" <(dpkg-query -W -f '${Version}' busybox-static) |
    sha256sum | cut -c1-12)
  echo "127.0.0.1:$RIG_REGISTRY_PORT/sbom-scanner:syft-${RIG_SYFT_VERSION#v}-$recipe"
}

sbom_scanner_in_registry() { # sbom_scanner_in_registry ref
  local repo=${1#*/}
  curl -fsS -o /dev/null -I --max-time 5 -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/${repo%:*}/manifests/${repo##*:}"
}

sbom_scanner_up() {
  docker_status || die "sbom_scanner: the docker part must be up first (rig.sh up docker registry)"
  curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:$RIG_REGISTRY_PORT/v2/" ||
    die "sbom_scanner: the open registry is not up (rig.sh up registry)"
  apt_install busybox-static
  local ref ctx
  ref=$(sbom_scanner_ref)
  if ! sbom_scanner_in_registry "$ref"; then
    go_group_build sbom_scanner
    ctx=$(mktemp -d)
    cp "$SBOM_SCANNER_SRC/Dockerfile" "$SBOM_SCANNER_SRC/scan.sh" "$ctx/"
    cp "$(go_group_bin_dir sbom_scanner)/syft" /bin/busybox "$ctx/"
    # --network host: the rig's dockerd has no bridge (the RUN needs no network at all).
    log "sbom_scanner: building and pushing $ref (log: $(logfile sbom-scanner-build))"
    if ! rig_docker buildx build --progress plain --network host --push --build-arg "RECIPE=${ref##*:}" -t "$ref" "$ctx" \
      >"$(logfile sbom-scanner-build)" 2>&1; then
      tail -30 "$(logfile sbom-scanner-build)" >&2; rm -rf "$ctx"; die "sbom_scanner: image build failed"
    fi
    rm -rf "$ctx"
    sbom_scanner_in_registry "$ref" || die "sbom_scanner: $ref not in the registry after push"
  fi
  env_set SBOM_GENERATOR_IMAGE "$ref"
  log "sbom_scanner: SBOM generator image $ref"
}

sbom_scanner_down() { :; } # nothing runs: the image stays in the registry

sbom_scanner_status() {
  [ -n "$(env_get SBOM_GENERATOR_IMAGE)" ] && sbom_scanner_in_registry "$(env_get SBOM_GENERATOR_IMAGE)"
}
