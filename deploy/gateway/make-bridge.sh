#!/bin/sh
# Write the gateway's bridge to the central broker from the environment (.env through compose):
#   GATEWAY_SITE      the site id: the account the bridge logs in as, and the topics it forwards
#   GATEWAY_PASSWORD  that account's password
#   GATEWAY_UPSTREAM  host:port of the central broker's devices listener (TLS), e.g. mosquitto:8883
#   GATEWAY_CA_FILE   the CA that signed the central broker's certificate (made by make-ca.sh)
# Usage: make-bridge.sh DIR    writes DIR/central.conf and DIR/ca.crt, readable by mosquitto only
set -eu
dir="$1"
: "${GATEWAY_SITE:?set GATEWAY_SITE}"
: "${GATEWAY_PASSWORD:?set GATEWAY_PASSWORD}"
: "${GATEWAY_UPSTREAM:?set GATEWAY_UPSTREAM}"
: "${GATEWAY_CA_FILE:?set GATEWAY_CA_FILE}"
if ! printf '%s\n' "$GATEWAY_SITE" | grep -Eqx '[a-z0-9][a-z0-9_-]{0,63}'; then
    echo "make-bridge.sh: $GATEWAY_SITE is not a site id" >&2
    exit 1
fi
if [ ! -r "$GATEWAY_CA_FILE" ]; then
    echo "make-bridge.sh: no $GATEWAY_CA_FILE: run deploy/make-ca.sh first (README, Running with TLS)" >&2
    exit 1
fi
mkdir -p "$dir"
rm -f "$dir/central.conf"
# The password is in it: created private.
(umask 077 && : > "$dir/central.conf")
# mosquitto loads the CA when the bridge connects, after it dropped to its own user.
cp "$GATEWAY_CA_FILE" "$dir/ca.crt"
site="$GATEWAY_SITE"
cat > "$dir/central.conf" <<CONF
connection central
address $GATEWAY_UPSTREAM
bridge_cafile $dir/ca.crt
bridge_protocol_version mqttv311
remote_username $site
remote_password $GATEWAY_PASSWORD
# The central broker names the connection after the account anyway.
remote_clientid $site
local_clientid gateway-$site
# A persistent session on both sides, QoS 1 both ways: nothing is lost while either is away.
cleansession false
# No state messages on the central broker: its ACL lets a site publish device topics only.
notifications false
# Only the site's device topics go up, so nothing the central ACL refuses is ever sent (mosquitto
# closes a connection that publishes where it may not); the site's alarm topics come down.
topic facility/v1/$site/+/+/telemetry out 1
topic facility/v1/$site/+/+/event out 1
topic facility/v1/$site/+/+/status out 1
topic facility/v1/$site/alarms/+ in 1
CONF
if id mosquitto >/dev/null 2>&1; then
    chown mosquitto: "$dir/central.conf" "$dir/ca.crt"
fi
