package kubernetes

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// load returns the manifests of this directory, failing the test if any
// does not decode.
func load(t *testing.T) *Manifests {
	t.Helper()
	m, err := Load(".")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestManifests decodes every manifest here strictly and checks the
// cluster's invariants on them.
func TestManifests(t *testing.T) {
	m := load(t)
	for _, err := range Check(m) {
		t.Error(err)
	}
	// What README.md and the other manifests refer to by name.
	if m.Kustomization == nil {
		t.Errorf("no %s", KustomizationFile)
	}
	sts := m.StatefulSets()
	if len(sts) != 1 || sts[0].Name != "subordinate" || sts[0].Spec.ServiceName != "subordinate" {
		t.Errorf("want the StatefulSet subordinate with serviceName subordinate")
	}
	var names []string
	for _, s := range m.Services() {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"subordinate", "subordinate-client"}) {
		t.Errorf("services %v, want subordinate and subordinate-client", names)
	}
	if len(sts) == 1 {
		vols := sts[0].Spec.Template.Spec.Volumes
		if !slices.ContainsFunc(vols, func(v corev1.Volume) bool {
			return v.Secret != nil && v.Secret.SecretName == "subordinate-cluster"
		}) {
			t.Errorf("no volume from the Secret subordinate-cluster (README.md tells how to make it)")
		}
	}
}

// TestDecodeStrict checks that a manifest with a field its type does not
// have, or a value of the wrong type, is refused rather than dropped.
func TestDecodeStrict(t *testing.T) {
	data, err := os.ReadFile("statefulset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decode(data); err != nil {
		t.Fatalf("statefulset.yaml as it is: %v", err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown top field", "  replicas: 3\n", "  replicas: 3\n  replica: 3\n", "unknown field"},
		{"misspelt deep field", "terminationGracePeriodSeconds: 30", "terminationGracePeriodSecond: 30", "unknown field"},
		{"field given twice", "  replicas: 3\n", "  replicas: 3\n  replicas: 4\n", "replicas"},
		{"wrong type", "  replicas: 3\n", "  replicas: three\n", "replicas"},
		{"unknown kind", "kind: StatefulSet", "kind: StatefulSets", "not a type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(data), tc.old) {
				t.Fatalf("statefulset.yaml has no %q to change", tc.old)
			}
			_, err := Decode([]byte(strings.Replace(string(data), tc.old, tc.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestLoadMultiDocument checks that every document of a file is decoded,
// and that a bad one in the middle fails the load.
func TestLoadMultiDocument(t *testing.T) {
	svc, err := os.ReadFile("service-client.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pdb, err := os.ReadFile("pdb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(s string) {
		if err := os.WriteFile(dir+"/all.yaml", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# a comment only\n---\n" + string(svc) + "---\n" + string(pdb) + "---\n")
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Objects) != 2 || len(m.Services()) != 1 || len(m.PodDisruptionBudgets()) != 1 {
		t.Errorf("got %d objects, want the Service and the PodDisruptionBudget", len(m.Objects))
	}
	write(string(svc) + "---\n" + strings.Replace(string(pdb), "maxUnavailable", "maxUnavailabel", 1))
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "document 2") {
		t.Errorf("a misspelt field in document 2: got %v", err)
	}
}

// broken is a copy of the manifests with its parts at hand for a test to
// break.
type broken struct {
	m        *Manifests
	sts      *appsv1.StatefulSet
	c        *corev1.Container
	headless *corev1.Service
	client   *corev1.Service
	pdb      *policyv1.PodDisruptionBudget
}

// copyManifests returns a deep copy of m with its parts at hand.
func copyManifests(t *testing.T, m *Manifests) *broken {
	t.Helper()
	c := &Manifests{Files: slices.Clone(m.Files)}
	if m.Kustomization != nil {
		k := *m.Kustomization
		k.Resources = slices.Clone(k.Resources)
		c.Kustomization = &k
	}
	for _, o := range m.Objects {
		c.Objects = append(c.Objects, Object{File: o.File, Object: o.Object.DeepCopyObject()})
	}
	b := &broken{m: c, sts: c.StatefulSets()[0], pdb: c.PodDisruptionBudgets()[0]}
	b.c = &b.sts.Spec.Template.Spec.Containers[0]
	b.headless = serviceNamed(c.Services(), "subordinate")
	b.client = serviceNamed(c.Services(), "subordinate-client")
	if b.headless == nil || b.client == nil {
		t.Fatal("no Service subordinate or subordinate-client")
	}
	return b
}

// setArg replaces the value of the flag name in c's args.
func setArg(t *testing.T, c *corev1.Container, name, value string) {
	t.Helper()
	i := slices.Index(c.Args, "--"+name)
	if i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("no --%s in the args", name)
	}
	c.Args[i+1] = value
}

// dropPort removes the container port called name.
func dropPort(c *corev1.Container, name string) {
	c.Ports = slices.DeleteFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

// TestCheckRefuses breaks the manifests one way at a time and checks that
// Check says so: the checks cannot pass vacuously.
func TestCheckRefuses(t *testing.T) {
	m := load(t)
	for _, tc := range []struct {
		name   string
		mutate func(t *testing.T, b *broken)
		want   string
	}{
		{"a cluster port missing", func(t *testing.T, b *broken) { dropPort(b.c, "cluster-1") }, "no port 7947"},
		{"workers raised, ports not", func(t *testing.T, b *broken) { setArg(t, b.c, "workers", "3") }, "no port 7948"},
		{"workers lowered, ports not", func(t *testing.T, b *broken) { setArg(t, b.c, "workers", "1") }, "port cluster-1 (7947) is none"},
		{"a port too many", func(t *testing.T, b *broken) {
			b.c.Ports = append(b.c.Ports, corev1.ContainerPort{Name: "cluster-2", ContainerPort: 7948})
		}, "port cluster-2 (7948) is none"},
		{"a cluster port misnamed", func(t *testing.T, b *broken) { b.c.Ports[len(b.c.Ports)-1].Name = "cluster-9" }, `named "cluster-9"`},
		{"cluster listener moved", func(t *testing.T, b *broken) { setArg(t, b.c, "cluster-listen", "tls://0.0.0.0:8000") }, "--nodes port 7946, --cluster-listen port 8000"},
		{"cluster listener in plaintext", func(t *testing.T, b *broken) { setArg(t, b.c, "cluster-listen", "tcp://0.0.0.0:7946") }, "want tls://"},
		{"replicas without cluster-size", func(t *testing.T, b *broken) { *b.sts.Spec.Replicas = 4 }, "--cluster-size 3, replicas 4"},
		{"a fixed node index", func(t *testing.T, b *broken) { setArg(t, b.c, "node-index", "0") }, "want from-hostname"},
		{"node-index missing", func(t *testing.T, b *broken) {
			i := slices.Index(b.c.Args, "--node-index")
			b.c.Args = slices.Delete(b.c.Args, i, i+2)
		}, "no --node-index"},
		{"nodes of another set", func(t *testing.T, b *broken) {
			setArg(t, b.c, "nodes", "other-{i}.subordinate.$(POD_NAMESPACE).svc.cluster.local:7946")
		}, `does not start with "subordinate-{i}.subordinate."`},
		{"serviceName of no Service", func(t *testing.T, b *broken) { b.sts.Spec.ServiceName = "subordinate-peers" }, "names no Service"},
		{"headless Service with an IP", func(t *testing.T, b *broken) { b.headless.Spec.ClusterIP = "" }, "want None"},
		{"not-ready pods unpublished", func(t *testing.T, b *broken) { b.headless.Spec.PublishNotReadyAddresses = false }, "publishNotReadyAddresses"},
		{"headless Service without a cluster port", func(t *testing.T, b *broken) {
			b.headless.Spec.Ports = b.headless.Spec.Ports[:1]
		}, "service subordinate does not forward to container port 7947"},
		{"client Service on the admin port", func(t *testing.T, b *broken) {
			b.client.Spec.Ports[0].TargetPort = intstr.FromString("admin")
		}, "service subordinate-client does not forward to container port 7000"},
		{"client Service selecting nothing", func(t *testing.T, b *broken) {
			b.client.Spec.Selector = map[string]string{"app.kubernetes.io/name": "subordinat"}
		}, "service subordinate-client: selector"},
		{"pod labels changed alone", func(t *testing.T, b *broken) {
			b.sts.Spec.Template.Labels = map[string]string{"app": "subordinate"}
		}, "statefulset subordinate: selector"},
		{"PDB selecting nothing", func(t *testing.T, b *broken) {
			b.pdb.Spec.Selector.MatchLabels = map[string]string{"app": "subordinate"}
		}, "poddisruptionbudget subordinate: selector"},
		{"PDB letting two go", func(t *testing.T, b *broken) {
			two := intstr.FromInt32(2)
			b.pdb.Spec.MaxUnavailable = &two
		}, "want 1"},
		{"readiness on the wrong path", func(t *testing.T, b *broken) { b.c.ReadinessProbe.HTTPGet.Path = "/healthz" }, `readinessProbe asks "/healthz"`},
		{"liveness on the client port", func(t *testing.T, b *broken) {
			b.c.LivenessProbe.HTTPGet.Port = intstr.FromString("client")
		}, "livenessProbe on port client (7000)"},
		{"no readiness probe", func(t *testing.T, b *broken) { b.c.ReadinessProbe = nil }, "no readinessProbe"},
		{"admin on loopback", func(t *testing.T, b *broken) { setArg(t, b.c, "admin", "127.0.0.1:9090") }, "cannot reach it"},
		{"certificates elsewhere", func(t *testing.T, b *broken) {
			setArg(t, b.c, "cluster-ca", "/etc/ssl/ca.crt")
		}, "nothing is mounted at /etc/ssl"},
		{"certificate mount writable", func(t *testing.T, b *broken) { b.c.VolumeMounts[0].ReadOnly = false }, "not readOnly"},
		{"a key the Secret lacks", func(t *testing.T, b *broken) {
			setArg(t, b.c, "cluster-key", "/etc/subordinate/cluster/key.pem")
		}, "has no key.pem"},
		{"grace shorter than the drain", func(t *testing.T, b *broken) {
			g := int64(25)
			b.sts.Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "would kill the drain"},
		{"drain longer than the grace", func(t *testing.T, b *broken) { setArg(t, b.c, "drain-timeout", "25s") }, "would kill the drain"},
		{"POD_NAMESPACE undefined", func(t *testing.T, b *broken) { b.c.Env = nil }, "$(POD_NAMESPACE), which env does not define"},
		{"CPU not one per worker", func(t *testing.T, b *broken) {
			b.c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse("1")
		}, "resources.requests.cpu 1, want 2"},
		{"writable root filesystem", func(t *testing.T, b *broken) {
			f := false
			b.c.SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem"},
		{"root allowed", func(t *testing.T, b *broken) { b.sts.Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil }, "runAsNonRoot"},
		{"a namespace fixed", func(t *testing.T, b *broken) { b.client.Namespace = "default" }, "sets metadata.namespace"},
		{"kustomization missing a file", func(t *testing.T, b *broken) {
			b.m.Kustomization.Resources = slices.DeleteFunc(b.m.Kustomization.Resources, func(r string) bool { return r == "pdb.yaml" })
		}, "does not list pdb.yaml"},
		{"serial pod management", func(t *testing.T, b *broken) {
			b.sts.Spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
		}, "want Parallel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := copyManifests(t, m)
			tc.mutate(t, b)
			errs := Check(b.m)
			if !slices.ContainsFunc(errs, func(err error) bool { return strings.Contains(err.Error(), tc.want) }) {
				t.Errorf("got %v, want an error with %q", errors.Join(errs...), tc.want)
			}
			if len(Check(m)) != 0 {
				t.Fatal("breaking the copy changed the original")
			}
		})
	}
}

// TestFlagValues checks the reading of serve's arguments in the forms Go's
// flag package takes.
func TestFlagValues(t *testing.T) {
	args := []string{"serve", "--workers", "2", "-listen=a:1", "--crash-on-panic", "--listen", "b:2", "-admin", "c:3", "rest", "--admin", "d:4"}
	if got := flagValues(args, "listen"); !slices.Equal(got, []string{"a:1", "b:2"}) {
		t.Errorf("listen: %q", got)
	}
	if got, err := flagValue(args, "admin"); err != nil || got != "c:3" {
		t.Errorf("admin: %q, %v (the flags end at the first argument that is none)", got, err)
	}
	if _, err := flagValue(args, "listen"); err == nil {
		t.Error("--listen twice: no error from flagValue")
	}
	if _, err := flagInt(args, "workers"); err != nil {
		t.Error(err)
	}
}
