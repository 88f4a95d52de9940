#!/usr/bin/env bash
# Prints the cluster's Secrets with new random passwords, for kubectl:
#   deploy/kubernetes/secrets.sh demo [--superuser] | kubectl apply -f -
# Run it once per cluster: the passwords are set at bootstrap and a new
# replication password or token would not match the running instances.
set -euo pipefail
name=${1:?usage: secrets.sh CLUSTER_NAME [--superuser]}
superuser=${2:-}
random() { head -c 24 /dev/urandom | base64 | tr -d '/+=\n'; }
basic_auth() {
  cat <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: $name-$1
  labels:
    app: $name
type: kubernetes.io/basic-auth
stringData:
  username: $2
  password: $(random)
YAML
}
basic_auth app app
basic_auth replication streaming_replica
[[ $superuser == --superuser ]] && basic_auth superuser postgres
cat <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: $name-api-token
  labels:
    app: $name
type: Opaque
stringData:
  token: $(random)
YAML
