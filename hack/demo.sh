#!/usr/bin/env bash
# make demo: the main job, offline, on embedded defaults.
#
# Two airlock registries on 127.0.0.1 play the internet ("upstream", filled
# by hack/demoseed with a catalog of real community-operators packages over
# synthetic images, and a synthetic OpenShift 4.12.0 release carrying the
# real image-references) and the disconnected mirror (TLS with a generated
# CA, htpasswd). airlock then does what an admin does: log in, pick
# operators, mirror them with the catalog and the release, go through disk
# as an air-gapped host must, and verify every digest at the mirror.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
AIRLOCK=$ROOT/bin/airlock
WORK=${DEMO_DIR:-$ROOT/.demo}
export OTEL_TRACES_EXPORTER=none

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

rm -rf "$WORK"
mkdir -p "$WORK"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# start_registry NAME ARGS... : starts `airlock registry serve` on a free
# loopback port and sets $ADDR to host:port once it listens.
start_registry() {
	local name=$1; shift
	"$AIRLOCK" registry serve --addr 127.0.0.1:0 --root "$WORK/$name" "$@" >"$WORK/$name.log" 2>&1 &
	pids+=($!)
	ADDR=
	for _ in $(seq 100); do
		ADDR=$(sed -n 's/^listening on //p' "$WORK/$name.log" | head -n1)
		[ -n "$ADDR" ] && return 0
		kill -0 "${pids[-1]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "registry $name did not start:" >&2
	cat "$WORK/$name.log" >&2
	exit 1
}

step "Start the upstream registry (stands in for quay.io and registry.redhat.io)"
start_registry upstream --log-level warn
UP=$ADDR
echo "upstream: https://$UP"

step "Start the mirror registry: TLS with a generated CA, htpasswd user"
printf 'demo-password' | run "$AIRLOCK" registry htpasswd add --file "$WORK/htpasswd" admin --password-stdin
start_registry mirror --htpasswd "$WORK/htpasswd"
MIRROR=$ADDR
sed -n '1,8p' "$WORK/mirror.log"
# One bundle trusting both registries' CAs.
cat "$WORK/upstream/certs/ca.crt" "$WORK/mirror/certs/ca.crt" >"$WORK/cas.pem"
TLS=(--ca-file "$WORK/cas.pem" -a "$WORK/auth.json")

step "Fill upstream: catalog image of real packages, opm base, release 4.12.0 (synthetic images)"
go run ./hack/demoseed --registry "$UP" --ca-file "$WORK/upstream/certs/ca.crt" --sign-key-out "$WORK/cosign.pub"

step "Log in to the mirror (podman-compatible auth.json)"
printf 'demo-password' | run "$AIRLOCK" login "$MIRROR" -u admin --password-stdin "${TLS[@]}"

step "Look at the catalog: packages, then the images two operators need"
run "$AIRLOCK" catalog packages "docker://$UP/redhat/community-operator-index:v4.18" "${TLS[@]}"
run "$AIRLOCK" catalog images "docker://$UP/redhat/community-operator-index:v4.18" "${TLS[@]}" \
	--package kepler-operator --package ecr-secret-operator

step "Mirror two operators with a rebuilt, pruned catalog; write the cluster manifests"
run "$AIRLOCK" catalog mirror "$UP/redhat/community-operator-index:v4.18" "$MIRROR/olm" "${TLS[@]}" \
	--package kepler-operator --package ecr-secret-operator --to-manifests "$WORK/catalog-manifests"
ls "$WORK/catalog-manifests"
cat "$WORK/catalog-manifests/catalogSource.yaml"

step "Mirror the release payload registry -> disk (the connected side)"
run "$AIRLOCK" release mirror --from "$UP/openshift-release-dev/ocp-release:4.12.0-x86_64" \
	--to-dir "$WORK/usb" "${TLS[@]}"

step "The declarative way: one ImageSetConfiguration for release, operators and app images"
cat >"$WORK/imageset.yaml" <<EOF
apiVersion: mirror.openshift.io/v2alpha1
kind: ImageSetConfiguration
mirror:
  platform:
    release: $UP/openshift-release-dev/ocp-release:4.12.0-x86_64
  operators:
  - catalog: $UP/redhat/community-operator-index:v4.18
    packages:
    - name: kepler-operator
    - name: ecr-secret-operator
  additionalImages:
  - name: $UP/apps/web:1.0
  - name: $UP/apps/api:1.0
EOF
cat "$WORK/imageset.yaml"
run "$AIRLOCK" config validate -c "$WORK/imageset.yaml" "${TLS[@]}"

step "Plan before moving anything: images, blobs, bytes after dedup, free space on the disk"
run "$AIRLOCK" plan -c "$WORK/imageset.yaml" "file://$WORK/m2d" "${TLS[@]}"

step "Which images are signed upstream (per release, catalog, package)"
run "$AIRLOCK" signatures report -c "$WORK/imageset.yaml" "${TLS[@]}" | sed -n '1,8p'

step "A policy: app images must carry a signature by our key (containers-policy.json)"
cat >"$WORK/policy.json" <<EOF
{"default": [{"type": "insecureAcceptAnything"}],
 "transports": {"docker": {"$UP/apps": [{"type": "sigstoreSigned", "keyPath": "$WORK/cosign.pub"}]}}}
EOF
cat "$WORK/policy.json"
if run "$AIRLOCK" image mirror --policy "$WORK/policy.json" "$UP/apps/tools:2.1" "$MIRROR/apps/tools" "${TLS[@]}" --report "$WORK/refused.txt"; then
	echo "the policy let an unsigned image through" >&2
	exit 1
fi

step "Mirror to disk under that policy; signatures travel with the images"
run "$AIRLOCK" mirror -c "$WORK/imageset.yaml" --policy "$WORK/policy.json" "file://$WORK/m2d" "${TLS[@]}"

step "Cut the store into a checksummed transfer set (1 MB segments here; archiveSize GiB in real life)"
run "$AIRLOCK" archive create --from "file://$WORK/m2d" "$WORK/usb-set" --segment-bytes 1000000
ls -l "$WORK/usb-set"

step "Upstream goes away: the rest runs without it"
kill "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true

step "Disk -> mirror registry (the disconnected side)"
run "$AIRLOCK" release mirror --from-dir "$WORK/usb" --from file://openshift/release:4.12.0-x86_64 \
	--release-source "$UP/openshift-release-dev/ocp-release" --to "$MIRROR/ocp4/openshift4" \
	--to-manifests "$WORK/release-manifests" "${TLS[@]}"

step "On the disconnected side: check every segment before pushing, see what the media holds"
run "$AIRLOCK" archive verify "$WORK/usb-set"
run "$AIRLOCK" archive ls "$WORK/usb-set" | sed -n '1,12p'

step "Transfer set -> mirror registry"
run "$AIRLOCK" mirror -c "$WORK/imageset.yaml" --from "file://$WORK/usb-set" "docker://$MIRROR/isc" --signature-key "$WORK/cosign.pub" "${TLS[@]}"
run "$AIRLOCK" verify -f "$WORK/usb-set/working-dir/mapping.txt" "${TLS[@]}"
ls "$WORK/usb-set/working-dir/cluster-resources"

step "Verify the mirror: every release component by digest, every catalog image present"
run "$AIRLOCK" verify -f "$WORK/release-manifests/mapping-release-4.12.0.txt" --dir "$WORK/usb" "${TLS[@]}"
# Upstream is gone and some catalog images are named by tag only, so their
# expected digest cannot be asked for: --dest-only checks that each exists
# (and matches where the mapping pins a digest).
run "$AIRLOCK" verify -f "$WORK/catalog-manifests/mapping.txt" "${TLS[@]}" --dest-only

step "Hand the mirror to the cluster: trust, pull secret, install-config, OperatorHub, node mirrors"
run "$AIRLOCK" cluster trust --ca "$WORK/mirror/certs/ca.crt" --registry "$MIRROR" -o "$WORK/handoff"
# The cluster's existing pull secret (a stand-in for the one from console.redhat.com).
printf '{"auths":{"cloud.openshift.com":{"auth":"ZGVtbzpkZW1v"}}}\n' >"$WORK/cluster-pull-secret.json"
run "$AIRLOCK" cluster pull-secret --pull-secret "$WORK/cluster-pull-secret.json" --authfile "$WORK/auth.json" \
	--registry "$MIRROR" -o "$WORK/handoff"
run "$AIRLOCK" cluster install-config --from "$WORK/release-manifests" --from "$WORK/catalog-manifests" \
	--ca "$WORK/mirror/certs/ca.crt" --authfile "$WORK/auth.json" --registry "$MIRROR" -o "$WORK/handoff"
run "$AIRLOCK" cluster disable-default-sources -o "$WORK/handoff"
run "$AIRLOCK" cluster runtime-config --from "$WORK/release-manifests" --from "$WORK/catalog-manifests" \
	--runtime crio -o "$WORK/handoff/nodes"
ls "$WORK/handoff"
grep -v -e '^  -----' -e '^  [A-Za-z0-9+/=]*$' -e '^pullSecret:' "$WORK/handoff/install-config-fragment.yaml" | sed -n '1,12p'

# A recorded cluster export, as `oc get clusterversion,subscriptions,clusterserviceversions,
# catalogsources,pods,imagedigestmirrorsets -A -o json` writes it: a 4.12.0 cluster whose
# pods run three release components and an operator's image.
"$AIRLOCK" release info --from-dir "$WORK/usb" file://openshift/release:4.12.0-x86_64 >"$WORK/release-components.txt"
mapfile -t comps < <(grep -o '[0-9.:]*/openshift-release-dev/ocp-v4.0-art-dev@sha256:[0-9a-f]*' "$WORK/release-components.txt" | head -n3)
opimg=$(grep -o '^[^#=]*@sha256:[0-9a-f]*' "$WORK/catalog-manifests/mapping.txt" | head -n1)
pod() { printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","namespace":"%s"},"spec":{"containers":[{"name":"c","image":"%s"}]},"status":{"phase":"Running","containerStatuses":[{"name":"c","image":"%s","imageID":"%s"}]}}' "$1" "$2" "$3" "$3" "$3"; }
export_items() {
	printf '{"apiVersion":"config.openshift.io/v1","kind":"ClusterVersion","metadata":{"name":"version"},"spec":{"channel":"stable-4.12"},"status":{"desired":{"version":"4.12.0","image":"%s/openshift-release-dev/ocp-release:4.12.0-x86_64"},"history":[{"state":"Completed","version":"4.12.0","image":"%s/openshift-release-dev/ocp-release:4.12.0-x86_64"}]}}' "$UP" "$UP"
	printf ',%s' "$(pod etcd-master-0 openshift-etcd "${comps[0]}")" "$(pod apiserver-0 openshift-kube-apiserver "${comps[1]}")" \
		"$(pod operator-0 openshift-config-operator "${comps[2]}")" "$(pod kepler-0 kepler-operator "$opimg")"
}
printf '{"apiVersion":"v1","kind":"List","items":[%s]}\n' "$(export_items)" >"$WORK/cluster.json"

step "Is everything this cluster runs in the mirror? (cluster check against the recorded export)"
run "$AIRLOCK" cluster check --from "$WORK/cluster.json" --mirror "$MIRROR" \
	--mirror-sets "$WORK/release-manifests" --mirror-sets "$WORK/catalog-manifests" "${TLS[@]}"
run "$AIRLOCK" cluster inventory --from "$WORK/cluster.json" -o "$WORK/handoff"

step "The same cluster with an app nobody mirrored and a mirror set with a wrong path: check fails and says why"
mkdir -p "$WORK/bad-sets"
printf 'apiVersion: config.openshift.io/v1\nkind: ImageDigestMirrorSet\nmetadata: {name: idms-shop-0}\nspec:\n  imageDigestMirrors:\n  - source: %s/shop\n    mirrors: [%s/wrong/shop]\n' "$UP" "$MIRROR" >"$WORK/bad-sets/idms-shop.yaml"
printf '{"apiVersion":"v1","kind":"List","items":[%s,%s,%s]}\n' "$(export_items)" \
	"$(pod web-0 shop "$UP/shop/web@sha256:$(printf 'e%.0s' $(seq 64))")" \
	"$(pod cache-0 shop "docker.io/library/redis@sha256:$(printf 'd%.0s' $(seq 64))")" >"$WORK/cluster-broken.json"
if run "$AIRLOCK" cluster check --from "$WORK/cluster-broken.json" --mirror "$MIRROR" --mirror-sets "$WORK/release-manifests" \
	--mirror-sets "$WORK/catalog-manifests" --mirror-sets "$WORK/bad-sets" "${TLS[@]}"; then
	echo "cluster check passed on a cluster whose images are missing" >&2
	exit 1
fi

step "What the mirror holds"
run "$AIRLOCK" registry ls "$MIRROR" "${TLS[@]}"
run "$AIRLOCK" release info --from-dir "$WORK/usb" file://openshift/release:4.12.0-x86_64 >"$WORK/release-info.txt"
sed -n '1,12p' "$WORK/release-info.txt"

step "Done: everything above ran on 127.0.0.1 with no network"
