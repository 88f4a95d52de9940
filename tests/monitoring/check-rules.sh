#!/usr/bin/env bash
# CTest monitoring_rules: the alert rules of deploy/monitoring are valid
# (`promtool check rules`) and fire as their unit tests expect on sample
# series (`promtool test rules`); the dashboard is JSON. promtool comes from
# Debian's prometheus package, installed when missing. Which metric names
# the rules and the dashboard may use is checked against real /metrics
# output by integration_backup ("the monitoring kit uses only exported metrics").
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
command -v promtool >/dev/null || "$src/scripts/install-deps.sh" prometheus
cd "$src/deploy/monitoring"
promtool check rules alerts.yml
promtool test rules alerts-test.yml
python3 -m json.tool grafana-dashboard.json >/dev/null
echo "grafana-dashboard.json: valid JSON"
