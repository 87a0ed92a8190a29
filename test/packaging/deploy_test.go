package packaging

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ovnsec/ovnsec/internal/testenv"
)

const (
	manifestPath   = "deploy/kubernetes/ovnsecd-daemonset.yaml"
	dockerfilePath = "deploy/container/Dockerfile"
	// ovsRundir is the OVS run directory, the host's and the pod's.
	ovsRundir = "/var/run/openvswitch"
)

// The parts of the Kubernetes objects the tests read.
type object struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   meta              `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	Spec       daemonSetSpec     `yaml:"spec"`
}

type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type daemonSetSpec struct {
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	UpdateStrategy struct {
		Type string `yaml:"type"`
	} `yaml:"updateStrategy"`
	Template struct {
		Metadata meta    `yaml:"metadata"`
		Spec     podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	HostNetwork       bool              `yaml:"hostNetwork"`
	HostPID           bool              `yaml:"hostPID"`
	PriorityClassName string            `yaml:"priorityClassName"`
	NodeSelector      map[string]string `yaml:"nodeSelector"`
	Tolerations       []struct {
		Key      string `yaml:"key"`
		Operator string `yaml:"operator"`
	} `yaml:"tolerations"`
	Containers []container `yaml:"containers"`
	Volumes    []struct {
		Name     string `yaml:"name"`
		HostPath *struct {
			Path string `yaml:"path"`
			Type string `yaml:"type"`
		} `yaml:"hostPath"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

type container struct {
	Name            string   `yaml:"name"`
	Image           string   `yaml:"image"`
	Command         []string `yaml:"command"`
	Args            []string `yaml:"args"`
	SecurityContext struct {
		Privileged *bool `yaml:"privileged"`
	} `yaml:"securityContext"`
	LivenessProbe *struct {
		Exec struct {
			Command []string `yaml:"command"`
		} `yaml:"exec"`
	} `yaml:"livenessProbe"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

// readManifest parses every YAML document of the manifest.
func readManifest(t *testing.T) (cm, ds object) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), manifestPath))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var kinds []string
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", manifestPath, err)
		}
		kinds = append(kinds, o.Kind)
		switch o.Kind {
		case "ConfigMap":
			cm = o
		case "DaemonSet":
			ds = o
		}
	}
	if !slices.Equal(kinds, []string{"ConfigMap", "DaemonSet"}) {
		t.Fatalf("%s holds %q, want a ConfigMap and a DaemonSet", manifestPath, kinds)
	}
	return cm, ds
}

// TestDaemonSet checks the fields of the DaemonSet that make ovnsecd work
// on an ovn-kubernetes node: the host's network and process ids, every
// node, privileges, the OVS run directory and the configuration mounted,
// and a probe that asks ovnsecd itself.
func TestDaemonSet(t *testing.T) {
	cm, ds := readManifest(t)
	if ds.APIVersion != "apps/v1" || ds.Metadata.Name != "ovnsecd" {
		t.Errorf("DaemonSet %s %s, want apps/v1 ovnsecd", ds.APIVersion, ds.Metadata.Name)
	}
	if ds.Metadata.Namespace == "" || cm.Metadata.Namespace != ds.Metadata.Namespace {
		t.Errorf("namespaces: ConfigMap %q, DaemonSet %q; want the same one", cm.Metadata.Namespace, ds.Metadata.Namespace)
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels %v", k, v, ds.Spec.Template.Metadata.Labels)
		}
	}
	if len(ds.Spec.Selector.MatchLabels) == 0 {
		t.Error("DaemonSet has no selector")
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostNetwork {
		t.Error("hostNetwork is not true: ovnsecd must see br-phy, the NIC and UDP 500/4500 of the node")
	}
	if !pod.HostPID {
		t.Error("hostPID is not true: the pidfiles in the node's OVS run directory would name pids the node cannot use")
	}
	if pod.NodeSelector["kubernetes.io/os"] != "linux" {
		t.Errorf("nodeSelector %v, want kubernetes.io/os=linux", pod.NodeSelector)
	}
	tolerateAll := false
	for _, tol := range pod.Tolerations {
		tolerateAll = tolerateAll || (tol.Operator == "Exists" && tol.Key == "")
	}
	if !tolerateAll {
		t.Errorf("tolerations %+v: want operator Exists without a key (every node, whatever its taints, as ovn-ipsec)", pod.Tolerations)
	}
	if pod.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q, want system-node-critical", pod.PriorityClassName)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	if c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("container is not privileged: ovnsecd writes /proc/sys/net/... and may open /dev/net/tun")
	}

	// Volumes: every mount names a volume, every volume is mounted.
	mounts := map[string]string{} // mount path -> volume
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
		if m.MountPath == ovsRundir && m.ReadOnly {
			t.Errorf("%s is mounted read-only: ovnsecd writes its pidfiles and control sockets there", ovsRundir)
		}
	}
	hostPaths := map[string]string{}  // volume -> host path
	configMaps := map[string]string{} // volume -> ConfigMap
	for _, v := range pod.Volumes {
		switch {
		case v.HostPath != nil:
			hostPaths[v.Name] = v.HostPath.Path
		case v.ConfigMap != nil:
			configMaps[v.Name] = v.ConfigMap.Name
		default:
			t.Errorf("volume %s is neither a hostPath nor a ConfigMap", v.Name)
		}
		if !slices.Contains(mapsValues(mounts), v.Name) {
			t.Errorf("volume %s is not mounted", v.Name)
		}
	}
	for path, vol := range mounts {
		_, hp := hostPaths[vol]
		_, cmv := configMaps[vol]
		if !hp && !cmv {
			t.Errorf("mount %s names volume %s, which is not defined", path, vol)
		}
	}
	// The node's OVS directories at the same paths: the database names
	// certificate files by host path.
	for _, p := range []string{ovsRundir, "/etc/openvswitch"} {
		if hostPaths[mounts[p]] != p {
			t.Errorf("%s is not the node's %s (volume %q, host path %q)", p, p, mounts[p], hostPaths[mounts[p]])
		}
	}

	// The command: a shell that sources the ConfigMap's file and runs
	// ovnsecd on the node's database with a pidfile (for the probe).
	if !slices.Equal(c.Command, []string{"/bin/sh", "-c"}) || len(c.Args) != 1 {
		t.Fatalf("command %q args %q, want /bin/sh -c SCRIPT", c.Command, c.Args)
	}
	script := c.Args[0]
	src := regexp.MustCompile(`(?m)^\s*\. (/\S+)$`).FindStringSubmatch(script)
	if src == nil {
		t.Fatalf("the script sources no configuration file:\n%s", script)
	}
	dir, key := filepath.Split(src[1])
	if cmName := configMaps[mounts[filepath.Clean(dir)]]; cmName != cm.Metadata.Name {
		t.Errorf("the script sources %s, but %s is not where ConfigMap %s is mounted (mounts %v)", src[1], dir, cm.Metadata.Name, mounts)
	}
	if _, ok := cm.Data[key]; !ok {
		t.Errorf("the script sources %s, but ConfigMap %s has no key %q", src[1], cm.Metadata.Name, key)
	}
	for _, want := range []string{"exec /usr/bin/ovnsecd ", "--pidfile", "$OVNSECD_OPTS", "unix:" + ovsRundir + "/db.sock"} {
		if !strings.Contains(script, want) {
			t.Errorf("the script does not contain %q:\n%s", want, script)
		}
	}

	if c.LivenessProbe == nil {
		t.Fatal("no liveness probe")
	}
	probe := c.LivenessProbe.Exec.Command
	if len(probe) < 4 || probe[0] != "ovs-appctl" || !slices.Contains(probe, "ovnsecd") || probe[len(probe)-1] != "version" {
		t.Errorf("liveness probe %q, want ovs-appctl -t ovnsecd version", probe)
	}
}

// mapsValues lists m's values.
func mapsValues(m map[string]string) []string {
	var v []string
	for _, x := range m {
		v = append(v, x)
	}
	return v
}

// TestDaemonSetScriptRuns runs the container's script with sh, as the pod
// would, with the ConfigMap's file in place of the mounted one and the
// built ovnsecd asked for --version: the script, the ConfigMap's options
// and the database argument all parse.
func TestDaemonSetScriptRuns(t *testing.T) {
	testenv.NeedCommands(t, "sh")
	cm, ds := readManifest(t)
	bin := filepath.Join(binaries(t), "ovnsecd")
	script := ds.Spec.Template.Spec.Containers[0].Args[0]
	src := regexp.MustCompile(`(?m)^\s*\. (/\S+)$`).FindStringSubmatch(script)
	if src == nil {
		t.Fatalf("the script sources no configuration file:\n%s", script)
	}
	conf := filepath.Join(t.TempDir(), "ovnsecd")
	if err := os.WriteFile(conf, []byte(cm.Data[filepath.Base(src[1])]), 0o644); err != nil {
		t.Fatal(err)
	}
	script = strings.Replace(script, src[0], ". "+conf, 1)
	if !strings.Contains(script, "exec /usr/bin/ovnsecd ") {
		t.Fatalf("the script does not exec /usr/bin/ovnsecd:\n%s", script)
	}
	script = strings.Replace(script, "exec /usr/bin/ovnsecd ", "exec "+bin+" --version ", 1)
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ovnsecd "+testVersion {
		t.Errorf("the container script with the ConfigMap's options: %v\n%s\nscript:\n%s", err, out, script)
	}
}

// TestDockerfile checks the container recipe against the DaemonSet and
// this Debian 12 machine; no container engine runs here to build it.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), dockerfilePath))
	if err != nil {
		t.Fatal(err)
	}
	df := string(data)
	var froms []string
	for _, m := range regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(df, -1) {
		froms = append(froms, m[1])
	}
	if len(froms) != 2 || froms[1] != "debian:12-slim" {
		t.Fatalf("FROM lines %q: want a build stage and debian:12-slim", froms)
	}
	// The Go image is the toolchain go.mod asks for.
	goImage := regexp.MustCompile(`(?m)^ARG GO_IMAGE=golang:(\d+\.\d+)-bookworm$`).FindStringSubmatch(df)
	gomod, err := os.ReadFile(filepath.Join(repoRoot(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)(\.\d+)?$`).FindSubmatch(gomod)
	if goImage == nil || goLine == nil || goImage[1] != string(goLine[1]) {
		t.Errorf("the build image's Go (%q) is not go.mod's (%q)", goImage, goLine)
	}
	if !regexp.MustCompile(`CGO_ENABLED=0 go build .* -o /out/ \./cmd/ovnsecd \./cmd/ovnsec;`).MatchString(df) {
		t.Error("the build stage does not build static ./cmd/ovnsecd and ./cmd/ovnsec into /out/")
	}
	if !strings.Contains(df, "COPY --from=build /out/ovnsecd /out/ovnsec /usr/bin/") {
		t.Error("the image does not put ovnsecd and ovnsec in /usr/bin, where the DaemonSet runs them")
	}
	_, ds := readManifest(t)
	if img := ds.Spec.Template.Spec.Containers[0].Image; !strings.Contains(df, "-t "+img+" ") {
		t.Errorf("the DaemonSet's image %s is not the tag the Dockerfile's instructions build", img)
	}

	// The OVS tools ovnsecd runs and the probe uses come from the Debian
	// packages the image installs (asked of this Debian 12 machine's dpkg).
	install := regexp.MustCompile(`apt-get install -y --no-install-recommends((?:\s+\\?\s*[a-z0-9.+-]+)+)`).FindStringSubmatch(df)
	if install == nil {
		t.Fatal("the image installs no Debian package")
	}
	pkgs := strings.Fields(strings.ReplaceAll(install[1], "\\", " "))
	testenv.NeedCommands(t, "dpkg")
	for _, tool := range []string{"ovs-vsctl", "ovs-ofctl", "ovs-appctl"} {
		out, err := exec.Command("dpkg", "-S", "/usr/bin/"+tool).CombinedOutput()
		if err != nil {
			testenv.Missing(t, "/usr/bin/%s from a Debian package (%s)", tool, strings.TrimSpace(string(out)))
			continue
		}
		pkg, _, _ := strings.Cut(string(out), ":")
		if !slices.Contains(pkgs, pkg) {
			t.Errorf("%s is in Debian package %s, which the image does not install (it installs %q)", tool, pkg, pkgs)
		}
	}
}

// TestDockerignoreKeepsTheBuild checks that the build context filter
// beside the Dockerfile keeps every package the two binaries are built
// from.
func TestDockerignoreKeepsTheBuild(t *testing.T) {
	testenv.NeedCommands(t, "go")
	data, err := os.ReadFile(filepath.Join(repoRoot(), dockerfilePath+".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "!"); ok {
			kept[p] = true
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd/ovnsecd", "./cmd/ovnsec")
	cmd.Dir = repoRoot()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency, downloaded in the image
		}
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		if !kept[top] {
			t.Errorf("package directory %s is not kept by %s.dockerignore", rel, dockerfilePath)
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if !kept[f] {
			t.Errorf("%s is not kept by %s.dockerignore", f, dockerfilePath)
		}
	}
}
