#!/usr/bin/env bash
# An S3-compatible server for the backup tests: s3rver (npm, pinned by
# package-lock.json, installed into WORK once), over TLS with a certificate
# of its own, serving bucket `bk` on 127.0.0.1:PORT from WORK/data. Prints
# the server's PID once it answers.
#   tests/s3/s3rver.sh WORK PORT
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:?usage: s3rver.sh WORK PORT}
port=${2:?usage: s3rver.sh WORK PORT}
command -v node >/dev/null || "$src/scripts/install-deps.sh" nodejs >&2
command -v npm >/dev/null || "$src/scripts/install-deps.sh" npm >&2
mkdir -p "$work/data"
if ! cmp -s "$src/tests/s3/package-lock.json" "$work/node_modules/.package-lock.json" 2>/dev/null; then
  cp "$src/tests/s3/package.json" "$src/tests/s3/package-lock.json" "$work/"
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
[[ -s $work/cert.pem ]] || openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" \
  -out "$work/cert.pem" -days 2 -subj /CN=127.0.0.1 2>/dev/null
nohup node "$work/node_modules/.bin/s3rver" -d "$work/data" -a 127.0.0.1 -p "$port" \
  --key "$work/key.pem" --cert "$work/cert.pem" --configure-bucket bk --silent \
  >"$work/s3rver.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if curl -sk -o /dev/null "https://127.0.0.1:$port/"; then echo "$pid"; exit 0; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/s3rver.log" >&2; exit 1; }
  sleep 0.1
done
echo "s3rver did not answer on $port" >&2
kill "$pid"; exit 1
