#!/usr/bin/env bash
# Make a private CA, a coordinator server certificate and one client certificate per
# device for mutual TLS. Usage: deploy/certs/make-certs.sh OUT_DIR SERVER_NAME[,NAME...] [DEVICE_ID ...]
# The server certificate holds every name (DNS name or IP) clients dial, plus localhost and 127.0.0.1.
# The coordinator takes --tls-cert OUT/server.crt --tls-key OUT/server.key (gRPC and HTTPS) and, for mutual
# TLS, --tls-client-ca OUT/ca.crt; each device takes --tls-ca OUT/ca.crt --tls-cert OUT/DEVICE.crt
# --tls-key OUT/DEVICE.key; `mmer subscribe`, browsers and Prometheus trust OUT/ca.crt.
set -euo pipefail
out=${1:?usage: make-certs.sh OUT_DIR SERVER_NAME[,NAME...] [DEVICE_ID ...]}
names=${2:?server names (DNS names or IPs the clients dial, comma-separated)}
shift 2
mkdir -p "$out"
cd "$out"
days=825

openssl genrsa -out ca.key 4096 2>/dev/null
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=mmer CA" -out ca.crt

IFS=, read -r -a servers <<< "$names"
server=${servers[0]}
san=""
for name in "${servers[@]}"; do
    if [[ $name =~ ^[0-9.]+$ ]]; then san+="IP:${name},"; else san+="DNS:${name},"; fi
done
san+="DNS:localhost,IP:127.0.0.1"
openssl genrsa -out server.key 2048 2>/dev/null
openssl req -new -key server.key -subj "/CN=${server}" -out server.csr
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san" > server.ext
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
    -extfile server.ext -out server.crt 2>/dev/null

for device in "$@"; do
    openssl genrsa -out "${device}.key" 2048 2>/dev/null
    openssl req -new -key "${device}.key" -subj "/CN=${device}" -out "${device}.csr"
    printf 'extendedKeyUsage=clientAuth\n' > "${device}.ext"
    openssl x509 -req -in "${device}.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
        -extfile "${device}.ext" -out "${device}.crt" 2>/dev/null
done
rm -f ./*.csr ./*.ext
chmod 600 ./*.key
echo "wrote CA, server (${names}) and ${#} device certificates to $(pwd)"
