package check

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// The image deploy/k8s/image sets for every object.
const wantImage = "flashgate:local"

// The Secrets of deploy/k8s and the roles allowed to read each: a role that
// reads another's secret fails the check (the gateway is public-facing and
// must never hold the admin token).
var secretRoles = map[string][]string{
	"flashgate-db":          {"gateway", "worker", "admin", "migrate"}, // FLASHGATE_MYSQL_PASSWORD
	"flashgate-redis":       {"gateway", "worker", "admin"},
	"flashgate-auth":        {"gateway"},
	"flashgate-admin-token": {"admin"},
	"flashgate-alipay":      {"gateway", "worker"},
}

// Secrets each role must read to start.
var requiredSecrets = map[string][]string{
	"gateway": {"flashgate-db", "flashgate-redis", "flashgate-auth"},
	"worker":  {"flashgate-db", "flashgate-redis"},
	"admin":   {"flashgate-db", "flashgate-redis", "flashgate-admin-token"},
	"migrate": {"flashgate-db"},
}

// build runs kustomize on dir and decodes every object strictly.
func build(t *testing.T, dir string) []runtime.Object {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	res, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	strict := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})
	var objs []runtime.Object
	for _, r := range res.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		obj, _, err := strict.Decode(y, nil, nil)
		if err != nil {
			t.Errorf("%s %s/%s: %v", dir, r.GetKind(), r.GetName(), err)
			continue
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		t.Fatalf("kustomize build %s: no objects", dir)
	}
	return objs
}

// podOf returns the role and pod template of a workload.
func podOf(obj runtime.Object) (string, *corev1.PodTemplateSpec) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return o.Labels["app.kubernetes.io/component"], &o.Spec.Template
	case *batchv1.Job:
		return o.Labels["app.kubernetes.io/component"], &o.Spec.Template
	}
	return "", nil
}

func TestKubernetesManifests(t *testing.T) {
	roles := build(t, "../k8s")
	migrate := build(t, "../k8s/migrate")

	// The Job lives only in its own kustomization: `apply -k deploy/k8s`
	// must never meet a finished, immutable Job.
	for _, o := range roles {
		if _, ok := o.(*batchv1.Job); ok {
			t.Errorf("deploy/k8s builds a Job: it belongs to deploy/k8s/migrate only")
		}
	}
	// The migrate kustomization builds the Job and the ConfigMap it reads
	// (the same as the roles'), nothing else.
	configMaps := map[string]*corev1.ConfigMap{}
	for _, o := range roles {
		if cm, ok := o.(*corev1.ConfigMap); ok {
			configMaps[cm.Name] = cm
		}
	}
	if dsn := configMaps["flashgate-config"].Data["FLASHGATE_MYSQL_DSN"]; dsn == "" || strings.Contains(strings.SplitN(dsn, "@", 2)[0], ":") {
		t.Errorf("ConfigMap FLASHGATE_MYSQL_DSN %q: want one without a password (Secret flashgate-db holds it)", dsn)
	}
	jobs := 0
	for _, o := range migrate {
		switch o := o.(type) {
		case *batchv1.Job:
			jobs++
		case *corev1.ConfigMap:
			if c := configMaps[o.Name]; c == nil || !maps.Equal(c.Data, o.Data) {
				t.Errorf("deploy/k8s/migrate builds ConfigMap %s unlike the roles' one", o.Name)
			}
		default:
			t.Errorf("deploy/k8s/migrate builds a %T: only the Job and its ConfigMap belong there", o)
		}
	}
	if jobs != 1 {
		t.Fatalf("deploy/k8s/migrate builds %d Jobs, want 1", jobs)
	}
	seen := map[string]bool{}
	pods := map[string]*corev1.PodTemplateSpec{}
	for _, o := range append(slices.Clone(roles), migrate...) {
		role, pod := podOf(o)
		if pod == nil {
			continue
		}
		seen[role] = true
		pods[role] = pod
		checkPod(t, role, pod, configMaps)
	}
	for _, role := range []string{"gateway", "worker", "admin", "migrate"} {
		if !seen[role] {
			t.Errorf("no workload for role %s", role)
		}
	}

	// Selectors of Services, PodDisruptionBudgets and the HPA select pods
	// that exist; Services target named ports those pods declare.
	for _, o := range roles {
		switch o := o.(type) {
		case *corev1.Service:
			pod := selectPod(t, "Service "+o.Name, labels.SelectorFromSet(o.Spec.Selector), pods)
			for _, p := range o.Spec.Ports {
				if pod != nil && !hasPort(pod, p.TargetPort) {
					t.Errorf("Service %s: targetPort %s is no port of its pods", o.Name, p.TargetPort.String())
				}
			}
		case *policyv1.PodDisruptionBudget:
			sel, err := metaSelector(o.Spec.Selector.MatchLabels)
			if err != nil {
				t.Fatal(err)
			}
			selectPod(t, "PodDisruptionBudget "+o.Name, sel, pods)
		case *autoscalingv2.HorizontalPodAutoscaler:
			found := false
			for _, d := range roles {
				if d, ok := d.(*appsv1.Deployment); ok && d.Name == o.Spec.ScaleTargetRef.Name && o.Spec.ScaleTargetRef.Kind == "Deployment" {
					found = true
				}
			}
			if !found {
				t.Errorf("HorizontalPodAutoscaler %s scales %s %s, which is not built", o.Name, o.Spec.ScaleTargetRef.Kind, o.Spec.ScaleTargetRef.Name)
			}
		case *appsv1.Deployment:
			if !labels.SelectorFromSet(o.Spec.Selector.MatchLabels).Matches(labels.Set(o.Spec.Template.Labels)) {
				t.Errorf("Deployment %s: its selector does not select its own pods", o.Name)
			}
		}
	}
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	if len(m) == 0 {
		return nil, fmt.Errorf("empty selector selects everything")
	}
	return labels.SelectorFromSet(m), nil
}

func selectPod(t *testing.T, what string, sel labels.Selector, pods map[string]*corev1.PodTemplateSpec) *corev1.PodTemplateSpec {
	t.Helper()
	var found *corev1.PodTemplateSpec
	for _, p := range pods {
		if sel.Matches(labels.Set(p.Labels)) {
			if found != nil {
				t.Errorf("%s selects pods of two workloads", what)
			}
			found = p
		}
	}
	if found == nil {
		t.Errorf("%s selects no pods", what)
	}
	return found
}

func hasPort(pod *corev1.PodTemplateSpec, p intstr.IntOrString) bool {
	for _, c := range pod.Spec.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return true
			}
		}
	}
	return false
}

// checkPod checks one role's pod template: image, secrets, probes, ports.
func checkPod(t *testing.T, role string, pod *corev1.PodTemplateSpec, configMaps map[string]*corev1.ConfigMap) {
	t.Helper()
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want 1", role, len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Image != wantImage {
		t.Errorf("%s: image %q, want %q (set by the image component)", role, c.Image, wantImage)
	}
	if len(c.Args) == 0 || c.Args[0] != role {
		t.Errorf("%s: args %v, want the role first", role, c.Args)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s: the container must run with a read-only root and no privilege escalation", role)
	}

	// Secrets: only those of the role, and every one it needs.
	read := map[string]bool{}
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil {
			read[e.SecretRef.Name] = true
		}
		if e.ConfigMapRef != nil && configMaps[e.ConfigMapRef.Name] == nil {
			t.Errorf("%s: envFrom ConfigMap %s is not built", role, e.ConfigMapRef.Name)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom == nil {
			continue
		}
		if r := e.ValueFrom.SecretKeyRef; r != nil {
			read[r.Name] = true
		}
		if r := e.ValueFrom.ConfigMapKeyRef; r != nil && (r.Optional == nil || !*r.Optional) {
			if cm := configMaps[r.Name]; cm == nil || cm.Data[r.Key] == "" {
				t.Errorf("%s: env %s reads ConfigMap %s key %s, which is not built", role, e.Name, r.Name, r.Key)
			}
		}
	}
	for s := range read {
		allowed, known := secretRoles[s]
		switch {
		case !known:
			t.Errorf("%s: reads Secret %s, which deploy/README.md does not create", role, s)
		case !slices.Contains(allowed, role):
			t.Errorf("%s: reads Secret %s, which only %v may read", role, s, allowed)
		}
	}
	for _, s := range requiredSecrets[role] {
		if !read[s] {
			t.Errorf("%s: does not read Secret %s, which it needs", role, s)
		}
	}
	if role == "migrate" {
		return
	}

	// Probes: on declared ports; readiness is /readyz, liveness /healthz.
	for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", role, name)
			continue
		}
		if !hasPort(pod, p.HTTPGet.Port) {
			t.Errorf("%s: %s probe on port %s, which the container does not declare", role, name, p.HTTPGet.Port.String())
		}
		want := "/healthz"
		if name == "readiness" {
			want = "/readyz"
		}
		if p.HTTPGet.Path != want {
			t.Errorf("%s: %s probe on %s, want %s", role, name, p.HTTPGet.Path, want)
		}
	}

	// Scraping: annotations name a declared port, and that port is the
	// role's listener.
	a := pod.Annotations
	if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("%s: not annotated for scraping /metrics", role)
	}
	var port int32
	fmt.Sscan(a["prometheus.io/port"], &port)
	if !hasPort(pod, intstr.FromInt32(port)) {
		t.Errorf("%s: prometheus.io/port %q is not a container port", role, a["prometheus.io/port"])
	}
	listener := map[string]string{"gateway": "FLASHGATE_HTTP_ADDR", "admin": "FLASHGATE_ADMIN_ADDR", "worker": "FLASHGATE_WORKER_ADDR"}[role]
	addr := env[listener]
	if addr == "" {
		for _, cm := range configMaps {
			if v := cm.Data[listener]; v != "" {
				addr = v
			}
		}
	}
	if !strings.HasPrefix(addr, "0.0.0.0:") || !strings.HasSuffix(addr, fmt.Sprintf(":%d", port)) {
		t.Errorf("%s: %s=%q, want 0.0.0.0 and the scraped port %d", role, listener, addr, port)
	}
}
