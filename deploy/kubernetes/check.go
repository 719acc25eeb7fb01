package kubernetes

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

// clusterPorts returns the cluster port of each worker: clusterPort+w.
func clusterPorts(cfg *serveConfig) []int {
	ports := make([]int, cfg.workers)
	for w := range ports {
		ports[w] = cfg.clusterPort + w
	}
	return ports
}

// checkPorts checks that the container declares exactly the ports serve
// listens on: the client listeners, the admin endpoint and one cluster
// port per worker, named cluster-W.
func checkPorts(c *corev1.Container, cfg *serveConfig) []error {
	var errs []error
	want := map[int32]string{} // port: its name, "" for any
	for _, p := range cfg.listenPorts {
		want[int32(p)] = ""
	}
	want[int32(cfg.adminPort)] = ""
	for w, p := range clusterPorts(cfg) {
		if _, dup := want[int32(p)]; dup {
			errs = append(errs, fmt.Errorf("worker %d's cluster port %d is also a client or admin port", w, p))
		}
		want[int32(p)] = "cluster-" + strconv.Itoa(w)
	}
	seen := map[int32]bool{}
	for _, p := range c.Ports {
		name, ok := want[p.ContainerPort]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("port %s (%d) is none that serve listens on with --workers %d, cluster port %d", p.Name, p.ContainerPort, cfg.workers, cfg.clusterPort))
		case name != "" && p.Name != name:
			errs = append(errs, fmt.Errorf("port %d is named %q, want %q", p.ContainerPort, p.Name, name))
		case seen[p.ContainerPort]:
			errs = append(errs, fmt.Errorf("port %d declared twice", p.ContainerPort))
		}
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			errs = append(errs, fmt.Errorf("port %d is %s, want TCP", p.ContainerPort, p.Protocol))
		}
		seen[p.ContainerPort] = true
	}
	for p, name := range want {
		if !seen[p] {
			if name == "" {
				name = "client or admin"
			}
			errs = append(errs, fmt.Errorf("no port %d (%s): --workers %d means cluster ports %d..%d", p, name, cfg.workers, cfg.clusterPort, cfg.clusterPort+cfg.workers-1))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// containerPort resolves a port given by number or by name to the
// container's port number, 0 if it names none.
func containerPort(c *corev1.Container, p intstr.IntOrString) int {
	if p.Type == intstr.Int {
		return p.IntValue()
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort)
		}
	}
	return 0
}

// checkProbes checks that readiness asks /readyz and liveness /healthz of
// the admin endpoint.
func checkProbes(c *corev1.Container, cfg *serveConfig) []error {
	var errs []error
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
		{"livenessProbe", c.LivenessProbe, "/healthz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			errs = append(errs, fmt.Errorf("no %s with httpGet %s", p.kind, p.path))
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			errs = append(errs, fmt.Errorf("%s asks %q, want %s", p.kind, g.Path, p.path))
		}
		if port := containerPort(c, g.Port); port != cfg.adminPort {
			errs = append(errs, fmt.Errorf("%s on port %s (%d), want the admin port %d", p.kind, g.Port.String(), port, cfg.adminPort))
		}
		if g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
			errs = append(errs, fmt.Errorf("%s scheme %s: the admin endpoint is plain HTTP", p.kind, g.Scheme))
		}
	}
	return errs
}

// checkCertVolume checks that --cluster-cert, --cluster-key and
// --cluster-ca name keys of a Secret mounted read-only at their
// directory.
func checkCertVolume(pod *corev1.PodSpec, c *corev1.Container) []error {
	var errs []error
	for _, flag := range []string{"cluster-cert", "cluster-key", "cluster-ca"} {
		file, err := flagValue(c.Args, flag)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dir, base := path.Split(file)
		dir = path.Clean(dir)
		i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return path.Clean(m.MountPath) == dir })
		if i < 0 {
			errs = append(errs, fmt.Errorf("--%s %s: nothing is mounted at %s", flag, file, dir))
			continue
		}
		mount := c.VolumeMounts[i]
		if !mount.ReadOnly {
			errs = append(errs, fmt.Errorf("--%s %s: the mount at %s is not readOnly", flag, file, dir))
		}
		if mount.SubPath != "" {
			errs = append(errs, fmt.Errorf("--%s %s: the mount at %s has a subPath, which a renewed certificate does not reach", flag, file, dir))
		}
		j := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == mount.Name })
		if j < 0 || pod.Volumes[j].Secret == nil {
			errs = append(errs, fmt.Errorf("--%s %s: the volume %s mounted at %s is not a Secret", flag, file, mount.Name, dir))
			continue
		}
		sec := pod.Volumes[j].Secret
		keys := ClusterSecretKeys
		if len(sec.Items) > 0 {
			keys = nil
			for _, it := range sec.Items {
				keys = append(keys, it.Path)
			}
		}
		if !slices.Contains(keys, base) {
			errs = append(errs, fmt.Errorf("--%s %s: the Secret %s has no %s (it has %v)", flag, file, sec.SecretName, base, keys))
		}
	}
	return errs
}

// checkResources checks that the container asks for one CPU per worker.
func checkResources(c *corev1.Container, cfg *serveConfig) []error {
	want := resource.MustParse(strconv.Itoa(cfg.workers))
	var errs []error
	for kind, list := range map[string]corev1.ResourceList{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		if q, ok := list[corev1.ResourceCPU]; !ok || q.Cmp(want) != 0 {
			errs = append(errs, fmt.Errorf("resources.%s.cpu %s, want %d: one per worker", kind, q.String(), cfg.workers))
		}
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// checkSecurity checks that the container runs as a user other than
// root, cannot gain privileges and cannot write its root filesystem.
func checkSecurity(pod *corev1.PodSpec, c *corev1.Container) []error {
	var errs []error
	sc := c.SecurityContext
	if sc == nil {
		return []error{errors.New("no securityContext")}
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod.SecurityContext != nil {
		nonRoot = pod.SecurityContext.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		errs = append(errs, errors.New("runAsNonRoot is not true"))
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errs = append(errs, errors.New("readOnlyRootFilesystem is not true"))
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs = append(errs, errors.New("allowPrivilegeEscalation is not false"))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		errs = append(errs, errors.New("capabilities do not drop ALL"))
	} else if len(sc.Capabilities.Add) > 0 {
		errs = append(errs, fmt.Errorf("capabilities add %v: serve needs none", sc.Capabilities.Add))
	}
	return errs
}

// checkGrace checks that the pod's grace period covers the preStop sleep,
// the drain and the master's margin after it, so that the kubelet's
// SIGKILL does not cut the drain short.
func checkGrace(pod *corev1.PodSpec, c *corev1.Container, cfg *serveConfig) error {
	if pod.TerminationGracePeriodSeconds == nil {
		return fmt.Errorf("no terminationGracePeriodSeconds: the default 30s is checked against nothing, say it")
	}
	grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
	var sleep time.Duration
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		ps := c.Lifecycle.PreStop
		if ps.Sleep == nil {
			return errors.New("a preStop other than sleep: its length is unknown, the grace period cannot be checked")
		}
		sleep = time.Duration(ps.Sleep.Seconds) * time.Second
	}
	if need := sleep + cfg.drain + WorkerKillMargin; grace <= need {
		return fmt.Errorf("terminationGracePeriodSeconds %v is not over preStop sleep %v + --drain-timeout %v + %v: the kubelet would kill the drain", grace, sleep, cfg.drain, WorkerKillMargin)
	}
	return nil
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
