#!/usr/bin/env python3
"""Consistency checks of the deployment files, run by deploy/check.sh (in its venv).

The schema validation, kustomize rendering, hadolint and systemd-analyze are the
tools' own; this script checks what they cannot: that the files agree with one another
and with the proxy (ports, probes, grace periods, mounts, the secrets' variables), and
runs `invent-proxy check` on every proxy config under deploy/, those inside the rendered
ConfigMaps included.

    check.py k8s BINARY RENDERED.yaml [--require KIND,...]
    check.py crds RENDERED.yaml CORE_OUT.yaml
    check.py prometheusrule [--write]
    check.py configs BINARY
    check.py compose BINARY COMPOSE_SCHEMA.json
    check.py dockerfile RUSTC_VERSION
    check.py context DIR
    check.py systemd UNIT
    check.py deb-unit UNIT PACKAGED_UNIT
    check.py workflows
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
# The release build CI runs (tests/soak/run.sh, called from .ci/run), which the image's
# build stage must run too.
CI_BUILD_SCRIPT = REPO / "tests" / "soak" / "run.sh"
# The monitoring kit's alert rules, and the PrometheusRule that carries them to the
# Prometheus Operator (its spec must be the rule file's contents).
ALERTS = DEPLOY / "monitoring" / "alerts.yaml"
PROMETHEUS_RULE = DEPLOY / "kubernetes" / "components" / "monitoring" / "prometheusrule.yaml"
# Custom resources the manifests use, and their schema: the Prometheus Operator's
# monitoring.coreos.com/v1 CRDs as modelled by PyPI's cloudcoil-models-prometheus-operator
# (the operator's version), validated strictly (unknown fields are errors).
CRD_KINDS = {("monitoring.coreos.com/v1", "PodMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
             ("monitoring.coreos.com/v1", "ServiceMonitor")}
# The proxy's own default (src/config/process.rs): shutdown_grace_period when not set.
DEFAULT_GRACE_S = 30.0

failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")
    print(f"  FAIL {where}: {message}")


def ok(message):
    print(f"  ok   {message}")


def finish():
    if failures:
        print(f"{len(failures)} problem(s):", file=sys.stderr)
        for f in failures:
            print(f"  {f}", file=sys.stderr)
        sys.exit(1)


def rel(path):
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- proxy configs

def duration_s(text):
    """A config duration (`250ms`, `30s`, `2m`, `1m30s`, `1h`) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)", str(text))
    if not parts or re.sub(r"[\d.\s]|ms|s|m|h", "", str(text)):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


def port_of(address):
    """The port of `IP:PORT` / `[IPv6]:PORT`."""
    return int(str(address).rsplit(":", 1)[1])


def host_of(address):
    return str(address).rsplit(":", 1)[0].strip("[]")


def env_names(text):
    return sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)))


def run_check(binary, config_path, env, where):
    """`invent-proxy check --config` with exactly `env` (and PATH): 0 or a failure."""
    full_env = {"PATH": "/usr/bin:/bin", **env}
    proc = subprocess.run([binary, "check", "--config", str(config_path)], env=full_env,
                          capture_output=True, text=True, timeout=60)
    output = (proc.stdout + proc.stderr).strip().splitlines()
    if proc.returncode != 0:
        fail(where, "invent-proxy check failed:\n      " + "\n      ".join(output))
        return False
    warnings = [line for line in output if line.startswith("warning:")]
    ok(f"{where}: invent-proxy check passed" + (f" ({len(warnings)} warning(s))" if warnings else ""))
    for w in warnings:
        print(f"         {w}")
    return True


def cmd_configs(binary):
    """Every YAML file under deploy/: a proxy config (invent-proxy.yaml) is checked with
    `invent-proxy check`, each ${NAME} set to a dummy value; the others must be files
    the other steps cover (kustomizations, manifests they list, compose.yaml)."""
    listed = set()
    for kust in DEPLOY.rglob("kustomization.yaml"):
        k = yaml.safe_load(kust.read_text())
        entries = list(k.get("resources", []))
        entries += [p["path"] for p in k.get("patches", []) if "path" in p]
        for gen in k.get("configMapGenerator", []) + k.get("secretGenerator", []):
            entries += [f.split("=", 1)[-1] for f in gen.get("files", [])]
        for e in entries:
            listed.add((kust.parent / e).resolve())
    configs = 0
    for path in sorted(DEPLOY.rglob("*.y*ml")):
        where = rel(path)
        if path.name == "kustomization.yaml":
            continue
        if path.name == "compose.yaml":
            continue
        if path.parent == DEPLOY / "monitoring" and path.name in ("alerts.yaml", "alerts.test.yaml"):
            continue  # Prometheus rules and their unit tests: deploy/monitoring/check.sh
        if path.name == "invent-proxy.yaml":
            configs += 1
            if "kubernetes" in path.parts and path.resolve() not in listed:
                fail(where, "not in any kustomization's configMapGenerator")
            names = env_names(path.read_text())
            run_check(binary, path, {n: f"dummy-{n.lower()}" for n in names}, where)
            continue
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        if docs and all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs):
            if path.resolve() not in listed:
                fail(where, "a Kubernetes manifest no kustomization.yaml lists: it is never rendered or validated")
            continue
        fail(where, "neither a proxy config (invent-proxy.yaml), a kustomization, a manifest, compose.yaml nor "
             "deploy/monitoring's rules: deploy/check.sh would not check it")
    if configs == 0:
        fail("deploy/", "no proxy config found")


# ---------------------------------------------------------------- Kubernetes

def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def container_port(container, port):
    """A probe's or Service's port (a number or a name) as a number, or None."""
    for p in container.get("ports", []):
        if port == p.get("name") or port == p.get("containerPort"):
            return p["containerPort"]
    return port if isinstance(port, int) else None


def is_proxy(container):
    image = container.get("image", "")
    return image.rsplit("/", 1)[-1].split(":", 1)[0] == "invent-proxy"


def cmd_k8s(binary, rendered, required):
    where0 = rel(rendered)
    docs = [d for d in yaml.safe_load_all(Path(rendered).read_text()) if d]
    by_kind = {}
    for d in docs:
        for key in ("apiVersion", "kind"):
            if key not in d:
                fail(where0, f"a document without {key}")
        by_kind.setdefault(d.get("kind"), []).append(d)
    for kind in ["Deployment", "Service", "ConfigMap"] + required:
        if kind not in by_kind:
            fail(where0, f"renders no {kind}")
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    deployments = by_kind.get("Deployment", [])
    hpa_targets = {h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])}
    proxy_ports = []  # (pod labels, container) of every proxy container
    for dep in deployments:
        name = dep["metadata"]["name"]
        pod = dep["spec"]["template"]
        spec = pod["spec"]
        labels = pod["metadata"].get("labels", {})
        if not labels_match(dep["spec"]["selector"].get("matchLabels", {}), labels):
            fail(f"{where0} Deployment {name}", "selector does not match its pod template's labels")
        if name in hpa_targets and "replicas" in dep["spec"]:
            fail(f"{where0} Deployment {name}", "sets replicas although an HPA scales it: every apply would reset the count")
        proxies = [c for c in spec["containers"] if is_proxy(c)]
        if not proxies:
            fail(f"{where0} Deployment {name}", "has no invent-proxy container")
        for c in proxies:
            where = f"{where0} Deployment {name}, container {c['name']}"
            proxy_ports.append((labels, c))
            check_proxy_container(binary, where, spec, c, configmaps)
    for svc in by_kind.get("Service", []):
        where = f"{where0} Service {svc['metadata']['name']}"
        selected = [(labels, c) for labels, c in proxy_ports if labels_match(svc["spec"].get("selector", {}), labels)]
        if not selected:
            fail(where, "selects no pod with an invent-proxy container")
            continue
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            for _, c in selected:
                http = container_port(c, "http")
                if container_port(c, target) != http:
                    fail(where, f"port {p['port']} targets {target!r}, not the proxy's port `http` ({http})")
        ok(f"{where} sends its traffic to the proxy's port")
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        where = f"{where0} HorizontalPodAutoscaler {hpa['metadata']['name']}"
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] != "Deployment" or target["name"] not in {d["metadata"]["name"] for d in deployments}:
            fail(where, f"scales {target['kind']} {target['name']}, which is not rendered")
        cpu = [m for m in hpa["spec"].get("metrics", []) if m.get("type") == "Resource" and m["resource"]["name"] == "cpu"]
        if not cpu:
            fail(where, "does not scale on CPU")
        if hpa["spec"].get("minReplicas", 1) < 2:
            fail(where, "minReplicas below 2: one pod is a single point of failure")
        ok(f"{where}: CPU, {hpa['spec'].get('minReplicas', 1)}..{hpa['spec']['maxReplicas']} replicas")
    for pdb in by_kind.get("PodDisruptionBudget", []):
        where = f"{where0} PodDisruptionBudget {pdb['metadata']['name']}"
        sel = pdb["spec"]["selector"].get("matchLabels", {})
        if not any(labels_match(sel, d["spec"]["template"]["metadata"].get("labels", {})) for d in deployments):
            fail(where, "selects no rendered pod")
        else:
            ok(f"{where} selects the proxy's pods")
    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    for ing in by_kind.get("Ingress", []):
        where = f"{where0} Ingress {ing['metadata']['name']}"
        for rule in ing["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                svc = services.get(backend["name"])
                port = backend["port"]
                if svc is None or not any(port.get("name") == p.get("name") or port.get("number") == p["port"]
                                          for p in svc["spec"]["ports"]):
                    fail(where, f"backend {backend} is not a rendered Service port")
        ok(f"{where} routes to a rendered Service")
    check_network_policies(where0, by_kind.get("NetworkPolicy", []), proxy_ports)
    check_pod_monitors(where0, by_kind.get("PodMonitor", []), proxy_ports)
    if "ServiceMonitor" in by_kind:
        fail(where0, "renders a ServiceMonitor: the admin port is not in the Service, so a PodMonitor scrapes it")
    check_prometheus_rules(where0, by_kind.get("PrometheusRule", []))


def policy_allows(rule, container, number, protocol="TCP"):
    """Whether a NetworkPolicy rule's `ports` let in (or out) `number`/`protocol` of
    `container` (a rule without ports allows every port; a port may be a name)."""
    ports = rule.get("ports")
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        first = container_port(container, p["port"])
        if first == number or (first is not None and p.get("endPort") and first <= number <= p["endPort"]):
            return True
    return False


def selector_set(selector):
    return bool(selector and (selector.get("matchLabels") or selector.get("matchExpressions")))


def check_network_policies(where0, policies, proxy_ports):
    """The proxy's port open to clients, its admin port only to named peers (Prometheus),
    DNS and something more (the upstream) allowed out."""
    for np in policies:
        where = f"{where0} NetworkPolicy {np['metadata']['name']}"
        spec = np["spec"]
        selected = [(labels, c) for labels, c in proxy_ports
                    if labels_match(spec.get("podSelector", {}).get("matchLabels", {}), labels)]
        if not selected:
            fail(where, "selects no pod with an invent-proxy container")
            continue
        types = spec.get("policyTypes", ["Ingress"] + (["Egress"] if "egress" in spec else []))
        for t in ("Ingress", "Egress"):
            if t not in types:
                fail(where, f"policyTypes lacks {t}: that direction is not restricted")
        ingress, egress = spec.get("ingress", []), spec.get("egress", [])
        for _, c in selected:
            http, admin = container_port(c, "http"), container_port(c, "admin")
            if not any(policy_allows(r, c, http) for r in ingress):
                fail(where, f"no ingress rule lets clients in on port http ({http})")
            admin_rules = [r for r in ingress if policy_allows(r, c, admin)]
            if not admin_rules:
                fail(where, f"no ingress rule lets Prometheus in on port admin ({admin})")
            for r in admin_rules:
                peers = r.get("from")
                if not peers:
                    fail(where, f"an ingress rule opens port admin ({admin}) to everyone")
                for peer in peers or []:
                    if "ipBlock" in peer or not (selector_set(peer.get("podSelector"))
                                                 or selector_set(peer.get("namespaceSelector"))):
                        fail(where, f"port admin ({admin}) is open to {peer}, not to pods or namespaces named by label")
            if not any(policy_allows(r, c, 53, "UDP") for r in egress):
                fail(where, "egress does not allow DNS (53/UDP)")
            if not any(not r.get("ports") or any(p.get("port") != 53 for p in r["ports"]) for r in egress):
                fail(where, "egress allows nothing but DNS: the upstream is unreachable")
        peers = "; ".join(describe_peer(p) for r in admin_rules for p in r.get("from", []))
        ok(f"{where}: port http open, port admin only from {peers}, egress to DNS and the upstream")


def describe_peer(peer):
    def labels(selector):
        return ",".join(f"{k}={v}" for k, v in (selector or {}).get("matchLabels", {}).items()) or "any"
    parts = []
    if "podSelector" in peer:
        parts.append(f"pods {labels(peer['podSelector'])}")
    if "namespaceSelector" in peer:
        parts.append(f"in namespaces {labels(peer['namespaceSelector'])}")
    return " ".join(parts) or str(peer)


def check_pod_monitors(where0, monitors, proxy_ports):
    """Each PodMonitor scrapes /metrics on the proxy pods' admin port, and sets the labels
    deploy/monitoring's rules and dashboard read."""
    rules_text = ALERTS.read_text()
    for pm in monitors:
        where = f"{where0} PodMonitor {pm['metadata']['name']}"
        spec = pm["spec"]
        selected = [(labels, c) for labels, c in proxy_ports
                    if labels_match(spec.get("selector", {}).get("matchLabels", {}), labels)]
        if not selected:
            fail(where, "selects no pod with an invent-proxy container")
            continue
        endpoints = spec.get("podMetricsEndpoints", [])
        if not endpoints:
            fail(where, "has no podMetricsEndpoints")
        for ep in endpoints:
            for _, c in selected:
                admin = container_port(c, "admin")
                if container_port(c, ep.get("port")) != admin:
                    fail(where, f"scrapes port {ep.get('port')!r}, not the admin port (`admin`, {admin})")
            if ep.get("path", "/metrics") != "/metrics":
                fail(where, f"scrapes {ep.get('path')}, not /metrics")
            relabeled = {r.get("targetLabel"): r.get("sourceLabels") for r in ep.get("relabelings", [])}
            if "pod_ready" in rules_text and relabeled.get("pod_ready") != ["__meta_kubernetes_pod_ready"]:
                fail(where, "no relabeling of __meta_kubernetes_pod_ready to pod_ready, which alerts.yaml reads")
        job = spec.get("jobLabel")
        if job and not all(job in labels for labels, _ in selected):
            fail(where, f"jobLabel {job} is not a label of the proxy pods")
        ok(f"{where} scrapes /metrics on port admin of the proxy pods"
           + (f", job from the pods' {job}" if job else ""))


def check_prometheus_rules(where0, rules_docs):
    expected = yaml.safe_load(ALERTS.read_text())
    for pr in rules_docs:
        where = f"{where0} PrometheusRule {pr['metadata']['name']}"
        if pr.get("spec") != expected:
            fail(where, f"its spec is not {rel(ALERTS)}: edit that file, then write this one from it with "
                 "`python3 deploy/check.py prometheusrule --write`")
        else:
            ok(f"{where}: the rules of {rel(ALERTS)}")


# ---------------------------------------------------------------- custom resources

def crd_schema(kind):
    """The JSON schema of a monitoring.coreos.com/v1 kind, every object closed to fields
    it does not define (the API server's strict field validation)."""
    from cloudcoil.models.prometheus_operator import v1

    def close(node):
        if isinstance(node, dict):
            if "properties" in node and "additionalProperties" not in node:
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)
        return node

    return close(getattr(v1, kind).model_json_schema(by_alias=True, mode="validation"))


def schema_errors(error):
    """The innermost errors under a jsonschema error (an Optional field's `null` branch left out)."""
    if not error.context:
        yield error
        return
    for sub in error.context:
        if sub.validator == "type" and sub.validator_value == "null":
            continue
        yield from schema_errors(sub)


def cmd_crds(rendered, core_out):
    """Validates the custom resources of a rendering (CRD_KINDS) against their schema, and
    writes the other documents to CORE_OUT for kubernetes-validate."""
    import jsonschema
    from importlib.metadata import version

    where0 = rel(rendered)
    docs = [d for d in yaml.safe_load_all(Path(rendered).read_text()) if d]
    core = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in CRD_KINDS]
    custom = [d for d in docs if (d.get("apiVersion"), d.get("kind")) in CRD_KINDS]
    Path(core_out).write_text(yaml.safe_dump_all(core, sort_keys=False))
    if not custom:
        return
    models = version("cloudcoil.models.prometheus_operator")
    for d in custom:
        where = f"{where0} {d['kind']} {d['metadata']['name']}"
        validator = jsonschema.Draft202012Validator(crd_schema(d["kind"]))
        errors = [leaf for e in validator.iter_errors(d) for leaf in schema_errors(e)]
        for e in errors:
            fail(where, f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}")
        if not errors:
            ok(f"{where} validates (strict) against the prometheus-operator v{models.rsplit('.', 1)[0]} CRD schema "
               f"(cloudcoil-models-prometheus-operator {models})")


class _BlockDumper(yaml.SafeDumper):
    pass


_BlockDumper.add_representer(
    str, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


def cmd_prometheusrule(write):
    """Checks that the PrometheusRule's spec is the rule file; with --write, makes it so,
    keeping the PrometheusRule's leading comments and metadata."""
    text = PROMETHEUS_RULE.read_text()
    manifest = yaml.safe_load(text)
    rules = yaml.safe_load(ALERTS.read_text())
    if not write:
        if manifest.get("spec") != rules:
            fail(rel(PROMETHEUS_RULE), f"its spec is not {rel(ALERTS)}: run `python3 deploy/check.py prometheusrule --write`")
        else:
            ok(f"{rel(PROMETHEUS_RULE)}: the rules of {rel(ALERTS)}")
        return
    head = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        head.append(line)
    manifest["spec"] = rules
    body = yaml.dump(manifest, Dumper=_BlockDumper, sort_keys=False, width=4096, default_flow_style=False)
    PROMETHEUS_RULE.write_text("".join(line + "\n" for line in head) + body)
    ok(f"{rel(PROMETHEUS_RULE)} written from {rel(ALERTS)}")


def check_proxy_container(binary, where, pod_spec, c, configmaps):
    args = c.get("args", [])
    if "--config" not in args:
        fail(where, "no --config in args")
        return
    config_path = args[args.index("--config") + 1]
    mount = next((m for m in c.get("volumeMounts", []) if config_path.startswith(m["mountPath"].rstrip("/") + "/")), None)
    if mount is None:
        fail(where, f"nothing is mounted where --config {config_path} is")
        return
    volume = next((v for v in pod_spec.get("volumes", []) if v["name"] == mount["name"]), {})
    cm_name = volume.get("configMap", {}).get("name")
    cm = configmaps.get(cm_name)
    if cm is None:
        fail(where, f"volume {mount['name']} is not a rendered ConfigMap ({cm_name})")
        return
    if not re.search(r"-[a-z0-9]{10}$", cm_name):
        fail(where, f"ConfigMap {cm_name} has no content hash suffix: a config change would not roll the pods")
    key = config_path[len(mount["mountPath"].rstrip("/")) + 1:]
    data = cm.get("data", {})
    if key not in data:
        fail(where, f"ConfigMap {cm_name} has no key {key}")
        return
    config = yaml.safe_load(data[key])
    ok(f"{where}: config {config_path} from ConfigMap {cm_name} (hash-suffixed)")

    # Secrets and other variables: what the container's env provides, nothing more. An
    # ${NAME} the Deployment does not set makes `invent-proxy check` fail.
    env = {}
    for e in c.get("env", []):
        source = e.get("valueFrom", {})
        if "value" in e:
            env[e["name"]] = e["value"]
        elif "secretKeyRef" in source:
            env[e["name"]] = f"dummy-{e['name'].lower()}"
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            env[e["name"]] = configmaps.get(ref["name"], {}).get("data", {}).get(ref["key"], "dummy")
        else:
            env[e["name"]] = "dummy"
    secret_refs = [e["name"] for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})]
    for name in env_names(data[key]):
        if name in env and name not in secret_refs and re.search(r"SECRET|KEY|TOKEN|PASSWORD", name):
            fail(where, f"${{{name}}} looks like a secret but does not come from a Secret")
    with tempfile.TemporaryDirectory() as tmp:
        for k, v in data.items():
            Path(tmp, k).write_text(v)
        run_check(binary, Path(tmp, key), env, f"{where}: rendered {key}")

    # Ports and probes agree with the config.
    listen_port = port_of(config.get("listen", "0.0.0.0:8080"))
    if container_port(c, "http") != listen_port:
        fail(where, f"container port `http` is not the config's listen port {listen_port}")
    admin = (config.get("admin") or {}).get("listen")
    if not admin:
        fail(where, "the config has no admin.listen: nothing to probe")
    else:
        if host_of(admin) in ("127.0.0.1", "::1", "localhost"):
            fail(where, f"admin.listen {admin} is loopback: the kubelet probes the pod's IP")
        admin_port = port_of(admin)
        if container_port(c, "admin") != admin_port:
            fail(where, f"container port `admin` is not admin.listen's port {admin_port}")
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            p = c.get(probe, {}).get("httpGet")
            if not p:
                fail(where, f"no {probe} (httpGet {path})")
            elif p.get("path") != path or container_port(c, p.get("port")) != admin_port:
                fail(where, f"{probe} is not GET {path} on the admin port {admin_port}")
        ok(f"{where}: listen :{listen_port} = port http; admin :{admin_port} = port admin, probed at /readyz and /healthz")

    # SIGKILL only after the preStop sleep and the proxy's own grace period.
    grace = duration_s(config["shutdown_grace_period"]) if "shutdown_grace_period" in config else DEFAULT_GRACE_S
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    termination = pod_spec.get("terminationGracePeriodSeconds", 30)
    if termination <= pre_stop + grace:
        fail(where, f"terminationGracePeriodSeconds {termination} is not above preStop {pre_stop}s + "
             f"shutdown_grace_period {grace:g}s")
    else:
        ok(f"{where}: terminationGracePeriodSeconds {termination} > preStop {pre_stop}s + shutdown_grace_period {grace:g}s")

    # Restricted: non-root, read-only root, no privilege escalation, no capabilities, seccomp.
    pod_sc = pod_spec.get("securityContext", {})
    sc = {**pod_sc, **c.get("securityContext", {})}
    wanted = {"runAsNonRoot": True, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False}
    for k, v in wanted.items():
        if sc.get(k) is not v:
            fail(where, f"securityContext.{k} is not {str(v).lower()}")
    if not isinstance(sc.get("runAsUser"), int) or sc["runAsUser"] == 0:
        fail(where, "securityContext.runAsUser is not a non-zero uid")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []) or sc.get("capabilities", {}).get("add"):
        fail(where, "capabilities: not drop [ALL] with nothing added")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(where, "seccompProfile is not RuntimeDefault")
    res = c.get("resources", {})
    for part in ("requests", "limits"):
        if "memory" not in res.get(part, {}):
            fail(where, f"no memory in resources.{part}")
    if "cpu" not in res.get("requests", {}):
        fail(where, "no cpu request: the HPA's utilization is a share of it")
    ok(f"{where}: securityContext restricted, requests and limits set")


# ---------------------------------------------------------------- compose

def compose_value(value):
    """A compose `${NAME:-default}` value as the proxy would see it, unset variables
    taking their default (a dummy without one)."""
    def sub(m):
        return m.group(3) if m.group(2) in (":-", "-") else f"dummy-{m.group(1).lower()}"
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-|:?\?)([^}]*))?\}", sub, str(value))


def cmd_compose(binary, schema_path):
    import jsonschema

    path = DEPLOY / "docker" / "compose.yaml"
    where = rel(path)
    compose = yaml.safe_load(path.read_text())
    schema = json.loads(Path(schema_path).read_text())
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    for e in errors:
        fail(where, f"compose-spec schema: {'/'.join(map(str, e.path))}: {e.message}")
    if not errors:
        ok(f"{where} validates against the Compose Specification schema")
    services = compose.get("services", {})
    proxy = None
    for name, svc in services.items():
        build = svc.get("build")
        if isinstance(build, dict):
            context = (path.parent / build.get("context", ".")).resolve()
            dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
            if dockerfile == DOCKERFILE.resolve():
                proxy = (name, svc)
                if context != REPO:
                    fail(where, f"service {name} builds with context {rel(context)}, not the repository's top "
                         "(the Dockerfile copies the crate from it)")
    if proxy is None:
        fail(where, "no service builds deploy/docker/Dockerfile")
        return
    name, svc = proxy
    config_dir = dockerfile_config_path().rsplit("/", 1)[0]
    mounted = None
    for v in svc.get("volumes", []):
        source, target = v.split(":")[:2] if isinstance(v, str) else (v["source"], v["target"])
        if target == dockerfile_config_path() or target == config_dir:
            mounted = (path.parent / source).resolve()
            if target == config_dir:
                mounted = mounted / "invent-proxy.yaml"
    if mounted is None or not mounted.is_file():
        fail(where, f"service {name} mounts no config file at {dockerfile_config_path()}")
        return
    env_section = svc.get("environment", {})
    if isinstance(env_section, list):
        env_section = dict(e.split("=", 1) for e in env_section)
    env = {k: compose_value(v) for k, v in env_section.items()}
    run_check(binary, mounted, env, f"{where} service {name}: {rel(mounted)} with the service's environment")
    config = yaml.safe_load(mounted.read_text())
    upstream_host = re.match(r"https?://([^:/]+)", config["upstream"]["url"]).group(1)
    if upstream_host not in services:
        fail(where, f"the proxy's upstream {upstream_host} is not a compose service")
    published = {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in svc.get("ports", [])}
    for key, address in (("listen", config.get("listen", "0.0.0.0:8080")),
                         ("admin.listen", (config.get("admin") or {}).get("listen"))):
        if address and port_of(address) not in published:
            fail(where, f"service {name} does not publish the {key} port {port_of(address)}")
        if address and host_of(address) in ("127.0.0.1", "::1"):
            fail(where, f"{key} {address} is loopback inside the container: unreachable through the published port")
    ok(f"{where}: proxy in front of service {upstream_host}, ports {sorted(published)} published")


# ---------------------------------------------------------------- Dockerfile

def dockerfile_instructions():
    """(INSTRUCTION, arguments) of deploy/docker/Dockerfile, continuations joined."""
    out, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        instr, _, rest = current.partition(" ")
        out.append((instr.upper(), rest.strip()))
        current = ""
    return out


def dockerfile_config_path():
    for instr, rest in dockerfile_instructions():
        if instr == "ENV":
            m = re.search(r"INVENT_PROXY_CONFIG[= ](\S+)", rest)
            if m:
                return m.group(1).strip('"')
    return "/etc/invent-proxy/invent-proxy.yaml"


def cargo_builds(text):
    """The `cargo build ...` commands in a shell text, as word lists."""
    return [m.group(0).split() for m in re.finditer(r"cargo build(?:[ \t]+--?[A-Za-z][\w-]*)*", text)]


def cmd_dockerfile(rustc_version):
    where = rel(DOCKERFILE)
    instrs = dockerfile_instructions()
    stages = [i for i, (instr, _) in enumerate(instrs) if instr == "FROM"]
    if len(stages) < 2:
        fail(where, "not a multi-stage build")
        return
    build = instrs[stages[0]:stages[1]]
    runtime = instrs[stages[-1]:]
    build_image = build[0][1].split()[0]
    runtime_image = runtime[0][1].split()[0]
    m = re.fullmatch(r"rust:(\d+)\.(\d+)(?:\.\d+)?-(\w+)", build_image)
    if not m:
        fail(where, f"build stage {build_image} is not an official rust:X.Y-<debian> image")
    else:
        version = (int(m.group(1)), int(m.group(2)))
        cargo_toml = (REPO / "Cargo.toml").read_text()
        msrv = tuple(int(x) for x in re.search(r'rust-version\s*=\s*"(\d+)\.(\d+)', cargo_toml).groups())
        ci = tuple(int(x) for x in re.match(r"rustc (\d+)\.(\d+)", rustc_version).groups())
        if version < msrv:
            fail(where, f"{build_image} is older than the crate's rust-version {msrv[0]}.{msrv[1]}")
        if version != ci:
            fail(where, f"{build_image} is not the toolchain CI builds and tests with ({rustc_version.strip()}): "
                 f"use rust:{ci[0]}.{ci[1]}-{m.group(3)}")
        else:
            ok(f"{where}: build stage {build_image}, the toolchain CI uses ({rustc_version.strip()})")
        codename = {"bookworm": "debian12", "trixie": "debian13"}.get(m.group(3))
        if codename and codename not in runtime_image:
            fail(where, f"the build stage is Debian {m.group(3)} but the runtime {runtime_image} is not {codename}: "
                 "the binary needs the glibc it was linked against")
    if not any(instr == "COPY" and rest.split() == [".", "."] for instr, rest in build):
        fail(where, "the build stage does not COPY . . (the context check assumes the whole context)")
    docker_builds = [b for instr, rest in build if instr == "RUN" for b in cargo_builds(rest)]
    ci_builds = cargo_builds(CI_BUILD_SCRIPT.read_text())
    ci_run = (REPO / ".ci" / "run").read_text()
    if rel(CI_BUILD_SCRIPT) not in ci_run:
        fail(where, f"{rel(CI_BUILD_SCRIPT)}, whose release build is compared, is no longer run by .ci/run")
    if len(docker_builds) != 1:
        fail(where, f"the build stage runs {len(docker_builds)} cargo build commands, not one")
    elif not ci_builds:
        fail(where, f"no cargo build in {rel(CI_BUILD_SCRIPT)} to compare with")
    elif any(sorted(docker_builds[0]) != sorted(b) for b in ci_builds):
        fail(where, f"`{' '.join(docker_builds[0])}` is not CI's `{' '.join(ci_builds[0])}` ({rel(CI_BUILD_SCRIPT)})")
    else:
        ok(f"{where}: `{' '.join(docker_builds[0])}`, as CI runs it ({rel(CI_BUILD_SCRIPT)})")
    final = dict((instr, rest) for instr, rest in runtime)  # the last of each
    user = final.get("USER", "")
    if not user or user.split(":")[0] in ("0", "root"):
        fail(where, "the runtime stage does not run as a non-root USER")
    elif not user.split(":")[0].isdigit():
        fail(where, f"USER {user} is not numeric: Kubernetes' runAsNonRoot cannot verify a name")
    if final.get("STOPSIGNAL") != "SIGTERM":
        fail(where, "no STOPSIGNAL SIGTERM")
    exposed = {int(p.split("/")[0]) for instr, rest in runtime if instr == "EXPOSE" for p in rest.split()}
    for cfg in DEPLOY.rglob("invent-proxy.yaml"):
        c = yaml.safe_load(cfg.read_text())
        for key, address in (("listen", c.get("listen", "0.0.0.0:8080")), ("admin.listen", (c.get("admin") or {}).get("listen"))):
            if address and port_of(address) not in exposed:
                fail(where, f"{rel(cfg)}'s {key} port {port_of(address)} is not EXPOSEd")
    if not dockerfile_config_path().startswith("/etc/invent-proxy/"):
        fail(where, "INVENT_PROXY_CONFIG is not under /etc/invent-proxy/")
    entry = json.loads(final.get("ENTRYPOINT", "[]") or "[]")
    copied = [rest.split()[-1] for instr, rest in runtime if instr == "COPY"]
    if not entry or entry[0] not in copied:
        fail(where, f"ENTRYPOINT {entry} is not the binary the runtime stage copies ({copied})")
    if "HEALTHCHECK" not in final and "/healthz" not in DOCKERFILE.read_text():
        fail(where, "neither a HEALTHCHECK nor the documented probe on /healthz")
    ok(f"{where}: USER {user}, EXPOSE {sorted(exposed)}, STOPSIGNAL SIGTERM, config at {dockerfile_config_path()}")


# ---------------------------------------------------------------- build context

def dockerignore_rules():
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((negate, re.compile(regex)))
    return rules


def ignored(path, rules):
    """Docker's rule: a path is out when the last pattern matching it, or one of its
    parent directories, is not a `!` exception."""
    parts = path.split("/")
    candidates = ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]
    out = False
    for negate, regex in rules:
        if any(regex.fullmatch(c) for c in candidates):
            out = not negate
    return out


def cmd_context(directory):
    """Lays out in DIRECTORY the build context Docker would send (the repository's files
    less .dockerignore), for deploy/check.sh to run cargo's build planning in."""
    rules = dockerignore_rules()
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    files = [f for f in files if f and (REPO / f).is_file()]
    kept = [f for f in files if not ignored(f, rules)]
    for must_go in ("target/release/invent-proxy", ".git/HEAD", "fuzz/target/x"):
        if not ignored(must_go, rules):
            fail(".dockerignore", f"lets {must_go} into the build context")
    for must_stay in ("Cargo.toml", "Cargo.lock", "src/main.rs"):
        if must_stay not in kept:
            fail(".dockerignore", f"keeps {must_stay} out of the build context")
    for f in files:
        if f.startswith("src/") and f not in kept:
            fail(".dockerignore", f"keeps {f} out of the build context")
    out = Path(directory)
    shutil.rmtree(out, ignore_errors=True)
    for f in kept:
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, out / f)
    size = sum((REPO / f).stat().st_size for f in kept)
    ok(f".dockerignore: build context of {len(kept)} files ({size / 1e6:.1f} MB) laid out in {rel(out)}")


# ---------------------------------------------------------------- systemd

def unit_entries(unit):
    """(section, key, value) of a unit file, in order."""
    entries, section = [], ""
    for line in Path(unit).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif line and not line.startswith(("#", ";")) and "=" in line:
            k, v = line.split("=", 1)
            entries.append((section, k.strip(), v.strip()))
    return entries


def cmd_systemd(unit):
    where = rel(unit)
    values = {}
    for _, k, v in unit_entries(unit):
        values.setdefault(k, []).append(v)
    # Who it runs as: a dynamic user (deploy/systemd/), or the Debian package's system
    # user (deploy/deb/), never root.
    user = values.get("User", [None])[-1]
    if values.get("DynamicUser", [None])[-1] == "yes":
        who = "DynamicUser"
    elif user and user not in ("root", "0") and values.get("Group", [None])[-1]:
        who = f"User={user}"
    else:
        who = None
        fail(where, "neither DynamicUser=yes nor a non-root User= and Group=")
    wanted = {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        "KillSignal": "SIGTERM",
    }
    for k, v in wanted.items():
        if values.get(k, [None])[-1] != v:
            fail(where, f"{k}={v} is missing")
    if "/bin/kill -HUP $MAINPID" not in values.get("ExecReload", []):
        fail(where, "no ExecReload=/bin/kill -HUP $MAINPID")
    if not values.get("EnvironmentFile"):
        fail(where, "no EnvironmentFile for the secrets")
    if "RUST_LOG" in " ".join(values.get("Environment", [])):
        fail(where, "sets RUST_LOG, which overrides the config's log.level")
    start = values.get("ExecStart", [""])[-1].split()
    if "--config" not in start:
        fail(where, "ExecStart runs the proxy without --config")
    stop = duration_s(values.get("TimeoutStopSec", ["90s"])[-1])
    reference = yaml.safe_load((REPO / "config" / "invent-proxy.yaml").read_text())
    grace = duration_s(reference.get("shutdown_grace_period", "30s"))
    if stop <= grace:
        fail(where, f"TimeoutStopSec {stop:g}s is not above shutdown_grace_period {grace:g}s")
    ok(f"{where}: {who}, ProtectSystem=strict, NoNewPrivileges, only CAP_NET_BIND_SERVICE, "
       f"ExecReload SIGHUP, EnvironmentFile, TimeoutStopSec {stop:g}s > grace {grace:g}s")


def cmd_deb_unit(unit, packaged):
    """The Debian package's unit is the other one with the package's paths and user:
    /usr/bin for /usr/local/bin, and the system user for DynamicUser= (with RemoveIPC=,
    which DynamicUser= implies). Any other difference is drift between the two."""
    where = rel(packaged)
    expected = []
    for section, k, v in unit_entries(unit):
        if (k, v) == ("DynamicUser", "yes"):
            expected += [(section, "User", "invent-proxy"), (section, "Group", "invent-proxy"),
                         (section, "RemoveIPC", "yes")]
        else:
            expected.append((section, k, v.replace("/usr/local/bin/invent-proxy", "/usr/bin/invent-proxy")))
    found = unit_entries(packaged)
    if found != expected:
        for e in expected:
            if e not in found:
                fail(where, f"lacks {e[0]} {e[1]}={e[2]} (from {rel(unit)})")
        for f in found:
            if f not in expected:
                fail(where, f"has {f[0]} {f[1]}={f[2]}, which {rel(unit)} does not")
        if set(found) == set(expected):
            fail(where, f"has the settings of {rel(unit)} in another order")
        return
    ok(f"{where}: {rel(unit)} with /usr/bin/invent-proxy and User=/Group=invent-proxy, nothing else")


# ---------------------------------------------------------------- GitHub workflows

WORKFLOWS = REPO / ".github" / "workflows"


def cmd_workflows():
    """What actionlint cannot know: the workflows agree with the rest of the repository.
    Every job container is the Dockerfile's build image (the toolchain CI uses, which
    `check.py dockerfile` compares with the running rustc); every action is pinned to a
    commit, with its version in a comment; ci.yml runs .ci/run; release.yml builds CI's
    release command, checks the .deb with deploy/deb/check.sh, and pushes the image of
    deploy/docker/Dockerfile for amd64 and arm64."""
    build = dockerfile_instructions()
    build_image = next(rest for instr, rest in build if instr == "FROM").split()[0]
    ci_build = " ".join(cargo_builds(CI_BUILD_SCRIPT.read_text())[0])
    files = sorted(WORKFLOWS.glob("*.y*ml"))
    names = [f.name for f in files]
    if names != ["ci.yml", "release.yml"]:
        fail(rel(WORKFLOWS), f"holds {names}, not ci.yml and release.yml")
    for path in files:
        where = rel(path)
        text = path.read_text()
        wf = yaml.safe_load(text)
        for job_id, job in (wf.get("jobs") or {}).items():
            container = job.get("container")
            image = container.get("image") if isinstance(container, dict) else container
            if image and image != build_image:
                fail(where, f"job {job_id} runs in {image}, not {build_image} (the Dockerfile's build image)")
            if not job.get("timeout-minutes"):
                fail(where, f"job {job_id} has no timeout-minutes")
        for m in re.finditer(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", text, re.M):
            ref = m.group(1).split("@", 1)
            if len(ref) != 2 or not re.fullmatch(r"[0-9a-f]{40}", ref[1]):
                fail(where, f"{m.group(1)} is not pinned to a commit")
            elif not re.search(r"#\s*v\d+\.\d+\.\d+", m.group(2)):
                fail(where, f"{m.group(1)} has no `# vX.Y.Z` comment saying which release the commit is")
        runs = "\n".join(step.get("run", "") for job in (wf.get("jobs") or {}).values()
                         for step in job.get("steps", []))
        uses = [step for job in (wf.get("jobs") or {}).values() for step in job.get("steps", []) if "uses" in step]
        if path.name == "ci.yml":
            if "bash .ci/run" not in runs:
                fail(where, "does not run .ci/run")
            elif not failures:
                ok(f"{where}: runs .ci/run in {build_image}; actions pinned to commits")
        if path.name == "release.yml":
            problems = []
            if ci_build not in runs:
                problems.append(f"does not run CI's `{ci_build}`")
            if "deploy/deb/check.sh" not in runs:
                problems.append("does not check the .deb with deploy/deb/check.sh")
            push = [s for s in uses if s["uses"].startswith("docker/build-push-action@")]
            if not push or push[0].get("with", {}).get("file") != rel(DOCKERFILE) or \
                    set(push[0].get("with", {}).get("platforms", "").split(",")) != {"linux/amd64", "linux/arm64"}:
                problems.append(f"does not build {rel(DOCKERFILE)} for linux/amd64,linux/arm64")
            if not any(s["uses"].startswith("docker/setup-buildx-action@") for s in uses):
                problems.append("does not set up BuildKit (buildx), which the Dockerfile needs")
            for p in problems:
                fail(where, p)
            if not problems and not failures:
                ok(f"{where}: `{ci_build}`, deploy/deb/check.sh, {rel(DOCKERFILE)} for amd64 and arm64 "
                   f"(BuildKit), in {build_image}; actions pinned to commits")


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "k8s":
        required = []
        if "--require" in args:
            i = args.index("--require")
            required = args[i + 1].split(",")
            args = args[:i] + args[i + 2:]
        cmd_k8s(args[0], args[1], required)
    elif command == "crds":
        cmd_crds(args[0], args[1])
    elif command == "prometheusrule":
        cmd_prometheusrule("--write" in args)
    elif command == "configs":
        cmd_configs(args[0])
    elif command == "compose":
        cmd_compose(args[0], args[1])
    elif command == "dockerfile":
        cmd_dockerfile(args[0])
    elif command == "context":
        cmd_context(args[0])
    elif command == "systemd":
        cmd_systemd(args[0])
    elif command == "deb-unit":
        cmd_deb_unit(args[0], args[1])
    elif command == "workflows":
        cmd_workflows()
    else:
        sys.exit(f"unknown command {command}")
    finish()


if __name__ == "__main__":
    main(sys.argv)
