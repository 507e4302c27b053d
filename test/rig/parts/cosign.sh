# Part "cosign": the cosign CLI (github.com/sigstore/cosign/v2, built from the Go module proxy)
# that the action runs to sign and verify serving images; on GitHub, sigstore/cosign-installer
# puts the same command on PATH. Sigstore's public services (Fulcio, Rekor) are not reachable
# here, so the rig signs with generated keys and no transparency log. No server: up builds the
# binary once (cached) and records COSIGN_BIN.

: "${RIG_COSIGN_VERSION:=v2.6.5}"
COSIGN_GO_MODULES=("github.com/sigstore/cosign/v2 $RIG_COSIGN_VERSION")
COSIGN_GO_COMMANDS=("cosign=github.com/sigstore/cosign/v2/cmd/cosign")
COSIGN_BIN=$(go_group_bin_dir cosign)/cosign

cosign_up() {
  go_group_build cosign
  "$COSIGN_BIN" version >/dev/null 2>&1 || die "$COSIGN_BIN does not run (log: $(logfile cosign-build))"
  env_set COSIGN_BIN "$COSIGN_BIN"
}

cosign_down() { :; }

cosign_status() {
  [ -x "$COSIGN_BIN" ] && [ "$(env_get COSIGN_BIN)" = "$COSIGN_BIN" ]
}
