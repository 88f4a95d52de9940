#!/bin/sh
# The runtime stage of the container image, as a script so that it can be
# tested without a Docker engine (tests/image/rootfs-test.sh runs it inside a
# debootstrap'd Debian 12 root). Installs PostgreSQL and the libraries the two
# binaries need from Debian, nothing else, and cleans the package lists.
# Usage (as root, inside the root filesystem): install-runtime.sh [PG_MAJOR]
set -eu
pg_major=${1:-15}
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# A fixed uid and gid (999, as most PostgreSQL images use) so that Kubernetes
# manifests can name them in runAsUser and fsGroup; Debian's package takes
# the user it finds.
if ! getent passwd postgres >/dev/null; then
  groupadd --system --gid 999 postgres
  useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql \
    --shell /bin/bash --comment "PostgreSQL administrator" postgres
fi
# Debian's server package would create and start a cluster of its own; the
# instance manager makes its own: no main cluster.
apt-get install -y -qq --no-install-recommends postgresql-common >/dev/null
sed -ri 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
  /etc/postgresql-common/createcluster.conf
# The server and its tools (initdb, pg_ctl, pg_rewind; pg_basebackup comes
# with the client), pgBackRest (archiving, backups, restore), and the
# binaries' shared libraries.
apt-get install -y -qq --no-install-recommends \
  "postgresql-$pg_major" "postgresql-client-$pg_major" pgbackrest \
  libpq5 libcurl4 libssl3 libfmt9 libprometheus-cpp-core1.0 libstdc++6 ca-certificates >/dev/null
# The data directory's parent, owned by postgres (the volume mounts below it).
install -d -o postgres -g postgres -m 0750 /var/lib/postgresql/data
install -d -o postgres -g postgres -m 0775 /var/run/postgresql
apt-get clean
rm -rf /var/lib/apt/lists/*
