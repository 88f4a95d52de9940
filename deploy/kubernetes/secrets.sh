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
# Standby backups (with-backups, with-backups-s3): pgBackRest's TLS server on
# every pod, mutual TLS with a CA of the cluster's own. One certificate for
# all members: its name, NAME-pgbackrest, is the client every server allows,
# and *.NAME-headless covers each pod's name under the headless Service (the
# name IM_BACKUP_SERVER_HOST gives; pgBackRest checks DNS names, not IPs).
# Ten years; renew by running this again and restarting the pods.
tls=$(mktemp -d)
trap 'rm -rf "$tls"' EXIT
openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=$name-backup-ca" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -newkey rsa:3072 -nodes -subj "/CN=$name-pgbackrest" \
  -keyout "$tls/tls.key" -out "$tls/tls.csr" 2>/dev/null
printf '%s\n' "subjectAltName=DNS:*.$name-headless" "extendedKeyUsage=serverAuth,clientAuth" \
  "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" >"$tls/ext"
openssl x509 -req -in "$tls/tls.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
  -days 3650 -extfile "$tls/ext" -out "$tls/tls.crt" 2>/dev/null
indent() { sed 's/^/    /' "$1"; }
cat <<YAML
---
apiVersion: v1
kind: Secret
metadata:
  name: $name-backup-tls
  labels:
    app: $name
type: kubernetes.io/tls
stringData:
  tls.crt: |
$(indent "$tls/tls.crt")
  tls.key: |
$(indent "$tls/tls.key")
  ca.crt: |
$(indent "$tls/ca.crt")
YAML
