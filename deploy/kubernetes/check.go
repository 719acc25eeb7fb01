package kubernetes

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// WorkerKillMargin is how long after the drain deadline a master waits
// before it kills a worker still running and exits (docs/PROCESSES.md,
// "Drain"): the pod's grace period must cover it too.
const WorkerKillMargin = 3 * time.Second

// ClusterSecretKeys are the keys of the Secret that holds the cluster
// certificate, as cert-manager writes them.
var ClusterSecretKeys = []string{"tls.crt", "tls.key", "ca.crt"}

// Check returns every way m breaks the invariants a Subordinate cluster
// depends on; none means it holds together. It expects one StatefulSet
// running serve, the headless Service it names, a client Service and a
// PodDisruptionBudget.
func Check(m *Manifests) []error {
	var errs []error
	for _, o := range m.Objects {
		meta, err := metaOf(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if meta.GetName() == "" {
			errs = append(errs, fmt.Errorf("%s: an object without metadata.name", o.File))
		}
		if meta.GetNamespace() != "" {
			errs = append(errs, fmt.Errorf("%s: %s sets metadata.namespace %q: the namespace is chosen at apply time (kubectl -n) and read by the pods from the downward API", o.File, meta.GetName(), meta.GetNamespace()))
		}
	}
	if m.Kustomization != nil {
		errs = append(errs, checkKustomization(m)...)
	}
	sets := m.StatefulSets()
	if len(sets) != 1 {
		return append(errs, fmt.Errorf("%d StatefulSets, want 1", len(sets)))
	}
	sts := sets[0]
	errs = append(errs, CheckStatefulSet(sts, m.Services())...)
	errs = append(errs, CheckSelectors(sts, m.Services(), m.PodDisruptionBudgets())...)
	errs = append(errs, checkPDBs(m.PodDisruptionBudgets())...)
	return errs
}

// metaOf returns the object metadata of o.
func metaOf(o Object) (metav1.Object, error) {
	if mo, ok := o.Object.(metav1.Object); ok {
		return mo, nil
	}
	return nil, fmt.Errorf("%s: %T has no object metadata", o.File, o.Object)
}

// checkKustomization checks that the kustomization lists every other
// YAML file here and nothing else, so that kubectl apply -k applies what
// the test checked.
func checkKustomization(m *Manifests) []error {
	var errs []error
	k := m.Kustomization
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		errs = append(errs, fmt.Errorf("%s: apiVersion %q kind %q, want kustomize.config.k8s.io/v1beta1 Kustomization", KustomizationFile, k.APIVersion, k.Kind))
	}
	for _, f := range m.Files {
		if f != KustomizationFile && !slices.Contains(k.Resources, f) {
			errs = append(errs, fmt.Errorf("%s: does not list %s", KustomizationFile, f))
		}
	}
	for _, r := range k.Resources {
		if !slices.Contains(m.Files, r) || r == KustomizationFile {
			errs = append(errs, fmt.Errorf("%s: lists %s, which is not a manifest here", KustomizationFile, r))
		}
	}
	return errs
}

// serveConfig is what the checks need of serve's arguments.
type serveConfig struct {
	workers     int
	clusterPort int   // --cluster-listen's port: worker w's is clusterPort+w
	listenPorts []int // the client listeners'
	adminPort   int
	drain       time.Duration
}

// CheckStatefulSet checks the StatefulSet against serve's arguments in
// its container and against the Services: node identity, cluster ports,
// probes, the certificate volume, the grace period, resources and the
// security context.
func CheckStatefulSet(sts *appsv1.StatefulSet, services []*corev1.Service) []error {
	var errs []error
	fail := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("statefulset %s: "+format, append([]any{sts.Name}, a...)...))
	}
	spec := &sts.Spec
	if spec.Replicas == nil {
		fail("no replicas: say how many nodes")
		return errs
	}
	replicas := int(*spec.Replicas)
	if spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		fail("podManagementPolicy %q, want Parallel: nodes start together, none waits for another to be ready", spec.PodManagementPolicy)
	}
	if spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		fail("updateStrategy %q, want RollingUpdate", spec.UpdateStrategy.Type)
	}

	headless := serviceNamed(services, spec.ServiceName)
	switch {
	case spec.ServiceName == "":
		fail("no serviceName: the pods' DNS names come from a headless Service")
	case headless == nil:
		fail("serviceName %q names no Service here", spec.ServiceName)
	default:
		if headless.Spec.ClusterIP != corev1.ClusterIPNone {
			fail("its Service %s has clusterIP %q, want None (headless: one DNS name per pod)", headless.Name, headless.Spec.ClusterIP)
		}
		if !headless.Spec.PublishNotReadyAddresses {
			fail("its Service %s does not publishNotReadyAddresses: nodes starting together could not find each other", headless.Name)
		}
	}

	podSpec := &spec.Template.Spec
	if len(podSpec.Containers) != 1 {
		fail("%d containers, want 1", len(podSpec.Containers))
		return errs
	}
	c := &podSpec.Containers[0]
	cfg, cerrs := checkArgs(sts, c, replicas)
	for _, err := range cerrs {
		fail("container %s: %v", c.Name, err)
	}
	if cfg == nil {
		return errs
	}
	for _, err := range checkPorts(c, cfg) {
		fail("container %s: %v", c.Name, err)
	}
	for _, err := range checkProbes(c, cfg) {
		fail("container %s: %v", c.Name, err)
	}
	for _, err := range checkCertVolume(podSpec, c) {
		fail("container %s: %v", c.Name, err)
	}
	for _, err := range checkResources(c, cfg) {
		fail("container %s: %v", c.Name, err)
	}
	for _, err := range checkSecurity(podSpec, c) {
		fail("container %s: %v", c.Name, err)
	}
	if err := checkGrace(podSpec, c, cfg); err != nil {
		fail("%v", err)
	}
	if headless != nil {
		for _, err := range checkServicePorts(headless, c, clusterPorts(cfg)) {
			fail("%v", err)
		}
	}
	for _, svc := range services {
		if svc != headless {
			for _, err := range checkServicePorts(svc, c, cfg.listenPorts) {
				fail("%v", err)
			}
		}
	}
	return errs
}

// varRef matches a $(VAR) reference, which Kubernetes expands in args.
var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// checkArgs reads serve's arguments and checks the cluster's identity in
// them: every node finds its index in its hostname, the node list is
// the StatefulSet's pods under the headless Service, as many as replicas.
func checkArgs(sts *appsv1.StatefulSet, c *corev1.Container, replicas int) (*serveConfig, []error) {
	var errs []error
	args := c.Args
	if len(args) == 0 || args[0] != "serve" {
		return nil, []error{fmt.Errorf("args do not start with serve: %q", args)}
	}
	cfg := &serveConfig{}
	var err error
	if cfg.workers, err = flagInt(args, "workers"); err != nil {
		errs = append(errs, err)
	} else if cfg.workers < 1 {
		errs = append(errs, fmt.Errorf("--workers %d", cfg.workers))
	}
	if idx, err := flagValue(args, "node-index"); err != nil {
		errs = append(errs, err)
	} else if idx != "from-hostname" {
		errs = append(errs, fmt.Errorf("--node-index %q, want from-hostname: every pod runs the same args and is the node its ordinal says", idx))
	}
	if size, err := flagInt(args, "cluster-size"); err != nil {
		errs = append(errs, err)
	} else if size != replicas {
		errs = append(errs, fmt.Errorf("--cluster-size %d, replicas %d: change both together", size, replicas))
	}
	if cl, err := flagValue(args, "cluster-listen"); err != nil {
		errs = append(errs, err)
	} else if scheme, _, port, err := addrPort(cl); err != nil {
		errs = append(errs, fmt.Errorf("--cluster-listen: %w", err))
	} else if scheme != "tls" {
		errs = append(errs, fmt.Errorf("--cluster-listen %q: want tls://, the only cluster transport", cl))
	} else {
		cfg.clusterPort = port
	}
	if nodes, err := flagValue(args, "nodes"); err != nil {
		errs = append(errs, err)
	} else {
		want := fmt.Sprintf("%s-{i}.%s.", sts.Name, sts.Spec.ServiceName)
		if !strings.HasPrefix(nodes, want) {
			errs = append(errs, fmt.Errorf("--nodes %q does not start with %q: the StatefulSet's pods under its headless Service", nodes, want))
		}
		if _, _, port, err := addrPort(nodes); err != nil {
			errs = append(errs, fmt.Errorf("--nodes: %w", err))
		} else if cfg.clusterPort != 0 && port != cfg.clusterPort {
			errs = append(errs, fmt.Errorf("--nodes port %d, --cluster-listen port %d: nodes dial each other's cluster listener", port, cfg.clusterPort))
		}
	}
	for _, l := range flagValues(args, "listen") {
		_, _, port, err := addrPort(l)
		if err != nil {
			errs = append(errs, fmt.Errorf("--listen: %w", err))
			continue
		}
		cfg.listenPorts = append(cfg.listenPorts, port)
	}
	if len(cfg.listenPorts) == 0 {
		errs = append(errs, errors.New("no --listen"))
	}
	if admin, err := flagValue(args, "admin"); err != nil {
		errs = append(errs, fmt.Errorf("%w: the probes need the admin endpoint", err))
	} else if _, host, port, err := addrPort(admin); err != nil {
		errs = append(errs, fmt.Errorf("--admin: %w", err))
	} else if host == "localhost" || (strings.HasPrefix(host, "127.")) || host == "::1" {
		errs = append(errs, fmt.Errorf("--admin %q: on loopback the kubelet's probes cannot reach it", admin))
	} else {
		cfg.adminPort = port
	}
	if d, err := flagValue(args, "drain-timeout"); err != nil {
		errs = append(errs, fmt.Errorf("%w: the grace period is checked against it", err))
	} else if cfg.drain, err = time.ParseDuration(d); err != nil {
		errs = append(errs, fmt.Errorf("--drain-timeout: %w", err))
	}
	for _, a := range args {
		for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == ref[1] }) {
				errs = append(errs, fmt.Errorf("args use $(%s), which env does not define", ref[1]))
			}
		}
	}
	for _, e := range c.Env {
		if e.Name == "POD_NAMESPACE" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace") {
			errs = append(errs, errors.New("env POD_NAMESPACE is not from the downward API's metadata.namespace"))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// checkServicePorts checks that svc forwards to every one of ports of
// the container c.
func checkServicePorts(svc *corev1.Service, c *corev1.Container, ports []int) []error {
	var errs []error
	for _, want := range ports {
		if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
			target := sp.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(sp.Port)
			}
			return containerPort(c, target) == want
		}) {
			errs = append(errs, fmt.Errorf("service %s does not forward to container port %d", svc.Name, want))
		}
	}
	return errs
}

// CheckSelectors checks that every Service and PodDisruptionBudget
// selects the StatefulSet's pods, and that the StatefulSet's own
// selector does.
func CheckSelectors(sts *appsv1.StatefulSet, services []*corev1.Service, pdbs []*policyv1.PodDisruptionBudget) []error {
	var errs []error
	pod := labels.Set(sts.Spec.Template.Labels)
	if err := selects(sts.Spec.Selector, pod); err != nil {
		errs = append(errs, fmt.Errorf("statefulset %s: selector: %w", sts.Name, err))
	}
	for _, svc := range services {
		if len(svc.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("service %s: no selector", svc.Name))
		} else if !labels.SelectorFromSet(svc.Spec.Selector).Matches(pod) {
			errs = append(errs, fmt.Errorf("service %s: selector %v does not match the pods' labels %v", svc.Name, svc.Spec.Selector, pod))
		}
	}
	for _, pdb := range pdbs {
		if err := selects(pdb.Spec.Selector, pod); err != nil {
			errs = append(errs, fmt.Errorf("poddisruptionbudget %s: %w", pdb.Name, err))
		}
	}
	return errs
}

// selects returns an error unless sel is a non-empty selector matching pod.
func selects(sel *metav1.LabelSelector, pod labels.Set) error {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		return errors.New("no selector")
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return fmt.Errorf("selector: %w", err)
	}
	if !s.Matches(pod) {
		return fmt.Errorf("selector %v does not match the pods' labels %v", s, pod)
	}
	return nil
}

// checkPDBs checks that there is one PodDisruptionBudget and that it lets
// at most one node be down at a time.
func checkPDBs(pdbs []*policyv1.PodDisruptionBudget) []error {
	if len(pdbs) != 1 {
		return []error{fmt.Errorf("%d PodDisruptionBudgets, want 1", len(pdbs))}
	}
	pdb := pdbs[0]
	if mu := pdb.Spec.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(1) {
		return []error{fmt.Errorf("poddisruptionbudget %s: maxUnavailable %v, want 1: each node down takes its keys with it", pdb.Name, mu)}
	}
	return nil
}

// serviceNamed returns the Service called name, nil if none is.
func serviceNamed(services []*corev1.Service, name string) *corev1.Service {
	for _, s := range services {
		if s.Name == name {
			return s
		}
	}
	return nil
}
