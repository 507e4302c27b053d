#!/bin/sh
# BuildKit's SBOM generator protocol
# (https://github.com/moby/buildkit/blob/master/docs/attestations/sbom-protocol.md): scan the
# root filesystem at $BUILDKIT_SCAN_SOURCE, and each one under $BUILDKIT_SCAN_SOURCE_EXTRAS when
# that is set (build stages or the context, by BUILDKIT_SBOM_SCAN_* build args), and write one
# in-toto statement with an SPDX predicate per filesystem to
# $BUILDKIT_SCAN_DESTINATION/<name>.spdx.json. BuildKit reads every file there as a statement of
# predicate type https://spdx.dev/Document; with no subject, it names the image as the subject.
set -eu
: "${BUILDKIT_SCAN_SOURCE:?BuildKit sets BUILDKIT_SCAN_SOURCE}"
: "${BUILDKIT_SCAN_DESTINATION:?BuildKit sets BUILDKIT_SCAN_DESTINATION}"
mkdir -p /tmp/scan

scan() { # scan ROOTFS NAME
  # The `image` catalogers: what is installed in a root filesystem (dpkg, Python's site-packages,
  # …), not the manifests (requirements.txt) that the `directory` set would also read. No file
  # metadata: the packages and the files they own stay, but hashing every owned file (most of a
  # serving image's 800 MB) more than doubled the scan.
  SYFT_FILE_METADATA_SELECTION=none syft scan "dir:$1" --quiet --source-name "$2" --override-default-catalogers image \
    --output "spdx-json=/tmp/scan/$2.json"
  {
    printf '{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[],"predicate":'
    cat "/tmp/scan/$2.json"
    printf '}\n'
  } >"$BUILDKIT_SCAN_DESTINATION/$2.spdx.json"
}

scan "$BUILDKIT_SCAN_SOURCE" "$(basename "$BUILDKIT_SCAN_SOURCE")"
if [ -n "${BUILDKIT_SCAN_SOURCE_EXTRAS:-}" ] && [ -d "$BUILDKIT_SCAN_SOURCE_EXTRAS" ]; then
  for extra in "$BUILDKIT_SCAN_SOURCE_EXTRAS"/*; do
    if [ -d "$extra" ]; then scan "$extra" "$(basename "$extra")"; fi
  done
fi
