#!/bin/sh
# Copy the broker's certificate, its key and the CA (made by deploy/make-ca.sh) where the broker's
# user can read them: mosquitto drops to that user before it loads them.
# Usage: copy-certs.sh FROM_DIR TO_DIR
set -eu
from="$1"
to="$2"
for name in ca.crt broker.crt broker.key; do
    if [ ! -r "$from/$name" ]; then
        echo "copy-certs.sh: no $from/$name: run deploy/make-ca.sh first (README, Running with TLS)" >&2
        exit 1
    fi
done
mkdir -p "$to"
(umask 077 && cp "$from/broker.key" "$to/broker.key")
cp "$from/ca.crt" "$from/broker.crt" "$to/"
chmod 644 "$to/ca.crt" "$to/broker.crt"
if id mosquitto >/dev/null 2>&1; then
    chown mosquitto: "$to/ca.crt" "$to/broker.crt" "$to/broker.key"
fi
