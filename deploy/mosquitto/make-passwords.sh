#!/bin/sh
# Write mosquitto's password file from the secrets in the environment (.env through compose):
#   MQTT_SERVICE_PASSWORD    the service's account, facility.service
#   MQTT_SIMULATOR_SITE      the site the simulators publish as (its account's user name)
#   MQTT_SIMULATOR_PASSWORD  that site's password
#   MQTT_SITE_ACCOUNTS       more site accounts, "site-a:password site-b:password" (optional)
# Usage: make-passwords.sh FILE
set -eu
file="$1"
: "${MQTT_SERVICE_PASSWORD:?set MQTT_SERVICE_PASSWORD in .env}"
: "${MQTT_SIMULATOR_SITE:?set MQTT_SIMULATOR_SITE in .env}"
: "${MQTT_SIMULATOR_PASSWORD:?set MQTT_SIMULATOR_PASSWORD in .env}"
mkdir -p "$(dirname "$file")"
rm -f "$file"
# Created private: mosquitto refuses to trust a password file others can read.
(umask 077 && : > "$file")
mosquitto_passwd -b "$file" facility.service "$MQTT_SERVICE_PASSWORD"
mosquitto_passwd -b "$file" "$MQTT_SIMULATOR_SITE" "$MQTT_SIMULATOR_PASSWORD"
for account in ${MQTT_SITE_ACCOUNTS:-}; do
    mosquitto_passwd -b "$file" "${account%%:*}" "${account#*:}"
done
if id mosquitto >/dev/null 2>&1; then
    chown mosquitto: "$file"
fi
