#!/usr/bin/env bash
# The local rig: `rig.sh up|down|status|env [part...]`.
# Each part lives in parts/<part>.sh and defines <part>_up, <part>_down and <part>_status
# (up installs what is missing, then starts; all three are idempotent).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Start order; `down` goes in reverse.
ALL_PARTS=(docker registry token_registry buildkit sbom_scanner cosign actions_cache kube node gateway knative mlflow mlserver kserve_base multiarch kserve fixtures)

for f in "$RIG_DIR"/parts/*.sh; do source "$f"; done

cmd=${1:-status}; shift || true
parts=("$@"); [ ${#parts[@]} -gt 0 ] || parts=("${ALL_PARTS[@]}")
available() { declare -F "${1}_up" >/dev/null; }

case "$cmd" in
  up)
    t0=$SECONDS
    # MLflow's three Python servers take most of a warm start (about a minute of imports on 2
    # cores) and nothing but the fixtures needs them: bring that part up in the background first.
    mlflow_job=""
    if [[ " ${parts[*]} " == *" mlflow "* ]] && available mlflow; then
      (s=$SECONDS; mlflow_up; log "mlflow up ($((SECONDS - s)) s, in the background)") &
      mlflow_job=$!
    fi
    for p in "${parts[@]}"; do
      [ "$p" = mlflow ] && [ -n "$mlflow_job" ] && continue
      if [ "$p" = fixtures ] && [ -n "$mlflow_job" ]; then
        wait "$mlflow_job" || die "mlflow part failed (logs: $RIG_STATE/logs)"
        mlflow_job=""
      fi
      available "$p" || { log "part $p not present, skipped"; continue; }
      s=$SECONDS; "${p}_up"; log "$p up ($((SECONDS - s)) s)"
    done
    if [ -n "$mlflow_job" ]; then wait "$mlflow_job" || die "mlflow part failed (logs: $RIG_STATE/logs)"; fi
    log "rig up in $((SECONDS - t0)) s; connection facts: $RIG_ENV_FILE"
    ;;
  down)
    for ((i = ${#parts[@]} - 1; i >= 0; i--)); do
      p=${parts[$i]}; available "$p" && "${p}_down"
    done
    ;;
  status)
    rc=0
    for p in "${parts[@]}"; do
      available "$p" || continue
      if "${p}_status"; then echo "$p: up"; else echo "$p: DOWN"; rc=1; fi
    done
    exit $rc
    ;;
  env)
    [ -f "$RIG_ENV_FILE" ] || die "no rig facts yet: run 'npm run rig:up'"
    # Shell-quoted, so `eval "$(rig.sh env)"` survives values with spaces (fixture model names).
    while IFS= read -r line; do
      [ -n "$line" ] && printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
    done <"$RIG_ENV_FILE"
    ;;
  *) die "usage: rig.sh up|down|status|env [part...]" ;;
esac
