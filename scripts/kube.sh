# kube-apiserver and kube-controller-manager for the local stack. Sourced by stack.sh.
# No kubelet and no scheduler run: tests play the kubelet (test/helpers/kubelet.ts).
# Storage is a dedicated etcd (kube-etcd), so a test that stops the data etcd does not
# take the Kubernetes API down with it.

KUBE_DIR="$DBR_STATE/kube"
KUBE_WORKER_NAMESPACE=db-runbooks
KUBE_WORKER_SA=db-runbooks-worker

kube_cert() { # kube_cert NAME SUBJECT [SAN]
  local name="$1" subject="$2" san="${3:-}"
  [ -f "$KUBE_DIR/$name.crt" ] && return 0
  openssl genrsa -out "$KUBE_DIR/$name.key" 2048 2>/dev/null
  openssl req -new -key "$KUBE_DIR/$name.key" -subj "$subject" -out "$KUBE_DIR/$name.csr" 2>/dev/null
  local ext="$KUBE_DIR/$name.ext"
  if [ -n "$san" ]; then
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$san" > "$ext"
  else
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' > "$ext"
  fi
  openssl x509 -req -in "$KUBE_DIR/$name.csr" -CA "$KUBE_DIR/ca.crt" -CAkey "$KUBE_DIR/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$ext" -out "$KUBE_DIR/$name.crt" 2>/dev/null
  rm -f "$KUBE_DIR/$name.csr" "$ext"
}

kube_kubeconfig() { # kube_kubeconfig NAME CERT
  local name="$1" cert="$2"
  cat > "$KUBE_DIR/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$KUBE_APISERVER_PORT
    certificate-authority: $KUBE_DIR/ca.crt
users:
- name: $name
  user:
    client-certificate: $KUBE_DIR/$cert.crt
    client-key: $KUBE_DIR/$cert.key
contexts:
- name: $name
  context:
    cluster: local
    user: $name
    namespace: default
current-context: $name
EOF
  chmod 600 "$KUBE_DIR/$name.kubeconfig"
}

kube_pki() {
  mkdir -p "$KUBE_DIR"
  if [ ! -f "$KUBE_DIR/ca.crt" ]; then
    openssl genrsa -out "$KUBE_DIR/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -nodes -key "$KUBE_DIR/ca.key" -subj "/CN=db-runbooks-local-ca" -days 3650 -sha256 \
      -out "$KUBE_DIR/ca.crt" 2>/dev/null
  fi
  [ -f "$KUBE_DIR/sa.key" ] || { openssl genrsa -out "$KUBE_DIR/sa.key" 2048 2>/dev/null; openssl rsa -in "$KUBE_DIR/sa.key" -pubout -out "$KUBE_DIR/sa.pub" 2>/dev/null; }
  kube_cert apiserver "/CN=kube-apiserver" "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1"
  kube_cert admin "/O=system:masters/CN=admin"
  kube_cert controller-manager "/CN=system:kube-controller-manager"
  # The worker authenticates as its ServiceAccount's user name, so the RBAC in deploy/ applies to it unchanged.
  kube_cert worker "/CN=system:serviceaccount:$KUBE_WORKER_NAMESPACE:$KUBE_WORKER_SA"
  kube_kubeconfig admin admin
  kube_kubeconfig controller-manager controller-manager
  kube_kubeconfig worker worker
}

start_kube_apiserver() {
  is_running kube-etcd || start_part kube-etcd
  kube_pki
  launch kube-apiserver "$KUBE_DIR/apiserver.log" "$DBR_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$KUBE_ETCD_PORT" --etcd-prefix /registry \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$KUBE_APISERVER_PORT" \
    --tls-cert-file "$KUBE_DIR/apiserver.crt" --tls-private-key-file "$KUBE_DIR/apiserver.key" \
    --client-ca-file "$KUBE_DIR/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$KUBE_DIR/sa.pub" --service-account-signing-key-file "$KUBE_DIR/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --authorization-mode RBAC --anonymous-auth=false \
    --endpoint-reconciler-type none \
    --cert-dir "$KUBE_DIR/certs"
  wait_for 120 kube-apiserver check_kube_apiserver || die "kube-apiserver did not become ready; see $KUBE_DIR/apiserver.log"
}

check_kube_apiserver() {
  curl -sf --cacert "$KUBE_DIR/ca.crt" --cert "$KUBE_DIR/admin.crt" --key "$KUBE_DIR/admin.key" \
    "https://127.0.0.1:$KUBE_APISERVER_PORT/readyz"
}

start_kube_controller_manager() {
  is_running kube-apiserver || start_part kube-apiserver
  launch kube-controller-manager "$KUBE_DIR/controller-manager.log" "$DBR_BIN/kube-controller-manager" \
    --kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$KUBE_DIR/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$KUBE_CONTROLLER_PORT" \
    --service-account-private-key-file "$KUBE_DIR/sa.key" --root-ca-file "$KUBE_DIR/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false \
    --controllers '*,-node-ipam-controller,-node-lifecycle-controller,-persistentvolume-binder-controller,-persistentvolume-attach-detach-controller,-persistentvolume-expander-controller,-ttl-controller' \
    --cert-dir "$KUBE_DIR/cm-certs"
  wait_for 60 kube-controller-manager check_kube_controller_manager || die "kube-controller-manager did not become healthy; see $KUBE_DIR/controller-manager.log"
}

check_kube_controller_manager() { curl -skf "https://127.0.0.1:$KUBE_CONTROLLER_PORT/healthz"; }
