package kubeapi

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// CRD describes a kind a test installs as a CustomResourceDefinition.
type CRD struct {
	Group, Version, Kind, Plural string
	Namespaced                   bool
}

// OpenShiftCRDs are the OpenShift and OLM kinds airlock reads from a
// cluster, as the real clusters serve them (group, version, scope).
var OpenShiftCRDs = []CRD{
	{"config.openshift.io", "v1", "ClusterVersion", "clusterversions", false},
	{"config.openshift.io", "v1", "ImageDigestMirrorSet", "imagedigestmirrorsets", false},
	{"config.openshift.io", "v1", "ImageTagMirrorSet", "imagetagmirrorsets", false},
	{"operator.openshift.io", "v1alpha1", "ImageContentSourcePolicy", "imagecontentsourcepolicies", false},
	{"operators.coreos.com", "v1alpha1", "Subscription", "subscriptions", true},
	{"operators.coreos.com", "v1alpha1", "ClusterServiceVersion", "clusterserviceversions", true},
	{"operators.coreos.com", "v1alpha1", "CatalogSource", "catalogsources", true},
}

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRDs creates the CRDs (as admin) and waits until each is served.
// Their schemas keep every field (x-kubernetes-preserve-unknown-fields):
// the tests need the objects' content stored, not validated. Each has the
// status subresource, as the real kinds do, so status is set apart from
// spec the way the cluster's controllers set it.
func (s *Server) InstallCRDs(t testing.TB, crds ...CRD) {
	t.Helper()
	client := s.dynamic(t)
	ctx := context.Background()
	for _, c := range crds {
		scope := "Cluster"
		if c.Namespaced {
			scope = "Namespaced"
		}
		keep := map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
			"metadata": map[string]any{"name": c.Plural + "." + c.Group},
			"spec": map[string]any{
				"group": c.Group, "scope": scope,
				"names": map[string]any{"kind": c.Kind, "listKind": c.Kind + "List", "plural": c.Plural, "singular": strings.ToLower(c.Kind)},
				"versions": []any{map[string]any{
					"name": c.Version, "served": true, "storage": true,
					"subresources": map[string]any{"status": map[string]any{}},
					"schema": map[string]any{"openAPIV3Schema": map[string]any{"type": "object",
						"properties": map[string]any{"spec": keep, "status": keep}}},
				}},
			},
		}}
		if _, err := client.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
			t.Fatalf("creating CRD %s.%s: %v", c.Plural, c.Group, err)
		}
	}
	for _, c := range crds {
		s.waitServed(t, client, schema.GroupVersionResource{Group: c.Group, Version: c.Version, Resource: c.Plural})
	}
}

// waitServed waits until listing gvr works: a CRD is Established a moment
// after it is created.
func (s *Server) waitServed(t testing.TB, client dynamic.Interface, gvr schema.GroupVersionResource) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.Resource(gvr).List(context.Background(), metav1.ListOptions{Limit: 1})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not served 30s after its CRD was created: %v", gvr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Create creates objects (as admin) as a cluster would hold them: the
// namespace of each namespaced object is created first, status is set
// through the status subresource after the object exists, and
// resourceVersion/uid of an export are dropped (the server assigns them).
// Lists (kind *List) are unpacked.
func (s *Server) Create(t testing.TB, objects ...map[string]any) {
	t.Helper()
	client := s.dynamic(t)
	mapper := s.mapper(t)
	ctx := context.Background()
	namespaces := map[string]bool{}
	for _, raw := range flatten(objects) {
		obj := &unstructured.Unstructured{Object: raw}
		status, hasStatus := raw["status"]
		delete(raw, "status")
		unstructured.RemoveNestedField(raw, "metadata", "resourceVersion")
		unstructured.RemoveNestedField(raw, "metadata", "uid")
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		// Discovery may lag a moment behind a CRD that is already served.
		for deadline := time.Now().Add(10 * time.Second); meta.IsNoMatchError(err) && time.Now().Before(deadline); {
			time.Sleep(200 * time.Millisecond)
			mapper = s.mapper(t)
			m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		}
		if err != nil {
			t.Fatalf("%s %s: no resource serves the kind: %v", gvk, obj.GetName(), err)
		}
		var rc dynamic.ResourceInterface = client.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns := obj.GetNamespace()
			if ns == "" {
				ns = "default"
				obj.SetNamespace(ns)
			}
			if !namespaces[ns] {
				s.ensureNamespace(t, client, ns)
				namespaces[ns] = true
			}
			rc = client.Resource(m.Resource).Namespace(ns)
		}
		created, err := rc.Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("creating %s %s/%s: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
		if !hasStatus {
			continue
		}
		created.Object["status"] = status
		if _, err := rc.UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("setting status of %s %s/%s: %v", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
}

func flatten(objects []map[string]any) []map[string]any {
	var out []map[string]any
	for _, o := range objects {
		if kind, _ := o["kind"].(string); strings.HasSuffix(kind, "List") {
			items, _ := o["items"].([]any)
			var sub []map[string]any
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					sub = append(sub, m)
				}
			}
			out = append(out, flatten(sub)...)
			continue
		}
		out = append(out, o)
	}
	return out
}

func (s *Server) ensureNamespace(t testing.TB, client dynamic.Interface, ns string) {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}}
	_, err := client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Create(context.Background(), obj, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
}

// Grant binds a new ClusterRole allowing verbs on resources
// (RESOURCE.GROUP, or RESOURCE for the core group) to user, at cluster
// scope, on top of what earlier grants allow.
func (s *Server) Grant(t testing.TB, user string, verbs []string, resources ...string) {
	t.Helper()
	byGroup := map[string][]any{}
	var groups []string
	for _, r := range resources {
		res, group, _ := strings.Cut(r, ".")
		if _, ok := byGroup[group]; !ok {
			groups = append(groups, group)
		}
		byGroup[group] = append(byGroup[group], res)
	}
	var rules []any
	for _, g := range groups {
		rules = append(rules, map[string]any{"apiGroups": []any{g}, "resources": byGroup[g], "verbs": toAny(verbs)})
	}
	s.grants++
	name := fmt.Sprintf("kubeapi-test-%s-%d", user, s.grants)
	s.Create(t,
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": name}, "rules": rules},
		map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": name},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
			"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}}},
	)
	for _, r := range resources {
		for _, v := range verbs {
			s.waitAllowed(t, user, v, r)
		}
	}
}

// waitAllowed waits until the authorizer lets user do verb on resource:
// RBAC reads roles through an informer, so a binding takes effect a moment
// after it is created.
func (s *Server) waitAllowed(t testing.TB, user, verb, resource string) {
	t.Helper()
	res, group, _ := strings.Cut(resource, ".")
	sar := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
		"spec": map[string]any{"user": user, "resourceAttributes": map[string]any{"verb": verb, "group": group, "resource": res}},
	}}
	gvr := schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "subjectaccessreviews"}
	client := s.dynamic(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err := client.Resource(gvr).Create(context.Background(), sar, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SubjectAccessReview %s %s %s: %v", user, verb, resource, err)
		}
		if allowed, _, _ := unstructured.NestedBool(out.Object, "status", "allowed"); allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still may not %s %s 30s after the binding was created", user, verb, resource)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func (s *Server) dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mapper maps kinds to resources from discovery, read fresh: CRDs
// installed a moment ago must be known.
func (s *Server) mapper(t testing.TB) meta.RESTMapper {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(s.Admin)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return restmapper.NewDiscoveryRESTMapper(groups)
}

// String names the server in messages.
func (s *Server) String() string {
	return fmt.Sprintf("kube-apiserver %s at %s", KubernetesVersion, s.URL)
}
