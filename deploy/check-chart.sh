#!/usr/bin/env bash
# The Helm chart's CI step (issue 31). Run deploy/install-tools.sh first.
#
#  1. helm lint --strict with each values file in deploy/ci-values;
#  2. helm template with each, and every rendered manifest validated offline
#     against the Kubernetes JSON schemas of $K8S_VERSIONS (kubernetes-validate,
#     strict: unknown fields fail); the custom resources (ServiceMonitor,
#     PrometheusRule, KEDA's ScaledObject) have no schema there and are
#     checked structurally instead; every pod is checked to be hardened;
#  3. kube-score on each render: any CRITICAL fails;
#  4. wrong values fail `helm template` with a message naming the value;
#  5. the chart README lists every value in values.yaml;
#  6. deploy/chart-env-check.mjs: the chart cannot drift from the code.
# Exits non-zero on any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CHART="$ROOT/deploy/helm/action-router"
VALUES_DIR="$ROOT/deploy/ci-values"
TOOLS="${ACTION_ROUTER_TOOLS:-$HOME/.cache/action-router-tools}"
export PATH="$TOOLS/bin:$PATH"
PYTHON="$TOOLS/venv/bin/python"
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas at hand.
K8S_VERSIONS="1.30.0 1.37.0"

# kube-score checks turned off, and why:
# - container-image-pull-policy (wants Always): the schema refuses the
#   mutable tag `latest` and image.digest pins an image; IfNotPresent means a
#   router can restart while the registry is unreachable.
# - --ignore-container-cpu-limit: no CPU limit by default. A CFS quota
#   throttles the event loop and the store's writer thread in bursts (latency
#   for every run in flight); the CPU request reserves what routing needs, and
#   the memory limit, which the heap follows, is set.
# Optional checks turned on because the chart meets them: seccomp profile and
# container ports. Warnings (one replica by default; topology spread instead
# of a host podAntiAffinity, which kube-score does not count) are printed.
KUBE_SCORE_ARGS=(
  --output-format ci
  --ignore-test container-image-pull-policy
  --ignore-container-cpu-limit
  --enable-optional-test container-seccomp-profile
  --enable-optional-test container-ports-check
)

OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
failures=0
started=$SECONDS
step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }

for tool in helm kube-score; do
  command -v "$tool" >/dev/null || { echo "check-chart: $tool is missing: run deploy/install-tools.sh"; exit 1; }
done
[[ -x "$PYTHON" ]] || { echo "check-chart: kubernetes-validate is missing: run deploy/install-tools.sh"; exit 1; }

mapfile -t VALUES < <(ls "$VALUES_DIR"/*.yaml)
for required in minimal everything agent-only existing-secret; do
  [[ -f "$VALUES_DIR/$required.yaml" ]] || fail "deploy/ci-values/$required.yaml is missing"
done

step "helm lint --strict"
for values in "${VALUES[@]}"; do
  name=$(basename "$values" .yaml)
  if log=$(helm lint --strict "$CHART" -f "$values" 2>&1); then ok "lint $name"; else fail "lint $name"; echo "$log"; fi
done

step "helm template, and the manifests against the Kubernetes schemas ($K8S_VERSIONS)"
for values in "${VALUES[@]}"; do
  name=$(basename "$values" .yaml)
  if helm template ci "$CHART" -f "$values" >"$OUT/$name.yaml" 2>"$OUT/$name.err"; then
    ok "template $name: $(grep -c '^kind:' "$OUT/$name.yaml") manifests"
  else
    fail "template $name"; cat "$OUT/$name.err"
  fi
done
CHART="$CHART" "$PYTHON" - "$K8S_VERSIONS" "$OUT"/*.yaml <<'PY' || failures=$((failures + 1))
# Every manifest against the Kubernetes schemas (strict); custom resources
# structurally; every pod hardened; the files the chart embeds rendered.
import os, sys, yaml, kubernetes_validate

versions = sys.argv[1].split()
problems = []
CRDS = {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"), ("keda.sh/v1alpha1", "ScaledObject")}
WORKLOADS = {"Deployment", "StatefulSet"}

def need(cond, where, what):
    if not cond:
        problems.append(f"{where}: {what}")

def check_crd(doc, where):
    spec = doc.get("spec") or {}
    kind = doc["kind"]
    need(doc.get("metadata", {}).get("name"), where, "no metadata.name")
    if kind == "ServiceMonitor":
        need(spec.get("selector", {}).get("matchLabels"), where, "spec.selector.matchLabels missing")
        eps = spec.get("endpoints") or []
        need(eps and all(e.get("port") and e.get("path") for e in eps), where, "every endpoint needs port and path")
    elif kind == "PrometheusRule":
        groups = spec.get("groups") or []
        need(groups, where, "no rule groups")
        for g in groups:
            need(isinstance(g.get("name"), str) and g.get("rules"), where, f"group {g.get('name')} has no name or rules")
            for r in g.get("rules", []):
                need(("alert" in r) != ("record" in r) and isinstance(r.get("expr"), str), where, f"rule {r.get('alert') or r.get('record')}: one of alert/record, and expr")
                url = (r.get("annotations") or {}).get("runbook_url", "")
                need("alert" not in r or url.startswith("http"), where, f"alert {r.get('alert')} has no runbook_url")
    elif kind == "ScaledObject":
        need(spec.get("scaleTargetRef", {}).get("name"), where, "spec.scaleTargetRef.name missing")
        for t in spec.get("triggers") or []:
            md = t.get("metadata") or {}
            need(t.get("type") == "kafka", where, "trigger type is not kafka")
            for key in ("bootstrapServers", "consumerGroup", "topic", "lagThreshold"):
                need(key in md, where, f"kafka trigger without {key}")
            # KEDA's metadata is map[string]string: a number or a boolean there is refused by its webhook.
            need(all(isinstance(v, str) for v in md.values()), where, "trigger metadata values must all be strings")
        need(spec.get("minReplicaCount", 1) <= spec.get("maxReplicaCount", 100), where, "minReplicaCount above maxReplicaCount")

def check_pod(doc, where):
    pod = doc["spec"]["template"]["spec"]
    sc = pod.get("securityContext") or {}
    need(sc.get("runAsNonRoot") is True and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where, "pod not runAsNonRoot with seccomp RuntimeDefault")
    need(pod.get("automountServiceAccountToken") is False, where, "automountServiceAccountToken is not false")
    need(pod.get("topologySpreadConstraints"), where, "no topologySpreadConstraints")
    need(any(v["name"] == "tmp" and "emptyDir" in v for v in pod.get("volumes", [])), where, "no emptyDir for /tmp")
    for c in pod["containers"]:
        csc = c.get("securityContext") or {}
        need(csc.get("readOnlyRootFilesystem") is True, where, "root filesystem not read-only")
        need(csc.get("allowPrivilegeEscalation") is False, where, "privilege escalation allowed")
        need(csc.get("capabilities", {}).get("drop") == ["ALL"], where, "capabilities not all dropped")
        need(csc.get("runAsUser") == 10001, where, "not uid 10001")
        res = c.get("resources") or {}
        need(res.get("limits", {}).get("memory") and res.get("requests", {}).get("cpu"), where, "memory limit or CPU request missing")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            need(c.get(probe, {}).get("httpGet", {}).get("path") == path, where, f"{probe} is not on {path}")
        sp = c.get("startupProbe") or {}
        need(sp.get("periodSeconds", 0) * sp.get("failureThreshold", 0) >= (600 if c.get("args") != ["agent"] else 60), where, "startup probe shorter than a store rebuild may take (10 minutes)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    need(grace * 1000 > 15000, where, "terminationGracePeriodSeconds not above ROUTER_SHUTDOWN_GRACE_MS")

for path in sys.argv[2:]:
    name = os.path.basename(path)
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    kinds = {}
    for doc in docs:
        where = f"{name}: {doc['kind']}/{doc['metadata']['name']}"
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            check_crd(doc, where)
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                problems.append(f"{where}: invalid against Kubernetes {version}: {e.message} at {'.'.join(map(str, e.path))}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{where}: no Kubernetes {version} schema for {doc['apiVersion']} {doc['kind']}")
        if doc["kind"] in WORKLOADS:
            check_pod(doc, where)
    crds = sorted(k for (_, k) in CRDS if k in kinds)
    print(f"ok    {name}: {len(docs)} manifests ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))})"
          + (f"; {', '.join(crds)} checked structurally (no schema in kubernetes-validate)" if crds else ""))
    if name == "everything.yaml":
        wanted = {"StatefulSet": 1, "Deployment": 2, "HorizontalPodAutoscaler": 1, "ScaledObject": 1, "Ingress": 1,
                  "ServiceMonitor": 1, "PodDisruptionBudget": 3, "NetworkPolicy": 1, "Secret": 1}
        for kind, n in wanted.items():
            need(kinds.get(kind, 0) >= n, name, f"expected {n} {kind}, rendered {kinds.get(kind, 0)}")
        rules_file = os.path.join(os.environ["CHART"], "files/prometheus-rules.yaml")
        dashboard_file = os.path.join(os.environ["CHART"], "files/grafana-dashboard.json")
        if os.path.exists(rules_file):
            need(kinds.get("PrometheusRule") == 1, name, "files/prometheus-rules.yaml exists but no PrometheusRule rendered")
            rule = next(d for d in docs if d["kind"] == "PrometheusRule")
            urls = [r["annotations"]["runbook_url"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
            need(urls and all(u.startswith("https://git.example.com/") for u in urls), name, "runbookBaseUrl did not replace every runbook_url")
        else:
            print("note  files/prometheus-rules.yaml is not there yet: PrometheusRule not checked")
        if os.path.exists(dashboard_file):
            cm = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("grafana_dashboard") == "1"]
            need(len(cm) == 1, name, "files/grafana-dashboard.json exists but no ConfigMap labelled grafana_dashboard=1")
        else:
            print("note  files/grafana-dashboard.json is not there yet: the dashboard ConfigMap is not checked")

for p in problems:
    print(f"FAIL  {p}")
sys.exit(1 if problems else 0)
PY

step "NOTES.txt renders"
# helm shows NOTES.txt only on install, which needs a cluster: render a copy of
# the chart in which NOTES.txt is an ordinary template (--debug prints it
# although it is not YAML).
cp -r "$CHART" "$OUT/notes-chart" && mv "$OUT/notes-chart/templates/NOTES.txt" "$OUT/notes-chart/templates/notes.yaml"
for values in "${VALUES[@]}"; do
  name=$(basename "$values" .yaml)
  notes=$(helm template ci "$OUT/notes-chart" -f "$values" --show-only templates/notes.yaml --debug 2>&1 |
    sed -n '/^# Source: action-router\/templates\/notes.yaml/,/^Error:/p' | sed '1d;/^Error:/d')
  if grep -q "is installed as ci" <<<"$notes" && ! grep -q "<no value>" <<<"$notes"; then
    ok "NOTES.txt with $name: $(grep -c . <<<"$notes") lines"
  else
    fail "NOTES.txt with $name"; echo "$notes"
  fi
done

step "kube-score ${KUBE_SCORE_ARGS[*]}"
for values in "${VALUES[@]}"; do
  name=$(basename "$values" .yaml)
  [[ -s "$OUT/$name.yaml" ]] || continue
  report=$(kube-score score "${KUBE_SCORE_ARGS[@]}" "$OUT/$name.yaml")
  status=$?
  grep -E '^\[(WARNING|CRITICAL)\]' <<<"$report" | sort -u | sed 's/^/      /'
  if [[ $status -eq 0 ]] && ! grep -q '^\[CRITICAL\]' <<<"$report"; then ok "kube-score $name: no critical"; else fail "kube-score $name"; fi
done

step "wrong values fail helm template, naming the value"
# Each case: the --set arguments, then text the error must contain.
wrong() {
  local expect=$1; shift
  local err
  if err=$(helm template ci "$CHART" -f "$VALUES_DIR/minimal.yaml" "$@" 2>&1 >/dev/null); then
    fail "helm template $* was accepted"
  elif grep -qF -- "$expect" <<<"$err"; then
    ok "$* -> $(grep -m1 -F -- "$expect" <<<"$err" | sed 's/^ *//; s/^- //' | cut -c1-150)"
  else
    fail "helm template $*: the error does not name $expect:"; echo "$err"
  fi
}
wrong "'/router/replicas': minimum" --set router.replicas=-1
wrong "'/image/tag'" --set image.tag=latest
wrong "'/kafka/brokers/0'" --set 'kafka.brokers[0]=broker-without-port'
wrong "missing property 'brokers'" --set 'kafka.brokers=null'
wrong "additional properties 'KAFKA_BROKER' not allowed" --set config.KAFKA_BROKER=b:9092
wrong "additional properties 'SIGNING_SECRET' not allowed" --set config.SIGNING_SECRET=in-a-configmap
wrong "'/router/resources/limits/memory'" --set router.resources.limits.memory=lots
wrong "router.terminationGracePeriodSeconds (10) must be longer than shutdownGraceMs" --set router.terminationGracePeriodSeconds=10
wrong "router.autoscaling.enabled and router.keda.enabled" --set router.autoscaling.enabled=true --set router.keda.enabled=true
wrong "config.RUNS_STORE (or api.config.RUNS_STORE) must not be false" --set api.enabled=true --set config.RUNS_STORE=false
wrong "'/agents/0/name'" --set 'agents[0].name=Payments_Team' --set 'agents[0].orgId=org_p'
wrong "agents[0].secrets.existingSecret \"theirs\": list which variable" --set 'agents[0].name=p' --set 'agents[0].orgId=org_p' --set 'agents[0].secrets.existingSecret=theirs'
wrong "secrets.values and secrets.existingSecret" --set secrets.existingSecret=mine --set secrets.existingSecretKeys.SIGNING_SECRET=s --set secrets.values.API_TOKEN_SECRET=x

step "the chart README lists every value"
if CHART="$CHART" "$PYTHON" - <<'PY'; then ok "README.md: every value of values.yaml"; else fail "README.md misses values"; fi
import os, re, sys, yaml
chart = os.environ["CHART"]
values = yaml.safe_load(open(os.path.join(chart, "values.yaml")))
readme = open(os.path.join(chart, "README.md")).read()
listed = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
# Free-form maps and lists are one value; agents[] items are agentDefaults' keys.
def paths(node, prefix):
    if isinstance(node, dict) and node and not prefix.endswith(("config", "values", "existingSecretKeys", "extraMetadata", "behavior", "annotations", "labels", "podAnnotations", "podLabels", "nodeSelector", "affinity", "oidcAccess", "podSecurityContext", "securityContext", "resources", "startup", "liveness", "readiness")):
        for k, v in node.items():
            yield from paths(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix
missing = [p for p in paths(values, "") if p not in listed]
for p in missing:
    print(f"FAIL  README.md does not list `{p}`")
extra = [p for p in listed if p not in set(paths(values, "")) and not p.startswith("agents[]")]
for p in extra:
    print(f"FAIL  README.md lists `{p}`, which values.yaml does not have")
sys.exit(1 if missing or extra else 0)
PY

step "the chart against the code (deploy/chart-env-check.mjs)"
if [[ ! -f "$ROOT/dist/config/config.js" ]]; then
  (cd "$ROOT" && npm run build --silent) || fail "npm run build"
fi
if ACTION_ROUTER_TOOLS="$TOOLS" node "$ROOT/deploy/chart-env-check.mjs" "${VALUES[@]}"; then ok "chart-env-check"; else fail "chart-env-check"; fi

printf '\n'
if [[ $failures -gt 0 ]]; then
  echo "check-chart: $failures failure(s) in $((SECONDS - started)) s"
  exit 1
fi
echo "check-chart: the chart passed every check in $((SECONDS - started)) s"
