# Part "reconciler": the rig's own small controller for Knative Services and KServe
# InferenceServices (test/rig/reconciler/). Needs the kube and docker parts; storageUri models
# also need the mlserver part (read from rig.env when such a model first appears).

reconciler_up() {
  [ -n "$(env_get KUBECONFIG_ADMIN)" ] || die "reconciler needs the kube part (no KUBECONFIG_ADMIN fact)"
  [ -n "$(env_get DOCKER_HOST)" ] || die "reconciler needs the docker part (no DOCKER_HOST fact)"
  mkdir -p "$RIG_STATE/reconciler"
  is_running reconciler && return 0
  local lf off i
  lf=$(logfile reconciler); off=$(stat -c %s "$lf" 2>/dev/null || echo 0)
  KUBECONFIG=$(env_get KUBECONFIG_ADMIN) RIG_STATE=$RIG_STATE \
    RIG_CONTAINER_PORT_MIN=$RIG_CONTAINER_PORT_MIN RIG_CONTAINER_PORT_MAX=$RIG_CONTAINER_PORT_MAX \
    start_bg reconciler "$NODE24" "$RIG_DIR/reconciler/main.ts"
  for i in $(seq 1 100); do
    tail -c +$((off + 1)) "$lf" 2>/dev/null | grep -q 'watching serving.knative.dev' && return 0
    is_running reconciler || die "reconciler exited: $(tail -5 "$(logfile reconciler)")"
    sleep 0.2
  done
  die "reconciler did not start watching in 20 s: $(tail -5 "$(logfile reconciler)")"
}
# Stops the controller only: its containers stay and are adopted by the next start (or go when
# the docker part goes down); MLServer processes it started on the host stop with it.
reconciler_down() {
  stop_bg reconciler
}
reconciler_status() {
  is_running reconciler
}
