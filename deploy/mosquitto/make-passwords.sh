#!/bin/sh
# Write mosquitto's password files from the secrets in the environment (.env through compose):
#   MQTT_SERVICE_PASSWORD    the service's account, facility.service (the service listener only)
#   MQTT_SIMULATOR_SITE      the site the simulators publish as (its account's user name)
#   MQTT_SIMULATOR_PASSWORD  that site's password (its gateway logs in with it)
#   MQTT_SITE_ACCOUNTS       more accounts, "name:password name:password" (optional), each either
#                            a site account (name = site id: the site's gateway) or a device
#                            account (name = site/device_type/device_id: one device of its own)
# Usage: make-passwords.sh DIR    writes DIR/passwd-service and DIR/passwd-sites
#
# On the devices' listener a connection's client id is its account's name, so an account name
# must never be one of the service's client ids: names are checked against the site and device
# id grammar of the contract, and names starting with "facility" are the service's.
set -eu
dir="$1"
: "${MQTT_SERVICE_PASSWORD:?set MQTT_SERVICE_PASSWORD in .env}"
: "${MQTT_SIMULATOR_SITE:?set MQTT_SIMULATOR_SITE in .env}"
: "${MQTT_SIMULATOR_PASSWORD:?set MQTT_SIMULATOR_PASSWORD in .env}"

id='[a-z0-9][a-z0-9_-]{0,63}'
check_name() {
    if ! printf '%s\n' "$1" | grep -Eqx "$id(/[a-z][a-z0-9_]*/$id)?"; then
        echo "make-passwords.sh: $1: an account is a site id or site/device_type/device_id" >&2
        exit 1
    fi
    case "$1" in
        facility*)
            echo "make-passwords.sh: $1: names starting with 'facility' are the service's" >&2
            exit 1
            ;;
    esac
}

new_file() {
    rm -f "$1"
    # Created private: mosquitto refuses to trust a password file others can read.
    (umask 077 && : > "$1")
}

mkdir -p "$dir"
new_file "$dir/passwd-service"
new_file "$dir/passwd-sites"
mosquitto_passwd -b "$dir/passwd-service" facility.service "$MQTT_SERVICE_PASSWORD"
check_name "$MQTT_SIMULATOR_SITE"
mosquitto_passwd -b "$dir/passwd-sites" "$MQTT_SIMULATOR_SITE" "$MQTT_SIMULATOR_PASSWORD"
for account in ${MQTT_SITE_ACCOUNTS:-}; do
    case "$account" in
        ?*:?*) ;;
        *) echo "make-passwords.sh: MQTT_SITE_ACCOUNTS: '$account' is not name:password" >&2; exit 1 ;;
    esac
    check_name "${account%%:*}"
    mosquitto_passwd -b "$dir/passwd-sites" "${account%%:*}" "${account#*:}"
done
if id mosquitto >/dev/null 2>&1; then
    chown mosquitto: "$dir/passwd-service" "$dir/passwd-sites"
fi
