#!/usr/bin/env bash
# Validates deploy/: the Prometheus config and alert rules (promtool, including the alert unit
# tests next to this script) and the Grafana dashboard (JSON shape, PromQL syntax, metric names).
# Usage: tests/deploy/check_deploy.sh SOURCE_DIR     (exits non-zero on the first failure)
set -euo pipefail

src=${1:?usage: $0 SOURCE_DIR}
cd "$src"
command -v promtool >/dev/null || { echo "promtool not found (scripts/install-deps test)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found (scripts/install-deps test)" >&2; exit 1; }

prometheus_yml=deploy/prometheus/prometheus.yml
alerts_yml=deploy/prometheus/alerts.yml
dashboard=deploy/grafana/gateway-dashboard.json

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

promtool check config "$prometheus_yml"
promtool check rules "$alerts_yml"
promtool test rules tests/deploy/alerts_test.yml

# Dashboard: valid JSON, identity, every panel titled with PromQL targets on the datasource
# variable. Its queries are written out as recording rules, with Grafana's variables replaced, so
# that promtool parses them.
python3 - "$dashboard" "$tmp/dashboard_rules.yml" <<'PY'
import json, sys
path, rules_out = sys.argv[1], sys.argv[2]
with open(path) as f:
    d = json.load(f)
assert d.get("uid") == "gateway", "uid must be 'gateway'"
assert d.get("title") == "Gateway", "title must be 'Gateway'"
assert isinstance(d.get("schemaVersion"), int) and d["schemaVersion"] >= 36, "schemaVersion >= 36"
variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
assert variables.get("DS_PROMETHEUS", {}).get("type") == "datasource", "no DS_PROMETHEUS datasource variable"
panels = d.get("panels")
assert panels, "no panels"
ids, exprs = set(), []
for p in panels:
    title = p.get("title")
    assert title, f"panel {p.get('id')} has no title"
    assert p.get("id") not in ids, f"duplicate panel id {p.get('id')}"
    ids.add(p.get("id"))
    assert p.get("datasource", {}).get("uid") == "${DS_PROMETHEUS}", f"{title}: datasource is not ${{DS_PROMETHEUS}}"
    targets = p.get("targets")
    assert targets, f"{title}: no targets"
    for t in targets:
        assert t.get("expr", "").strip(), f"{title}: target {t.get('refId')} has no expr"
        exprs.append((title, t["expr"]))
with open(rules_out, "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        e = (e.replace("$__rate_interval", "1m").replace("$__interval", "1m")
              .replace("$__range", "1h").replace("$instance", ".*").replace("$route", ".*"))
        assert "$" not in e, f"{title}: unknown variable in {e}"
        f.write(f"      - record: dashboard:query_{i}\n        expr: {json.dumps(e)}\n")
print(f"  SUCCESS: {path}: {len(panels)} panels, {len(exprs)} queries")
PY
promtool check rules "$tmp/dashboard_rules.yml"

# Only the metric names of SPEC section 8 (histograms with their _bucket/_sum/_count series),
# gateway_redis_batch_checks, which the gateway adds (one EVALSHA carries many limit checks), and
# the TLS ones (SPEC 13 and its issue: certificate expiry, handshake errors).
known=" gateway_requests_total gateway_request_duration_seconds gateway_ratelimit_checks_total
 gateway_ratelimit_failures_total gateway_local_cache_hits_total gateway_memory_store_evictions_total
 gateway_store_duration_seconds gateway_store_errors_total gateway_redis_batch_commands
 gateway_redis_batch_checks gateway_upstream_requests_total gateway_upstream_duration_seconds gateway_upstream_errors_total
 gateway_connections_active gateway_config_reloads_total gateway_build_info process_cpu_seconds_total
 process_resident_memory_bytes process_open_fds process_start_time_seconds
 gateway_tls_certificate_expiry_seconds gateway_tls_handshake_errors_total"
known=" $(tr -s '\n' ' ' <<<"$known") "
unknown=0
for name in $(grep -ohE '\b(gateway|process)_[a-z_]+' "$alerts_yml" "$dashboard" | sort -u); do
  base=$(sed -E 's/_(bucket|sum|count)$//' <<<"$name")
  case "$known" in
    *" $name "* | *" $base "*) ;;
    *) echo "unknown metric (not in SPEC section 8): $name" >&2; unknown=1 ;;
  esac
done
[ "$unknown" -eq 0 ]
echo "deploy/ OK"
