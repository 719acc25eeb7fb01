package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// KustomizationFile is the name of the kustomization, which is not a
// Kubernetes API object: Load decodes it into Kustomization instead.
const KustomizationFile = "kustomization.yaml"

// scheme knows the API types a manifest here may hold. Anything else is
// refused, so that an object nobody checks cannot slip in.
var scheme = newScheme()

// newScheme returns a scheme with the core, apps and policy API groups.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(fmt.Sprintf("kubernetes: building the scheme: %v", err))
		}
	}
	return s
}

// Kustomization is the part of a kustomization.yaml that this directory
// uses. It is decoded strictly too: a field not here is an error, so a
// kustomization that grows (patches, a namespace) must grow this first.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

// Object is one decoded manifest and where it came from.
type Object struct {
	// File is the base name of the YAML file.
	File string
	// Object is the typed API object: *appsv1.StatefulSet, *corev1.Service,
	// *policyv1.PodDisruptionBudget, ...
	Object runtime.Object
}

// Manifests are the decoded contents of a directory of manifests.
type Manifests struct {
	Objects []Object
	// Kustomization is the directory's kustomization.yaml, nil if none.
	Kustomization *Kustomization
	// Files are the base names of the YAML files read, sorted.
	Files []string
}

// StatefulSets returns the StatefulSets among m's objects.
func (m *Manifests) StatefulSets() []*appsv1.StatefulSet { return objectsOf[*appsv1.StatefulSet](m) }

// Services returns the Services among m's objects.
func (m *Manifests) Services() []*corev1.Service { return objectsOf[*corev1.Service](m) }

// PodDisruptionBudgets returns the PodDisruptionBudgets among m's objects.
func (m *Manifests) PodDisruptionBudgets() []*policyv1.PodDisruptionBudget {
	return objectsOf[*policyv1.PodDisruptionBudget](m)
}

// objectsOf returns the objects of m of type T, in file order.
func objectsOf[T runtime.Object](m *Manifests) []T {
	var out []T
	for _, o := range m.Objects {
		if t, ok := o.Object.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// Load reads every .yaml and .yml file in dir, each possibly holding
// several documents separated by ---, and decodes each document
// strictly into its API type by apiVersion and kind.
func Load(dir string) (*Manifests, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the manifests: %w", err)
	}
	m := &Manifests{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		m.Files = append(m.Files, name)
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("reading the manifests: %w", err)
		}
		if name == KustomizationFile {
			var k Kustomization
			if err := yaml.UnmarshalStrict(data, &k); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			m.Kustomization = &k
			continue
		}
		docs, err := splitDocuments(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for i, doc := range docs {
			obj, err := Decode(doc)
			if err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", name, i+1, err)
			}
			m.Objects = append(m.Objects, Object{File: name, Object: obj})
		}
	}
	slices.Sort(m.Files)
	return m, nil
}

// splitDocuments returns the documents of a multi-document YAML stream,
// leaving out those with nothing but comments.
func splitDocuments(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("splitting the YAML documents: %w", err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("parsing a YAML document: %w", err)
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "" {
			continue
		}
		docs = append(docs, doc)
	}
}

// Decode decodes one YAML document into the API type its apiVersion and
// kind name. A field the type does not have, a field given twice or a
// value of the wrong type is an error.
func Decode(doc []byte) (runtime.Object, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, fmt.Errorf("reading apiVersion and kind: %w", err)
	}
	if tm.APIVersion == "" || tm.Kind == "" {
		return nil, fmt.Errorf("no apiVersion or kind")
	}
	gvk := schema.FromAPIVersionAndKind(tm.APIVersion, tm.Kind)
	obj, err := scheme.New(gvk)
	if err != nil {
		return nil, fmt.Errorf("%s %s: not a type these manifests may hold: %w", tm.APIVersion, tm.Kind, err)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return obj, nil
}
