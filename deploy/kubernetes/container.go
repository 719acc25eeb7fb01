package kubernetes

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The checks of the pod template's container against serve's arguments.

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
