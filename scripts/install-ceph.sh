#!/usr/bin/env bash
# Install the Ceph daemons the RGW tests start (a one-node cluster on 127.0.0.1).
# Quick no-op when radosgw is already on PATH; installs with apt-get when run as root on
# Debian/Ubuntu; otherwise says what to do and exits 0 (the RGW tests then say they need it).
set -euo pipefail
PACKAGES="radosgw ceph-mon ceph-osd ceph-common"
if command -v radosgw >/dev/null 2>&1 && command -v ceph-mon >/dev/null 2>&1 \
    && command -v ceph-osd >/dev/null 2>&1 && command -v radosgw-admin >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "install-ceph: installing $PACKAGES (about 20 s, 270 MB) for the Ceph RGW tests"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
  then
    exit 0
  fi
  echo "install-ceph: apt-get could not install $PACKAGES (see above); the Ceph RGW tests" >&2
  echo "install-ceph: will fail saying that radosgw is missing." >&2
  exit 0
fi
echo "install-ceph: radosgw not found and cannot install it here (needs root and apt-get)." >&2
echo "install-ceph: run 'sudo apt-get install --no-install-recommends $PACKAGES' to run the" >&2
echo "install-ceph: Ceph RGW tests; without it they fail with a message that says so." >&2
