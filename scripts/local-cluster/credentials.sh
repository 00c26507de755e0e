# shellcheck shell=bash
# Who may talk to whom: the cluster CA, the API server's serving and kubelet-client
# certificates, the ServiceAccount signing keys, and static tokens with one kubeconfig per
# identity. All of it lives in $CLUSTER_DIR and is made again after `down`.
# Sourced by scripts/local-cluster.sh, which holds the settings and small helpers (log, die,
# kube, ctr_k8s) used here.

# sign_cert NAME SUBJECT EXTENSIONS: a key and a CA-signed certificate in $PKI_DIR.
sign_cert() {
	local name=$1 subject=$2 extensions=$3
	openssl req -new -newkey rsa:2048 -nodes -subj "$subject" \
		-keyout "$PKI_DIR/$name.key" -out "$PKI_DIR/$name.csr" 2>/dev/null
	openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 3650 -out "$PKI_DIR/$name.crt" \
		-extfile <(printf '%s\n' "$extensions") 2>/dev/null
	rm -f "$PKI_DIR/$name.csr"
	chmod 0600 "$PKI_DIR/$name.key"
}

write_pki() {
	[[ -e $PKI_DIR/.complete ]] && return 0
	log "creating the cluster CA, serving/client certificates and ServiceAccount keys"
	rm -rf "$PKI_DIR"
	mkdir -p "$PKI_DIR"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sortie-local-ca" \
		-keyout "$PKI_DIR/ca.key" -out "$PKI_DIR/ca.crt" 2>/dev/null
	chmod 0600 "$PKI_DIR/ca.key"
	local ip
	ip=$(node_ip)
	sign_cert apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth" \
		"subjectAltName=IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")"
	# The API server's identity towards kubelets (logs, exec, port-forward).
	sign_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$(printf '%s\n' \
		"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth")"
	openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null
	openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
	chmod 0600 "$PKI_DIR/sa.key"
	touch "$PKI_DIR/.complete"
}

# write_kubeconfig FILE USER TOKEN
write_kubeconfig() {
	local file=$1 user=$2 token=$3
	(
		umask 077
		cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sortie-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI_DIR/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: sortie-local
  context:
    cluster: sortie-local
    user: $user
current-context: sortie-local
EOF
	)
}

# Static token authentication: one admin in system:masters for tests, and one identity per
# component, so RBAC and the Node authorizer see the same users as in a kubeadm cluster.
write_tokens_and_kubeconfigs() {
	[[ -e $CLUSTER_DIR/tokens.csv ]] && return 0
	log "creating static tokens and kubeconfigs"
	local admin kubelet scheduler manager
	admin=$(openssl rand -hex 24)
	kubelet=$(openssl rand -hex 24)
	scheduler=$(openssl rand -hex 24)
	manager=$(openssl rand -hex 24)
	(
		umask 077
		cat >"$CLUSTER_DIR/tokens.csv.tmp" <<EOF
$admin,sortie-admin,sortie-admin,"system:masters"
$kubelet,system:node:$NODE_NAME,system:node:$NODE_NAME,"system:nodes"
$scheduler,system:kube-scheduler,system:kube-scheduler
$manager,system:kube-controller-manager,system:kube-controller-manager
EOF
		printf '%s\n' "$admin" >"$ADMIN_TOKEN_FILE"
	)
	write_kubeconfig "$ADMIN_KUBECONFIG" sortie-admin "$admin"
	write_kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" "system:node:$NODE_NAME" "$kubelet"
	write_kubeconfig "$CLUSTER_DIR/kube-scheduler.kubeconfig" system:kube-scheduler "$scheduler"
	write_kubeconfig "$CLUSTER_DIR/kube-controller-manager.kubeconfig" system:kube-controller-manager "$manager"
	mv "$CLUSTER_DIR/tokens.csv.tmp" "$CLUSTER_DIR/tokens.csv"
}
