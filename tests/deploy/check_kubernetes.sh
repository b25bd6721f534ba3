#!/usr/bin/env bash
# Validates deploy/kubernetes/ (kustomize) and deploy/compose.yaml without a cluster or a Docker
# engine: renders every kustomization with `kubectl kustomize`, then checks the rendered objects
# against each other and against the gateway.yaml they carry (ports, probes, drain time, config
# mount, Secrets, selectors, replicas), runs `gateway --check-config` on every gateway.yaml when a
# built binary is at hand, and checks compose.yaml the same way.
# Usage: tests/deploy/check_kubernetes.sh [SOURCE_DIR]   (default: this repository)
#        GATEWAY_BIN=path/to/gateway to pick the binary (default: build/gateway/gateway)
# Exits non-zero on any failure; a missing tool skips its part with the reason printed.
#
# No schema validation against the Kubernetes API: `kubectl apply --dry-run=client` and
# `kubectl create --dry-run=client` both need a reachable API server (they fetch the API's
# discovery documents and OpenAPI schema first, --validate=false included), so with no cluster they
# only fail with "connection refused". kubeconform is not packaged in Debian 12. What runs here is
# kustomize's own parsing plus the structural checks below, which catch what a schema would not:
# values in different objects and files that must agree.
set -euo pipefail

src=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
cd "$src"
k8s=deploy/kubernetes

command -v python3 >/dev/null || { echo "python3 not found (scripts/install-deps test)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

have_yaml=1
python3 -c 'import yaml' 2>/dev/null || have_yaml=0

gateway_bin=${GATEWAY_BIN:-build/gateway/gateway}
if [ -x "$gateway_bin" ]; then
  gateway_bin=$(cd "$(dirname "$gateway_bin")" && pwd)/$(basename "$gateway_bin")
else
  echo "note: no gateway binary at $gateway_bin (set GATEWAY_BIN); gateway --check-config is skipped"
  gateway_bin=
fi
export GATEWAY_BIN_RESOLVED=$gateway_bin

# --- Kubernetes -------------------------------------------------------------------------------
targets=()
if ! command -v kubectl >/dev/null; then
  echo "SKIP kubernetes: kubectl not found (its built-in kustomize renders deploy/kubernetes)"
else
  targets=(base overlays/memory overlays/redis)
  for dir in "$k8s"/examples/*/; do
    [ -f "$dir/kustomization.yaml" ] && targets+=("examples/$(basename "$dir")")
  done
  echo "rendering with $(kubectl version --client 2>/dev/null | tr '\n' ' ')"
  for target in "${targets[@]}"; do
    out="$tmp/$(tr / _ <<<"$target").yaml"
    if ! kubectl kustomize "$k8s/$target" >"$out" 2>"$tmp/err"; then
      echo "FAIL kubectl kustomize $k8s/$target:" >&2
      cat "$tmp/err" >&2
      exit 1
    fi
    echo "  rendered $k8s/$target: $(grep -c '^kind:' "$out") objects"
  done
fi

if [ "$have_yaml" -eq 0 ]; then
  echo "SKIP structural checks: python3 cannot import yaml (apt-get install python3-yaml)"
  echo "deploy/kubernetes and deploy/compose.yaml: rendered only, not checked"
  exit 0
fi

if [ "${#targets[@]}" -gt 0 ]; then
python3 - "$tmp" "$k8s" "${targets[@]}" <<'PY'
import ipaddress, os, re, subprocess, sys
import yaml

tmp, k8s, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
gateway_bin = os.environ.get("GATEWAY_BIN_RESOLVED", "")
failures = []
checked = 0


def fail(target, msg):
    failures.append(f"{target}: {msg}")
    print(f"  FAIL {target}: {msg}")


def check(target, cond, msg, detail=""):
    global checked
    checked += 1
    if cond:
        print(f"  ok   {target}: {msg}")
    else:
        fail(target, msg + (f" ({detail})" if detail else ""))
    return cond


def seconds(text):
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text).strip())
    if not m:
        raise ValueError(f"not a duration: {text!r}")
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def split_endpoint(text):
    host, _, port = str(text).rpartition(":")
    return host.strip("[]"), int(port)


def is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def render(target):
    with open(os.path.join(tmp, target.replace("/", "_") + ".yaml")) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def of_kind(objs, kind):
    return [o for o in objs if o.get("kind") == kind]


def named(objs, kind, name):
    return next((o for o in of_kind(objs, kind) if o["metadata"]["name"] == name), None)


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_labels(deploy):
    return deploy["spec"]["template"]["metadata"].get("labels", {})


def containers(deploy):
    return deploy["spec"]["template"]["spec"]["containers"]


def container_port(container, port):
    """A probe's, Service's or PodMonitor's port (number or name) as a container port number."""
    ports = container.get("ports", [])
    if isinstance(port, int):
        return port if any(p["containerPort"] == port for p in ports) else None
    return next((p["containerPort"] for p in ports if p.get("name") == port), None)


def deploy_port(deploy, port):
    for c in containers(deploy):
        n = container_port(c, port)
        if n is not None:
            return n
    return None


def gateway_deployment(objs):
    for d in of_kind(objs, "Deployment"):
        for c in containers(d):
            if "--config" in (c.get("args", []) + c.get("command", [])):
                return d, c
    return None, None


def hpa_for(objs, deploy):
    return next((h for h in of_kind(objs, "HorizontalPodAutoscaler")
                 if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
                 and h["spec"]["scaleTargetRef"].get("name") == deploy["metadata"]["name"]), None)


def min_replicas(objs, deploy):
    hpa = hpa_for(objs, deploy)
    if hpa:
        return hpa["spec"].get("minReplicas", 1)
    return deploy["spec"].get("replicas", 1)


def kustomization(target):
    with open(os.path.join(k8s, target, "kustomization.yaml")) as f:
        return yaml.safe_load(f)


def check_objects(target, objs):
    bad = [o for o in objs
           if not (o.get("apiVersion") and o.get("kind") and (o.get("metadata") or {}).get("name"))]
    check(target, not bad, f"all {len(objs)} objects have apiVersion, kind and metadata.name",
          f"{len(bad)} without")


def check_hardening(target, objs):
    for d in of_kind(objs, "Deployment"):
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext", {})
        for c in containers(d):
            csc = c.get("securityContext", {})
            merged = {**psc, **csc}
            problems = []
            if merged.get("runAsNonRoot") is not True:
                problems.append("runAsNonRoot")
            if not isinstance(merged.get("runAsUser"), int) or merged["runAsUser"] == 0:
                problems.append("runAsUser")
            if (merged.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
                problems.append("seccompProfile RuntimeDefault")
            if csc.get("allowPrivilegeEscalation") is not False:
                problems.append("allowPrivilegeEscalation false")
            if csc.get("readOnlyRootFilesystem") is not True:
                problems.append("readOnlyRootFilesystem")
            if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
                problems.append("capabilities drop ALL")
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(kind, {}):
                        problems.append(f"resources.{kind}.{r}")
            check(target, not problems,
                  f"{name}/{c['name']}: non-root, no privilege escalation, read-only root, "
                  f"capabilities dropped, seccomp RuntimeDefault, requests and limits",
                  "missing: " + ", ".join(problems))


def check_services(target, objs, fallback_deploys):
    deploys = of_kind(objs, "Deployment")
    for s in of_kind(objs, "Service"):
        name = s["metadata"]["name"]
        sel = s["spec"].get("selector", {})
        matched = [d for d in deploys if selects(sel, pod_labels(d))]
        where = "in this render"
        if not matched:
            matched = [d for d in fallback_deploys if selects(sel, pod_labels(d))]
            where = "of the overlays"
        if not check(target, matched, f"Service {name} selects the pods of "
                     f"{', '.join(sorted({d['metadata']['name'] for d in matched})) or 'nothing'} ({where})"):
            continue
        for p in s["spec"]["ports"]:
            tp = p.get("targetPort", p["port"])
            n = deploy_port(matched[0], tp)
            check(target, n is not None,
                  f"Service {name} port {p.get('name', p['port'])} -> targetPort {tp} = container port {n}")


def check_gateway(target, objs):
    deploy, c = gateway_deployment(objs)
    if not check(target, deploy is not None, "a Deployment runs the gateway with --config"):
        return None
    args = c.get("args", []) + c.get("command", [])
    config_path = args[args.index("--config") + 1]
    mount_dir, config_key = os.path.dirname(config_path), os.path.basename(config_path)
    mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"] == mount_dir), None)
    if not check(target, mount is not None, f"{config_path}'s folder {mount_dir} is a volume mount"):
        return None
    check(target, "subPath" not in mount and "subPathExpr" not in mount,
          f"{mount_dir} is mounted as a folder, without subPath (so ConfigMap updates arrive)")
    volume = next(v for v in deploy["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    cm_name = (volume.get("configMap") or {}).get("name")
    cm = named(objs, "ConfigMap", cm_name) if cm_name else None
    if not check(target, cm is not None and config_key in cm.get("data", {}),
                 f"ConfigMap {cm_name} in the render holds {config_key}"):
        return None
    for t in dict.fromkeys([target, "base"]):
        for gen in kustomization(t).get("configMapGenerator", []) or []:
            if gen.get("name") == cm_name:
                check(target, (gen.get("options") or {}).get("disableNameSuffixHash") is True,
                      f"{t}/kustomization.yaml generates {cm_name} with disableNameSuffixHash: true "
                      f"(updates reach running pods; no rollout per edit)")
    cfg = yaml.safe_load(cm["data"][config_key])
    server, admin = cfg.get("server", {}), cfg.get("admin", {})
    check(target, server.get("watch_config") is True, "gateway.yaml: server.watch_config is true")

    admin_host, admin_port = split_endpoint(admin.get("listen", "127.0.0.1:9901"))
    check(target, admin_host in ("0.0.0.0", "::"),
          f"admin.listen {admin.get('listen')} is reachable on the pod IP (probes, Prometheus)")
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = (c.get(probe) or {}).get("httpGet") or {}
        port = container_port(c, get.get("port"))
        check(target, get.get("path") == path and port == admin_port,
              f"{probe}: GET {get.get('path')} on port {get.get('port')} (= {port}); "
              f"expected {path} on admin.listen's {admin_port}")

    _, proxy_port = split_endpoint(server.get("listen", "0.0.0.0:8080"))
    check(target, container_port(c, "http") == proxy_port,
          f"container port http = {container_port(c, 'http')} = server.listen's port {proxy_port}")
    if cfg.get("rls"):
        rls = cfg["rls"]
        _, rls_port = split_endpoint(rls["listen"])
        check(target, container_port(c, rls_port) is not None,
              f"rls.listen's port {rls_port} is a container port")
        paths = rls.get("config", [])
        for p in [paths] if isinstance(paths, str) else paths:
            key = p if not os.path.isabs(p) else os.path.relpath(p, mount_dir)
            check(target, key.rstrip("/") in cm["data"],
                  f"rls.config {p} is a file of the same ConfigMap")

    drain = seconds(server.get("drain_timeout", "15s"))
    pre = ((c.get("lifecycle") or {}).get("preStop") or {}).get("exec", {}).get("command", [])
    sleep = float(pre[1]) if len(pre) == 2 and os.path.basename(pre[0]) == "sleep" else 0
    check(target, bool(pre) and sleep > 0, f"preStop sleeps {sleep:g}s (endpoint removal propagates)")
    grace = deploy["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
    check(target, grace >= sleep + drain,
          f"terminationGracePeriodSeconds {grace} >= preStop {sleep:g}s + drain_timeout {drain:g}s")
    psc = deploy["spec"]["template"]["spec"].get("securityContext", {})
    uid = c.get("securityContext", {}).get("runAsUser", psc.get("runAsUser"))
    check(target, uid == 10001, f"runs as the image's user 10001 (runAsUser {uid})")

    labels = pod_labels(deploy)
    for pm in of_kind(objs, "PodMonitor"):
        sel = pm["spec"].get("selector", {}).get("matchLabels", {})
        check(target, selects(sel, labels), f"PodMonitor {pm['metadata']['name']} selects the gateway pods")
        for ep in pm["spec"].get("podMetricsEndpoints", []):
            port = container_port(c, ep.get("port"))
            check(target, port == admin_port and ep.get("path", "/metrics") == "/metrics",
                  f"PodMonitor scrapes port {ep.get('port')} (= {port}) path {ep.get('path')}: "
                  f"admin.listen's /metrics")
    check(target, bool(of_kind(objs, "PodMonitor")), "a PodMonitor scrapes the gateway")

    replicas = min_replicas(objs, deploy)
    pdbs = [p for p in of_kind(objs, "PodDisruptionBudget")
            if selects(p["spec"]["selector"].get("matchLabels", {}), labels)]
    if check(target, len(pdbs) == 1, "one PodDisruptionBudget selects the gateway pods"):
        spec = pdbs[0]["spec"]

        def count(v):
            if isinstance(v, str) and v.endswith("%"):
                return int(replicas * int(v[:-1]) / 100)
            return int(v)
        allowed = (count(spec["maxUnavailable"]) if "maxUnavailable" in spec
                   else replicas - count(spec.get("minAvailable", 0)))
        how = ", ".join(f"{k} {spec[k]}" for k in ("minAvailable", "maxUnavailable") if k in spec)
        check(target, allowed >= 1,
              f"PDB ({how}) lets a drain evict {allowed} pod(s) at the minimum of {replicas} replica(s)")

    hpa = hpa_for(objs, deploy)
    if hpa:
        metrics = hpa["spec"].get("metrics", [])
        cpu = any(m.get("type") == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
        check(target, hpa["apiVersion"] == "autoscaling/v2" and cpu
              and "cpu" in c.get("resources", {}).get("requests", {}),
              f"HPA {hpa['metadata']['name']} (autoscaling/v2) scales on CPU, against requests.cpu; "
              f"{hpa['spec'].get('minReplicas')}..{hpa['spec']['maxReplicas']} replicas")
        check(target, "replicas" not in deploy["spec"],
              "the Deployment leaves replicas to the HPA (no count for `apply` to reset)")

    storage = cfg.get("storage", {})
    backend = storage.get("backend", "memory")
    services = {s["metadata"]["name"]: s for s in of_kind(objs, "Service")}
    if target == "overlays/memory":
        check(target, backend == "memory", f"storage.backend is {backend}")
        check(target, deploy["spec"].get("replicas") == 1 and hpa is None,
              f"replicas {deploy['spec'].get('replicas')}, no HPA: the memory store counts per replica")
    if target == "overlays/redis":
        check(target, backend in ("redis", "redis_cluster"), f"storage.backend is {backend}")
        check(target, replicas >= 2, f"at least 2 replicas share the store (minimum {replicas})")
        redis = storage.get("redis", {})
        check(target, redis.get("password_env") == "REDIS_PASSWORD",
              f"storage.redis.password_env is {redis.get('password_env')}")
        env = next((e for e in c.get("env", []) if e["name"] == "REDIS_PASSWORD"), None)
        ref = ((env or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        secret = named(objs, "Secret", ref.get("name", ""))
        keys = set((secret or {}).get("data", {}) or {}) | set((secret or {}).get("stringData", {}) or {})
        check(target, secret is not None and ref.get("key") in keys,
              f"env REDIS_PASSWORD comes from Secret {ref.get('name')} key {ref.get('key')}, "
              f"which the render holds")
        host, port = split_endpoint(redis.get("address", "127.0.0.1:6379"))
        if host in services:
            check(target, any(p["port"] == port for p in services[host]["spec"]["ports"]),
                  f"storage.redis.address {host}:{port} is the Service {host}'s port")
            store = [d for d in of_kind(objs, "Deployment")
                     if selects(services[host]["spec"].get("selector", {}), pod_labels(d))]
            for d in store:
                for sc in containers(d):
                    refs = {((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name")
                            for e in sc.get("env", [])}
                    argv = " ".join(sc.get("command", []) + sc.get("args", []))
                    check(target, ref.get("name") in refs and "--requirepass" in argv,
                          f"Redis ({d['metadata']['name']}) takes requirepass from the same Secret")
        else:
            print(f"  note {target}: storage.redis.address {host}:{port} is outside this render")
    for name, up in (cfg.get("upstreams") or {}).items():
        for server_ep in up.get("servers", []):
            host, port = split_endpoint(server_ep)
            if is_ip(host) or "." in host:
                continue
            if target == "base":
                print(f"  note {target}: upstream {name} server {host}:{port} comes with the overlays")
            else:
                check(target, host in services and any(
                    p["port"] == port for p in services[host]["spec"]["ports"]),
                    f"upstream {name} server {host}:{port} is a Service port in the render "
                    f"(the gateway resolves it at start)")

    if gateway_bin:
        folder = os.path.join(tmp, "configmap-" + target.replace("/", "_"))
        os.makedirs(folder, exist_ok=True)
        for key, text in cm["data"].items():
            with open(os.path.join(folder, key), "w") as f:
                f.write(text)
        run = subprocess.run([gateway_bin, "--check-config", os.path.join(folder, config_key)],
                             capture_output=True, text=True)
        out = (run.stdout + run.stderr).strip()
        check(target, run.returncode == 0, "gateway --check-config on the ConfigMap's files: "
              + out.replace(folder + "/", "").replace("\n", "; "))
    return {"deploy": deploy, "cfg": cfg, "cm": cm}


def check_envoy(target, objs, gw):
    for cm in of_kind(objs, "ConfigMap"):
        for key, text in (cm.get("data") or {}).items():
            boot = yaml.safe_load(text) if key.endswith((".yaml", ".yml")) else None
            if not isinstance(boot, dict) or "static_resources" not in boot:
                continue
            clusters = {cl["name"]: cl for cl in boot["static_resources"].get("clusters", [])}
            rls_cluster = None
            for lst in boot["static_resources"].get("listeners", []):
                for chain in lst.get("filter_chains", []):
                    for flt in chain.get("filters", []):
                        for http in (flt.get("typed_config") or {}).get("http_filters", []):
                            tc = http.get("typed_config") or {}
                            if http.get("name") == "envoy.filters.http.ratelimit":
                                domain = tc.get("domain")
                                domains = [yaml.safe_load(v).get("domain") for k, v in gw["cm"]["data"].items()
                                           if k != "gateway.yaml"]
                                check(target, domain in domains,
                                      f"Envoy's ratelimit filter uses domain {domain}, one the gateway loads")
                                rls_cluster = tc["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"]
            if not check(target, rls_cluster in clusters, f"rate_limit_service cluster {rls_cluster} is defined"):
                continue
            cl = clusters[rls_cluster]
            sock = cl["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
            _, rls_port = split_endpoint(gw["cfg"]["rls"]["listen"])
            svc = named(objs, "Service", sock["address"])
            check(target, sock["port_value"] == rls_port,
                  f"cluster {rls_cluster} -> {sock['address']}:{sock['port_value']}, rls.listen's port {rls_port}")
            check(target, svc is not None and svc["spec"].get("clusterIP") == "None"
                  and selects(svc["spec"]["selector"], pod_labels(gw["deploy"])),
                  f"{sock['address']} is a headless Service over the gateway pods (Envoy balances per pod)")
            http2 = "http2_protocol_options" in str(cl.get("typed_extension_protocol_options", {}))
            check(target, http2, f"cluster {rls_cluster} speaks HTTP/2 (gRPC)")
            hc = [h.get("grpc_health_check", {}).get("service_name") for h in cl.get("health_checks", [])]
            check(target, "envoy.service.ratelimit.v3.RateLimitService" in hc,
                  f"cluster {rls_cluster} health-checks the RateLimitService over gRPC")


renders = {t: render(t) for t in targets}
# The examples run beside an overlay: their Services may select the overlays' pods.
overlay_deploys = {d["metadata"]["name"]: d for t in targets if not t.startswith("examples/")
                   for d in of_kind(renders[t], "Deployment")}
base_result = None
for target in targets:
    print(f"{k8s}/{target}:")
    objs = renders[target]
    check_objects(target, objs)
    check_hardening(target, objs)
    if target.startswith("examples/"):
        check_services(target, objs, list(overlay_deploys.values()))
        if base_result:
            check_envoy(target, objs, base_result)
    else:
        check_services(target, objs, [])
        result = check_gateway(target, objs)
        if target == "base":
            base_result = result

if failures:
    print(f"deploy/kubernetes: {len(failures)} of {checked} checks failed:")
    for f in failures:
        print("  " + f)
    sys.exit(1)
print(f"deploy/kubernetes: {checked} checks passed")
PY
fi

# --- Docker Compose ---------------------------------------------------------------------------
python3 - "$tmp" <<'PY'
import os, re, shutil, subprocess, sys
import yaml

tmp = sys.argv[1]
gateway_bin = os.environ.get("GATEWAY_BIN_RESOLVED", "")
compose_file = "deploy/compose.yaml"
base = os.path.dirname(compose_file)
failures, checked = [], 0


def check(cond, msg, detail=""):
    global checked
    checked += 1
    print(("  ok   " if cond else "  FAIL ") + msg + ("" if cond or not detail else f" ({detail})"))
    if not cond:
        failures.append(msg)
    return cond


def mounts(svc):
    """container path -> (host path relative to the repository, read-only), for bind mounts."""
    out = {}
    for v in svc.get("volumes", []):
        parts = v.split(":") if isinstance(v, str) else [v["source"], v["target"]]
        if parts[0].startswith("."):
            out[parts[1]] = (os.path.normpath(os.path.join(base, parts[0])), parts[2:] == ["ro"])
    return out


def env_files(svc):
    files = svc.get("env_file", [])
    return [files] if isinstance(files, str) else files


def env_of(svc):
    env = {}
    for f in env_files(svc):
        with open(os.path.join(base, f)) as fh:
            for line in fh:
                line = line.strip()
                if line and not line.startswith("#") and "=" in line:
                    k, v = line.split("=", 1)
                    env[k] = v
    e = svc.get("environment", {})
    env.update(e if isinstance(e, dict) else dict(x.split("=", 1) for x in e))
    return env


def port(endpoint):
    return int(str(endpoint).rpartition(":")[2])


print(f"{compose_file}:")
with open(compose_file) as f:
    compose = yaml.safe_load(f)
services = compose.get("services", {})
check(all(s in services for s in ("gateway", "demo", "redis", "prometheus", "grafana")),
      "services gateway, demo, redis, prometheus, grafana", ", ".join(services))
gw = services["gateway"]
build = gw.get("build", {})
dockerfile = os.path.normpath(os.path.join(base, build.get("context", "."), build.get("dockerfile", "Dockerfile")))
check(build.get("context") == ".." and gw.get("image") == "ratelimit-gateway:latest",
      f"gateway builds the repository ({dockerfile}) as ratelimit-gateway:latest")
if not os.path.exists(dockerfile):
    print(f"  note {dockerfile} is not there yet (written separately)")

argv = gw.get("command", [])
config_path = argv[argv.index("--config") + 1]
gw_mounts = mounts(gw)
host_dir, ro = gw_mounts.get(os.path.dirname(config_path), (None, False))
host_config = os.path.join(host_dir, os.path.basename(config_path)) if host_dir else None
if not check(host_config is not None and os.path.isfile(host_config) and ro,
             f"gateway's {config_path} is {host_config}, a repository file in a folder mounted read-only"):
    sys.exit(1)
with open(host_config) as f:
    cfg = yaml.safe_load(f)
admin_port = port(cfg["admin"]["listen"])
proxy_port = port(cfg["server"]["listen"])
check(cfg["admin"]["listen"].startswith("0.0.0.0:"), f"admin.listen {cfg['admin']['listen']} reachable from Prometheus")
check(cfg["server"].get("watch_config") is True, "gateway.yaml: server.watch_config is true")
storage = cfg.get("storage", {})
redis_cfg = storage.get("redis", {})
check(storage.get("backend") == "redis" and redis_cfg.get("address") == "redis:6379",
      f"storage: {storage.get('backend')} at {redis_cfg.get('address')}, the redis service")
pw_var = redis_cfg.get("password_env")
gw_env, redis_env = env_of(gw), env_of(services["redis"])
redis_cmd = " ".join(services["redis"].get("command", []))
check(pw_var == "REDIS_PASSWORD" and pw_var in gw_env and redis_env.get(pw_var) == gw_env[pw_var]
      and f"--requirepass \"$${pw_var}\"" in redis_cmd,
      f"password_env {pw_var}: the gateway and Redis (requirepass) get the same value from "
      f"{', '.join(env_files(gw))}")
for name, up in cfg.get("upstreams", {}).items():
    for s in up.get("servers", []):
        host = s.rpartition(":")[0]
        check(host in services, f"upstream {name} server {s} is a compose service")
rls = cfg.get("rls") or {}
for p in rls.get("config", []):
    hit = next(((c, h) for c, (h, _) in gw_mounts.items() if p.rstrip("/") == c or p.startswith(c + "/")), None)
    check(hit is not None and os.path.exists(hit[1]), f"rls.config {p} is mounted from {hit and hit[1]}")
deps = gw.get("depends_on", {})
for d in ("redis", "demo"):
    check(deps.get(d, {}).get("condition") == "service_healthy" and "healthcheck" in services[d],
          f"gateway starts once {d} is healthy")
check(services["grafana"].get("depends_on", {}).get("prometheus", {}).get("condition") == "service_healthy",
      "grafana starts once prometheus is healthy")
for name in ("gateway", "demo", "redis", "prometheus", "grafana"):
    check("healthcheck" in services[name], f"{name} has a healthcheck")
grace = gw.get("stop_grace_period", "10s")
check(int(re.sub(r"s$", "", grace)) >= 15 if re.fullmatch(r"\d+s", grace) else False,
      f"gateway stop_grace_period {grace} covers drain_timeout {cfg['server'].get('drain_timeout', '15s')}")

for name, svc in services.items():
    for p in svc.get("ports", []):
        parts = str(p).split(":")
        public = len(parts) == 2 or parts[0] in ("", "0.0.0.0")
        container = int(parts[-1].split("/")[0])
        if name == "gateway" and container == proxy_port:
            check(True, f"{name} publishes the proxy {p} on every interface")
        else:
            check(not public and parts[0] == "127.0.0.1", f"{name} publishes {p} on 127.0.0.1 only")

prom = services["prometheus"]
prom_mounts = mounts(prom)
prom_host = prom_mounts.get("/etc/prometheus/prometheus.yml", (None,))[0]
if check(prom_host and os.path.isfile(prom_host), f"prometheus config {prom_host} exists"):
    with open(prom_host) as f:
        prom_cfg = yaml.safe_load(f)
    jobs = {j["job_name"]: j for j in prom_cfg.get("scrape_configs", [])}
    targets = [t for sc in jobs.get("gateway", {}).get("static_configs", []) for t in sc["targets"]]
    check(targets == [f"gateway:{admin_port}"],
          f"job gateway scrapes {targets}: the gateway service's admin port {admin_port}")
    for rule in prom_cfg.get("rule_files", []):
        path = os.path.join("/etc/prometheus", rule)
        host = prom_mounts.get(path, (None,))[0]
        check(host and os.path.isfile(host), f"rule file {path} is mounted from {host}")
    if shutil.which("promtool"):
        folder = os.path.join(tmp, "prometheus")
        os.makedirs(folder, exist_ok=True)
        for container, (host, _) in prom_mounts.items():
            if container.startswith("/etc/prometheus/") and os.path.isfile(host):
                shutil.copy(host, os.path.join(folder, os.path.basename(container)))
        run = subprocess.run(["promtool", "check", "config", os.path.join(folder, "prometheus.yml")],
                             capture_output=True, text=True)
        check(run.returncode == 0, "promtool check config (with alerts.yml beside it, as mounted)",
              (run.stdout + run.stderr).strip())
    else:
        print("  note promtool not found: the compose Prometheus config is checked by structure only")

graf = services["grafana"]
graf_mounts = mounts(graf)
prov = graf_mounts.get("/etc/grafana/provisioning", (None,))[0]
if check(prov and os.path.isdir(prov), f"grafana provisioning {prov} exists"):
    sources = []
    for fn in sorted(os.listdir(os.path.join(prov, "datasources"))):
        with open(os.path.join(prov, "datasources", fn)) as f:
            sources += yaml.safe_load(f).get("datasources", [])
    check(any(s["type"] == "prometheus" and s["url"] == "http://prometheus:9090" and s.get("isDefault")
              for s in sources), "default data source: prometheus at http://prometheus:9090")
    providers = []
    for fn in sorted(os.listdir(os.path.join(prov, "dashboards"))):
        with open(os.path.join(prov, "dashboards", fn)) as f:
            providers += yaml.safe_load(f).get("providers", [])
    for pv in providers:
        folder = pv["options"]["path"]
        files = [(c, h) for c, (h, _) in graf_mounts.items() if c.startswith(folder.rstrip("/") + "/")]
        check(bool(files) and all(os.path.isfile(h) for _, h in files),
              f"dashboard provider {pv['name']} reads {folder}: {', '.join(h for _, h in files)}")
        for _, h in files:
            with open(h) as f:
                text = f.read()
            check('"DS_PROMETHEUS"' in text, f"{h} selects its data source through DS_PROMETHEUS")

if gateway_bin:
    # The file as the container sees it: rls.config's mounted folders replaced by the repository's.
    text = open(host_config).read()
    for c, (h, _) in gw_mounts.items():
        text = text.replace(c + "/", os.path.abspath(h) + "/")
    path = os.path.join(tmp, "compose-gateway.yaml")
    with open(path, "w") as f:
        f.write(text)
    run = subprocess.run([gateway_bin, "--check-config", path], capture_output=True, text=True)
    check(run.returncode == 0, "gateway --check-config " + host_config + ": "
          + (run.stdout + run.stderr).strip().replace("\n", "; "))

if failures:
    print(f"{compose_file}: {len(failures)} of {checked} checks failed")
    sys.exit(1)
print(f"{compose_file}: {checked} checks passed")
PY

# `docker compose config` parses and resolves the file without an engine, when the plugin exists.
if docker compose version >/dev/null 2>&1; then
  docker compose -f deploy/compose.yaml config --quiet && echo "docker compose config: ok"
elif command -v docker-compose >/dev/null; then
  docker-compose -f deploy/compose.yaml config --quiet && echo "docker-compose config: ok"
else
  echo "SKIP docker compose config: no compose plugin or docker-compose here (the checks above ran)"
fi
echo "deploy/kubernetes and deploy/compose.yaml OK"
