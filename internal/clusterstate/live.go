package clusterstate

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// liveResources are what a live cluster is read from: the kinds of
// ExportCommand, in its order, so a live read and an export of the same
// cluster go through State.add alike. Secrets are never among them.
var liveResources = []struct {
	gvr  schema.GroupVersionResource
	kind string
}{
	{schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "clusterversions"}, "ClusterVersion"},
	{schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "subscriptions"}, "Subscription"},
	{schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "clusterserviceversions"}, "ClusterServiceVersion"},
	{schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "catalogsources"}, "CatalogSource"},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod"},
	{schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagedigestmirrorsets"}, "ImageDigestMirrorSet"},
	{schema.GroupVersionResource{Group: "config.openshift.io", Version: "v1", Resource: "imagetagmirrorsets"}, "ImageTagMirrorSet"},
	{schema.GroupVersionResource{Group: "operator.openshift.io", Version: "v1alpha1", Resource: "imagecontentsourcepolicies"}, "ImageContentSourcePolicy"},
}

// DefaultPageSize is how many objects one list request asks for: a large
// cluster's pods come in pages instead of one response of many megabytes.
const DefaultPageSize = 500

// LiveOptions are the options of LoadLive.
type LiveOptions struct {
	// PageSize is the limit of each list request; 0 means DefaultPageSize.
	PageSize int64
}

// LoadLive reads the objects of ExportCommand from the cluster cfg points
// at, all namespaces, through a transport that refuses anything but reads.
// A kind the cluster does not serve (plain Kubernetes has no
// ClusterVersion, a cluster without OLM no Subscription) is a warning; a
// kind the user may not list is an error naming the permission needed.
func LoadLive(ctx context.Context, cfg *rest.Config, opts LiveOptions) (*State, []string, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultPageSize
	}
	ro := ReadOnlyConfig(cfg)
	client, err := dynamic.NewForConfig(ro)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	disco, err := discovery.NewDiscoveryClientForConfig(ro)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	st := newState()
	var warnings []string
	for _, r := range liveResources {
		served, err := st.addLive(ctx, client, r.gvr, r.kind, opts.PageSize)
		if apierrors.IsForbidden(err) && !servedBy(disco, r.gvr) {
			// RBAC answers before the server looks for the resource: a
			// user allowed only what plain Kubernetes serves is refused
			// ClusterVersion rather than told it does not exist.
			served, err = false, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if !served {
			warnings = append(warnings, fmt.Sprintf("%s: not served by the cluster at %s; none read", resourceName(r.gvr), cfg.Host))
		}
	}
	if err := st.finish(); err != nil {
		return nil, nil, fmt.Errorf("cluster %s: %w", cfg.Host, err)
	}
	return st, warnings, nil
}

// addLive lists one resource in pages and adds every object. It returns
// false when the server does not serve the resource.
func (st *State) addLive(ctx context.Context, client dynamic.Interface, gvr schema.GroupVersionResource, kind string, pageSize int64) (bool, error) {
	res := resourceName(gvr)
	cont := ""
	for {
		list, err := client.Resource(gvr).List(ctx, metav1.ListOptions{Limit: pageSize, Continue: cont})
		switch {
		case apierrors.IsNotFound(err):
			return false, nil
		case apierrors.IsForbidden(err):
			return true, fmt.Errorf("listing %s: %w (the user needs RBAC permission to list %s at cluster scope)", res, err, res)
		case err != nil:
			return true, fmt.Errorf("listing %s: %w", res, err)
		}
		for _, it := range list.Items {
			// Items of a typed list (pods) come without kind; add needs it.
			if it.GetKind() == "" {
				it.SetKind(kind)
			}
			where := fmt.Sprintf("%s %s", res, it.GetName())
			if ns := it.GetNamespace(); ns != "" {
				where = fmt.Sprintf("%s %s/%s", res, ns, it.GetName())
			}
			if err := st.add(it.Object, where); err != nil {
				return true, err
			}
		}
		if cont = list.GetContinue(); cont == "" {
			return true, nil
		}
	}
}

// servedBy asks discovery (open to every authenticated user) whether the
// server serves gvr. When discovery itself fails it says yes: the caller
// then reports the refusal it had.
func servedBy(disco discovery.DiscoveryInterface, gvr schema.GroupVersionResource) bool {
	list, err := disco.ServerResourcesForGroupVersion(gvr.GroupVersion().String())
	if apierrors.IsNotFound(err) {
		return false
	}
	if err != nil {
		return true
	}
	for _, r := range list.APIResources {
		if r.Name == gvr.Resource {
			return true
		}
	}
	return false
}

// resourceName is the resource as kubectl and RBAC name it:
// subscriptions.operators.coreos.com, pods.
func resourceName(gvr schema.GroupVersionResource) string {
	if gvr.Group == "" {
		return gvr.Resource
	}
	return gvr.Resource + "." + gvr.Group
}

// ReadOnlyConfig returns a copy of cfg whose transport refuses every
// request but GET and HEAD, and any request for secrets. LoadLive only
// lists; the guard makes sure no code path can ever change the cluster or
// read its credentials, whatever a later change to this package does.
func ReadOnlyConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return readOnlyTransport{rt} })
	return c
}

type readOnlyTransport struct{ next http.RoundTripper }

func (t readOnlyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		return nil, fmt.Errorf("airlock reads the cluster only: %s %s refused", req.Method, req.URL.Path)
	}
	if isSecrets(req.URL.Path) {
		return nil, fmt.Errorf("airlock does not read secrets: GET %s refused", req.URL.Path)
	}
	return t.next.RoundTrip(req)
}

// isSecrets reports whether an API path names the core secrets resource
// (/api/v1/secrets, /api/v1/namespaces/NS/secrets[/NAME]).
func isSecrets(path string) bool {
	p := strings.Split(strings.Trim(path, "/"), "/")
	if len(p) < 3 || p[0] != "api" {
		return false
	}
	if p[2] == "namespaces" && len(p) >= 5 {
		return p[4] == "secrets"
	}
	return p[2] == "secrets"
}
