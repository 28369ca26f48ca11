#!/bin/sh
# A local certificate authority and the broker's certificate, for a first install (openssl only).
#
#   deploy/make-ca.sh [-d DIR] [NAME ...]    the CA (kept if DIR has one) and the broker's certificate
#   deploy/make-ca.sh [-d DIR] -c CLIENT     a client certificate signed by that CA (CN = CLIENT)
#
# DIR defaults to deploy/certs beside this script. The broker's certificate names mosquitto (its
# name inside the compose network), localhost and 127.0.0.1, and every NAME given: the host
# names or IP addresses devices reach the broker by. It answers for nothing else, since clients
# check the name they connected to against it. Run again to re-issue it (e.g. with another
# NAME): the CA is kept, so devices that trust ca.crt keep trusting the broker.
#
# Files: ca.crt (give it to every client: FACILITY_MQTT_CA_FILE, the devices), ca.key (keep it
# offline once the certificates are made), broker.crt and broker.key (the broker's), and with -c
# CLIENT.crt and CLIENT.key. Keys are created readable by their owner only.
set -eu

dir="$(cd "$(dirname "$0")" && pwd)/certs"
client=""
while getopts "d:c:" opt; do
    case "$opt" in
        d) dir="$OPTARG" ;;
        c) client="$OPTARG" ;;
        *) echo "usage: $0 [-d DIR] [-c CLIENT] [NAME ...]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))

ca_days="${CA_DAYS:-3650}"
cert_days="${CERT_DAYS:-825}"  # the longest lifetime that Apple's and browsers' TLS stacks accept
mkdir -p "$dir"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

new_key() {  # new_key FILE: an EC P-256 key, private to its owner
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1")
}

serial() {
    echo "0x$(openssl rand -hex 16)"
}

if [ ! -f "$dir/ca.key" ] || [ ! -f "$dir/ca.crt" ]; then
    new_key "$dir/ca.key"
    cat > "$work/ca.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca
[dn]
CN = facility local CA
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    openssl req -x509 -new -config "$work/ca.cnf" -key "$dir/ca.key" -days "$ca_days" \
        -set_serial "$(serial)" -out "$dir/ca.crt"
    echo "made a CA: $dir/ca.crt"
fi

sign() {  # sign NAME CN EXTENSIONS: NAME.key and NAME.crt, signed by the CA
    new_key "$dir/$1.key"
    openssl req -new -key "$dir/$1.key" -subj "/CN=$2" -out "$work/$1.csr"
    printf '%s\n' "$3" > "$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "$(serial)" \
        -days "$cert_days" -sha256 -extfile "$work/$1.ext" -out "$dir/$1.crt" 2>/dev/null
    chmod 644 "$dir/$1.crt"
    echo "made $dir/$1.crt (CN=$2)"
}

common="basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer"

if [ -n "$client" ]; then
    case "$client" in
        *[!A-Za-z0-9._-]*) echo "$0: a client name is letters, digits, '.', '_' and '-'" >&2; exit 2 ;;
    esac
    sign "$client" "$client" "$common
extendedKeyUsage = clientAuth"
    exit 0
fi

names="DNS:mosquitto, DNS:localhost, IP:127.0.0.1"
for name in "$@"; do
    case "$name" in
        *[!0-9.]*) case "$name" in *:*) names="$names, IP:$name" ;; *) names="$names, DNS:$name" ;; esac ;;
        *) names="$names, IP:$name" ;;
    esac
done
sign broker mosquitto "$common
extendedKeyUsage = serverAuth
subjectAltName = $names"
