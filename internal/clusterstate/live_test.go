package clusterstate_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/airlock-mirror/airlock/internal/clusterstate"
	"github.com/airlock-mirror/airlock/internal/testutil/clitest"
	"github.com/airlock-mirror/airlock/internal/testutil/kubeapi"
)

func TestMain(m *testing.M) { os.Exit(clitest.Main(m)) }

// liveResources are what the viewer is granted: list (and get) on exactly
// the kinds LoadLive reads.
var liveResources = []string{"clusterversions.config.openshift.io", "subscriptions.operators.coreos.com",
	"clusterserviceversions.operators.coreos.com", "catalogsources.operators.coreos.com", "pods",
	"imagedigestmirrorsets.config.openshift.io", "imagetagmirrorsets.config.openshift.io",
	"imagecontentsourcepolicies.operator.openshift.io"}

// TestLiveCluster reads a real kube-apiserver holding the objects of the
// export fixture (CRDs for the OpenShift and OLM kinds, status set through
// the status subresource as controllers do) and compares every result with
// the export's: the state, the inventory, and the CLI's output of cluster
// inventory and cluster check against the mirror of TestCheck.
func TestLiveCluster(t *testing.T) {
	start := time.Now()
	srv := kubeapi.Start(t)
	t.Logf("%s ready in %s", srv, time.Since(start).Round(time.Millisecond))
	reg, vals := clusterstate.MirrorWorld(t)
	exportFile := clusterstate.Export(t, vals)
	core, openshift := exportObjects(t, exportFile)
	ctx := context.Background()

	// Plain Kubernetes first: only pods. The OpenShift kinds are warnings.
	srv.Create(t, core...)
	st, warnings, err := clusterstate.LoadLive(ctx, srv.Admin, clusterstate.LiveOptions{})
	if err != nil {
		t.Fatalf("plain Kubernetes: %v", err)
	}
	if len(warnings) != 7 || !strings.Contains(strings.Join(warnings, "\n"), "clusterversions.config.openshift.io: not served") {
		t.Errorf("plain Kubernetes warnings: %q", warnings)
	}
	if len(st.Pods) != 3 || st.Version.Version != "" {
		t.Errorf("plain Kubernetes state: %+v", st)
	}
	// A user allowed only pods is refused the OpenShift kinds before the
	// server looks them up; discovery says they are not served: warnings.
	srv.Grant(t, "viewer", []string{"get", "list"}, "pods")
	if _, warnings, err := clusterstate.LoadLive(ctx, srv.Viewer, clusterstate.LiveOptions{}); err != nil || len(warnings) != 7 {
		t.Errorf("plain Kubernetes, pods-only viewer: %v, warnings %q", err, warnings)
	}

	srv.InstallCRDs(t, kubeapi.OpenShiftCRDs...)
	srv.Create(t, openshift...)
	want, err := clusterstate.Load(exportFile)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("same as export", func(t *testing.T) {
		got, warnings, err := clusterstate.LoadLive(ctx, srv.Admin, clusterstate.LiveOptions{})
		if err != nil || len(warnings) != 0 {
			t.Fatalf("%v, warnings %q", err, warnings)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("live state differs from the export's:\nlive   %+v\nexport %+v", got, want)
		}
		if g, w := inventoryYAML(t, got), inventoryYAML(t, want); g != w {
			t.Errorf("live inventory:\n%s\nexport inventory:\n%s", g, w)
		}
	})
	t.Run("page size 1", func(t *testing.T) {
		cfg, lists := countLists(srv.Admin)
		got, _, err := clusterstate.LoadLive(ctx, cfg, clusterstate.LiveOptions{PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		// 4 pods (one finished) in pages of 1: a continue token each time.
		if n := lists["/api/v1/pods"]; n < 4 {
			t.Errorf("pods listed in %d requests with page size 1", n)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("paged state differs:\n%+v\n%+v", got, want)
		}
	})
	t.Run("rbac", func(t *testing.T) {
		srv.Grant(t, "viewer", []string{"get", "list"}, liveResources...) // on top of pods
		got, _, err := clusterstate.LoadLive(ctx, srv.Viewer, clusterstate.LiveOptions{})
		if err != nil {
			t.Fatalf("viewer with list on the kinds read: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("viewer's state differs")
		}
		_, _, err = clusterstate.LoadLive(ctx, srv.Nobody, clusterstate.LiveOptions{})
		if err == nil || !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "list clusterversions.config.openshift.io at cluster scope") {
			t.Errorf("nobody: want a 403 naming the resource and verb, got %v", err)
		}
	})
	t.Run("read-only transport", func(t *testing.T) {
		client, err := dynamic.NewForConfig(clusterstate.ReadOnlyConfig(srv.Admin))
		if err != nil {
			t.Fatal(err)
		}
		nsGVR := schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "written"}}}
		if _, err := client.Resource(nsGVR).Create(ctx, ns, metav1.CreateOptions{}); err == nil || !strings.Contains(err.Error(), "POST /api/v1/namespaces refused") {
			t.Errorf("create through the read-only transport: %v", err)
		}
		if err := client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("shop").Delete(ctx, "web-7c9d8f6b4-abcde", metav1.DeleteOptions{}); err == nil {
			t.Error("delete through the read-only transport was sent")
		}
		if _, err := client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}).Namespace("default").List(ctx, metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "does not read secrets") {
			t.Errorf("secrets listed through the read-only transport: %v", err)
		}
		admin, _ := dynamic.NewForConfig(srv.Admin)
		if _, err := admin.Resource(nsGVR).Get(ctx, "written", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("namespace written despite the guard: %v", err)
		}
	})
	t.Run("cli", func(t *testing.T) {
		cliSameOutput(t, srv, reg.Host, exportFile)
	})
}

// cliSameOutput: `cluster inventory` and `cluster check` print the same
// with --kubeconfig/--context, with $KUBECONFIG and with --from.
func cliSameOutput(t *testing.T, srv *kubeapi.Server, mirror, exportFile string) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // never the in-cluster config of a CI pod
	inv := []string{"cluster", "inventory", "--upgrade-to", "4.12.2"}
	fromOut, _, err := clitest.Run(t, append(inv, "--from", exportFile)...)
	if err != nil {
		t.Fatal(err)
	}
	liveOut, stderr, err := clitest.Run(t, append(inv, "--kubeconfig", srv.Kubeconfig, "--context", "viewer", "--chunk-size", "2")...)
	if err != nil || liveOut != fromOut || strings.Contains(stderr, "warning") {
		t.Errorf("inventory --kubeconfig --context viewer: %v\n%s\nstderr %s\nwant\n%s", err, liveOut, stderr, fromOut)
	}
	t.Setenv("KUBECONFIG", srv.Kubeconfig)
	if envOut, _, err := clitest.Run(t, inv...); err != nil || envOut != fromOut {
		t.Errorf("inventory with $KUBECONFIG: %v\n%s", err, envOut)
	}

	check := []string{"cluster", "check", "--mirror", mirror, "--insecure", "-o", "json"}
	fromCheck, _, fromErr := clitest.Run(t, append(check, "--from", exportFile)...)
	liveCheck, _, liveErr := clitest.Run(t, append(check, "--kubeconfig", srv.Kubeconfig)...)
	if fromErr == nil || liveErr == nil || fromErr.Error() != liveErr.Error() || liveCheck != fromCheck || !strings.Contains(liveCheck, `"Cause": "digest absent"`) {
		t.Errorf("check: live (%v)\n%s\nexport (%v)\n%s", liveErr, liveCheck, fromErr, fromCheck)
	}

	_, _, err = clitest.Run(t, append(inv, "--from", exportFile, "--kubeconfig", srv.Kubeconfig)...)
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("--from with --kubeconfig: %v", err)
	}
	_, _, err = clitest.Run(t, "cluster", "check", "--mirror", mirror, "--from", exportFile, "--context", "viewer")
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("check --from with --context: %v", err)
	}
	t.Setenv("KUBECONFIG", "")
	t.Setenv("HOME", t.TempDir())
	_, _, err = clitest.Run(t, inv...)
	if err == nil || !strings.Contains(err.Error(), "--from FILE") || !strings.Contains(err.Error(), "--kubeconfig FILE") {
		t.Errorf("no source: %v", err)
	}
}

// countLists returns a copy of cfg that counts requests per URL path.
func countLists(cfg *rest.Config) (*rest.Config, map[string]int) {
	c := rest.CopyConfig(cfg)
	n := map[string]int{}
	var mu sync.Mutex
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			n[req.URL.Path]++
			mu.Unlock()
			return rt.RoundTrip(req)
		})
	})
	return c, n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// exportObjects splits the export's items into core Kubernetes objects and
// those of OpenShift and OLM kinds.
func exportObjects(t *testing.T, path string) (core, openshift []map[string]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var list struct{ Items []map[string]any }
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatal(err)
	}
	for _, it := range list.Items {
		if it["apiVersion"] == "v1" {
			core = append(core, it)
		} else {
			openshift = append(openshift, it)
		}
	}
	return core, openshift
}

func inventoryYAML(t *testing.T, st *clusterstate.State) string {
	t.Helper()
	cfg, _, err := clusterstate.Inventory(st, clusterstate.InventoryOptions{UpgradeTo: "4.12.2"})
	if err != nil {
		t.Fatal(err)
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(y)
}

// TestReadOnlyTransportPaths: which requests the guard lets through,
// without a server (the refusal is before any connection).
func TestReadOnlyTransportPaths(t *testing.T) {
	cfg := clusterstate.ReadOnlyConfig(&rest.Config{Host: "https://127.0.0.1:1"})
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, path string
		refused      bool
	}{
		{"GET", "/api/v1/pods", false},
		{"GET", "/api/v1/secrets", true},
		{"GET", "/api/v1/namespaces/openshift-config/secrets/pull-secret", true},
		{"GET", "/api/v1/namespaces/secrets/pods", false}, // a namespace named secrets
		{"GET", "/apis/config.openshift.io/v1/clusterversions", false},
		{"POST", "/api/v1/namespaces", true},
		{"PATCH", "/apis/config.openshift.io/v1/clusterversions/version", true},
		{"DELETE", "/api/v1/namespaces/shop/pods/web", true},
	} {
		req, _ := http.NewRequest(c.method, cfg.Host+c.path, nil)
		_, err := client.Do(req)
		refused := err != nil && (strings.Contains(err.Error(), "refused") && strings.Contains(err.Error(), "airlock"))
		if refused != c.refused {
			t.Errorf("%s %s: refused %v, want %v (%v)", c.method, c.path, refused, c.refused, err)
		}
	}
}
