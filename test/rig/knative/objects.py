"""The cluster objects of the rig's Knative Serving, from the modules' own config/ directories.

Usage: objects.py OUT_DIR  (parameters as environment variables, see PARAMS)

Writes OUT_DIR/crds/NN-name.json (CustomResourceDefinitions) and OUT_DIR/objects/NN-name.json
(everything else, in apply order), each file one object plus a first line `# <API path>`.
What a user's install would run as Deployments runs on the rig's host as processes, so the
Services that name them have no selector: their Endpoints are written here, on the node's
bridge address (endpoints may not be loopback).
"""
import glob
import json
import os
import sys

import yaml

PARAMS = {
    "SERVING_DIR": "knative.dev/serving module directory",
    "NETWORKING_DIR": "knative.dev/networking module directory",
    "CACHING_DIR": "knative.dev/caching module directory",
    "GATEWAY_API_DIR": "knative.dev/net-gateway-api module directory",
    "NODE_IP": "the node's bridge address, where the host processes listen",
    "DOMAIN": "the domain of status URLs",
    "QUEUE_IMAGE": "queue-proxy image (by digest)",
    "SKIP_TAG_REGISTRIES": "registries-skipping-tag-resolving",
    "GATEWAY_EXTERNAL": "namespace/name of the external Gateway",
    "GATEWAY_EXTERNAL_SERVICE": "namespace/name of its Service",
    "GATEWAY_LOCAL": "namespace/name of the cluster-local Gateway",
    "GATEWAY_LOCAL_SERVICE": "namespace/name of its Service",
    "GATEWAY_CLASS": "the GatewayClass",
    "PORTS": "JSON: host ports of the processes (webhook, gateway_webhook, activator_http, ...)",
}
P = {k: os.environ[k] for k in PARAMS}
PORTS = json.loads(P["PORTS"])
NS = "knative-serving"

PLURALS = {
    "Namespace": "namespaces", "ConfigMap": "configmaps", "Secret": "secrets",
    "Service": "services", "Endpoints": "endpoints",
    "MutatingWebhookConfiguration": "mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "validatingwebhookconfigurations",
    "CustomResourceDefinition": "customresourcedefinitions",
}


def api_path(obj):
    group_version = obj["apiVersion"]
    base = "/api/v1" if group_version == "v1" else "/apis/" + group_version
    meta = obj["metadata"]
    ns = "/namespaces/%s" % meta["namespace"] if meta.get("namespace") else ""
    return "%s%s/%s/%s" % (base, ns, PLURALS[obj["kind"]], meta["name"])


def docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def configmap(path, data):
    """A module ConfigMap as a user configures it: its _example dropped, the given keys set."""
    (cm,) = docs(path)
    kept = {k: v for k, v in (cm.get("data") or {}).items() if k != "_example"}
    kept.update(data)
    cm["data"] = kept
    return cm


def gateway(ref, service):
    ns, name = ref.split("/")
    sns, sname = service.split("/")
    return [{"class": P["GATEWAY_CLASS"], "gateway": "%s/%s" % (ns, name),
             "service": "%s/%s" % (sns, sname), "supported-features": ["HTTPRouteRequestTimeout"]}]


def host_service(name, ports, labels=None):
    """A Service without selector and its Endpoints: NODE_IP:<host port> for each port."""
    svc = {"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
           "spec": {"ports": [{"name": n, "port": p, "targetPort": t} for n, p, t in ports]}}
    eps = {"apiVersion": "v1", "kind": "Endpoints",
           "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
           "subsets": [{"addresses": [{"ip": P["NODE_IP"]}],
                        "ports": [{"name": n, "port": t} for n, _, t in ports]}]}
    return [svc, eps]


def crds():
    s, n = P["SERVING_DIR"], P["NETWORKING_DIR"]
    files = sorted(glob.glob(s + "/config/core/300-resources/*.yaml"))
    files += [n + "/config/%s.yaml" % f for f in ("certificate", "domain-claim", "ingress", "serverlessservice")]
    files += [P["CACHING_DIR"] + "/config/image.yaml"]
    return [d for f in files for d in docs(f) if d["kind"] == "CustomResourceDefinition"]


def objects():
    s, g = P["SERVING_DIR"], P["GATEWAY_API_DIR"]
    out = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}]
    overrides = {
        "domain.yaml": {P["DOMAIN"]: ""},
        "deployment.yaml": {
            "queue-sidecar-image": P["QUEUE_IMAGE"],
            "registries-skipping-tag-resolving": P["SKIP_TAG_REGISTRIES"],
        },
        # No collector here: metrics and traces off (the default protocol would export to nowhere).
        "observability.yaml": {"metrics-protocol": "none", "request-metrics-protocol": "none",
                               "tracing-protocol": "none", "runtime-profiling": "disabled"},
    }
    for f in sorted(glob.glob(s + "/config/core/configmaps/*.yaml")):
        out.append(configmap(f, overrides.get(os.path.basename(f), {})))
    out.append(configmap(P["NETWORKING_DIR"] + "/config/config-network.yaml",
                         {"ingress-class": "gateway-api.ingress.networking.knative.dev"}))
    out.append(configmap(g + "/config/config-gateway.yaml", {
        "external-gateways": yaml.safe_dump(gateway(P["GATEWAY_EXTERNAL"], P["GATEWAY_EXTERNAL_SERVICE"])),
        "local-gateways": yaml.safe_dump(gateway(P["GATEWAY_LOCAL"], P["GATEWAY_LOCAL_SERVICE"])),
    }))
    # Webhook Secrets (the webhooks write their certificates into them) and configurations (the
    # webhooks fill in caBundle and rules themselves).
    for d in docs(s + "/config/core/webhooks/secret.yaml") + docs(g + "/config/400-webhook-secret.yaml"):
        out.append(d)
    for f in ("defaulting", "resource-validation", "configmap-validation"):
        out += docs(s + "/config/core/webhooks/%s.yaml" % f)
    out += docs(g + "/config/500-validating-webhook.yaml")
    # Services of the host processes, named and ported as upstream's.
    out += host_service("webhook", [("https-webhook", 443, PORTS["webhook"])], {"role": "webhook"})
    out += host_service("net-gateway-api-webhook", [("https-webhook", 443, PORTS["gateway_webhook"])],
                        {"role": "net-gateway-api-webhook"})
    out += host_service("activator-service", [("http", 80, PORTS["activator_http"]),
                                              ("http2", 81, PORTS["activator_h2c"])], {"app": "activator"})
    out += host_service("autoscaler", [("http", 8080, PORTS["autoscaler"])], {"app": "autoscaler"})
    return out


def write(directory, objs):
    os.makedirs(directory, exist_ok=True)
    for i, obj in enumerate(objs):
        obj["metadata"].pop("creationTimestamp", None)
        name = "%02d-%s-%s.json" % (i, obj["kind"].lower(), obj["metadata"]["name"])
        with open(os.path.join(directory, name), "w") as f:
            f.write("# %s\n%s\n" % (api_path(obj), json.dumps(obj)))


if __name__ == "__main__":
    write(os.path.join(sys.argv[1], "crds"), crds())
    write(os.path.join(sys.argv[1], "objects"), objects())
