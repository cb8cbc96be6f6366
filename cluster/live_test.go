package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/devenv-tool/devenv/internal/log"
	"github.com/devenv-tool/devenv/internal/supervise"
)

func TestLiveResult(t *testing.T) {
	target := LiveTarget{Namespace: "ns", Pod: "app-1", Container: "app"}
	for _, tc := range []struct {
		name   string
		code   int
		out    string
		logs   string
		noLive bool
		want   string // the error's text; "" = nil
	}{
		{name: "serving", code: 0, out: "serving on 10.0.0.5:8080\n"},
		{name: "not on this node", code: 10, out: "container abc is not running on this node", noLive: true,
			want: "cannot update in place: container abc is not running on this node"},
		{name: "no supervisor as PID 1", code: 11, out: "the container's first process (/echo) is not devenv's supervisor\n", noLive: true,
			want: "cannot update in place: the container's first process (/echo) is not devenv's supervisor"},
		{name: "user cannot write", code: 13, out: "user 1000 cannot write /app/server: permission denied\n", noLive: true,
			want: "cannot update in place: user 1000 cannot write /app/server: permission denied"},
		{name: "nothing to run", code: 126, out: "nsenter: failed to execute: permission denied", noLive: true,
			want: "cannot update in place: nsenter: failed to execute: permission denied"},
		{name: "no supervisor file", code: 127, out: "first\nnsenter: failed to execute /.devenv/supervise: No such file or directory", noLive: true,
			want: "cannot update in place: nsenter: failed to execute /.devenv/supervise: No such file or directory"},
		{name: "new version exited", code: 12, out: "exited with code 2", logs: "a\nb\npanic: boom\n",
			want: "the new version exited with code 2; last 10 log lines:\na\nb\npanic: boom"},
		{name: "new version exited, no logs", code: 12, out: "exit status 1 start: exec format error",
			want: "the new version exit status 1 start: exec format error"},
		{name: "not listening", code: 14, out: "the new process did not accept connections on 10.0.0.5:8080 within 1m0s",
			want: "updating app in pod app-1: the new process did not accept connections on 10.0.0.5:8080 within 1m0s (exit code 14)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := liveResult(target, tc.code, tc.out, func() string { return tc.logs })
			if tc.want == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v\nwant %s", err, tc.want)
			}
			if errors.Is(err, ErrNoLive) != tc.noLive {
				t.Fatalf("errors.Is(err, ErrNoLive) = %v, want %v", !tc.noLive, tc.noLive)
			}
		})
	}
}

func TestExecOutcome(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		wantCode int
		wantOut  string // contained in the output
		wantErr  string // contained in the error; "" = none
		noLive   bool
	}{
		{name: "success", wantCode: 0, wantOut: "serving"},
		{name: "exit code", err: utilexec.CodeExitError{Err: errors.New("command terminated with exit code 13"), Code: 13}, wantCode: 13, wantOut: "serving"},
		{name: "wrapped exit code", err: fmt.Errorf("stream: %w", utilexec.CodeExitError{Err: errors.New("x"), Code: 12}), wantCode: 12},
		{name: "no supervisor in the image",
			err:      errors.New(`Internal error occurred: error executing command in container: failed to exec in container: failed to start exec "3f2": OCI runtime exec failed: exec failed: unable to start container process: exec: "/.devenv/supervise": stat /.devenv/supervise: no such file or directory: unknown`),
			wantCode: 127, wantOut: "the container has no devenv supervisor to run"},
		{name: "supervisor not executable for the user",
			err:      errors.New(`OCI runtime exec failed: exec failed: unable to start container process: exec: "/.devenv/supervise": permission denied: unknown`),
			wantCode: 127, wantOut: "no devenv supervisor"},
		{name: "exec forbidden",
			err:     errors.New(`unable to upgrade connection: pods "app-1" is forbidden: User "dev" cannot create resource "pods/exec" in API group "" in the namespace "ns"`),
			wantErr: "not allowed to exec into the pod", noLive: true},
		{name: "connection lost", err: errors.New("connection reset by peer"), wantErr: "exec: connection reset by peer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, code, err := execOutcome("serving", tc.err)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || errors.Is(err, ErrNoLive) != tc.noLive {
					t.Fatalf("err = %v, want one saying %q (ErrNoLive %v)", err, tc.wantErr, tc.noLive)
				}
				return
			}
			if err != nil || code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("execOutcome = %q, %d, %v; want %d and output with %q", out, code, err, tc.wantCode, tc.wantOut)
			}
		})
	}
}

// fakeBin writes an executable shell script called name into dir.
func fakeBin(t *testing.T, dir, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runScript runs script with sh -c as the node would, PATH being bin
// first, and returns its output and exit code.
func runScript(t *testing.T, bin, script string, stdin []byte, args ...string) (string, int) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	cmd := exec.Command(sh, append([]string{"-c", script, "sh"}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestNodeUpdateScript runs the node's script with stand-ins for crictl
// and nsenter: nsenter must run devenv's copy given by devenv, outside
// the container's mount namespace, and pass the container's root.
func TestNodeUpdateScript(t *testing.T) {
	bin := t.TempDir()
	// The containerd state file is not on this machine: crictl answers.
	fakeBin(t, bin, "crictl", `[ "$1 $6" = "inspect abc123" ] && echo 4242 || exit 1`)
	fakeBin(t, bin, "nsenter", `for a in "$@"; do echo "arg $a"; done; exit 0`)
	sup := filepath.Join(t.TempDir(), "supervise-0123456789abcdef")
	fakeBin(t, filepath.Dir(sup), filepath.Base(sup), "exit 0")

	out, code := runScript(t, bin, nodeUpdateScript, nil, "abc123", sup, "-ip", "10.0.0.5", "-port", "8080", "-timeout", "1m0s", "--", "/app/old")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		got = append(got, strings.TrimPrefix(l, "arg "))
	}
	want := []string{"-t", "4242", "-u", "-i", "-n", "-p", sup, "update", "-root", "/proc/4242/root",
		"-ip", "10.0.0.5", "-port", "8080", "-timeout", "1m0s", "--", "/app/old"}
	if !slices.Equal(got, want) {
		t.Fatalf("nsenter ran with\n%q\nwant\n%q", got, want)
	}
	for _, a := range got {
		if a == "-m" || a == "-r" || a == "-w" || strings.HasPrefix(a, "--mount") || strings.HasPrefix(a, "--root") || strings.Contains(a, supervise.Path) {
			t.Errorf("nsenter is given %q: it would look the program up in the container's file system", a)
		}
	}

	if out, code := runScript(t, bin, nodeUpdateScript, nil, "abc123", sup+"-gone", "--"); code != 15 {
		t.Errorf("no supervisor copy on the node: exit code %d (%s), want 15", code, out)
	}
	if out, code := runScript(t, bin, nodeUpdateScript, nil, "other", sup, "--"); code != 10 || !strings.Contains(out, "container other is not running on this node") {
		t.Errorf("unknown container: exit code %d (%s), want 10", code, out)
	}
}

func TestNodeInstallScript(t *testing.T) {
	if _, err := exec.LookPath("sha256sum"); err != nil {
		t.Skip("no sha256sum")
	}
	bin := []byte("\x7fELF a supervisor")
	sum := sha256.Sum256(bin)
	hash := hex.EncodeToString(sum[:])
	dir := filepath.Join(t.TempDir(), "usr", "local", "lib", "devenv")
	p := filepath.Join(dir, "supervise-"+hash[:16])

	if out, code := runScript(t, t.TempDir(), nodeInstallScript, []byte("damaged"), p, hash); code == 0 || !strings.Contains(out, "arrived damaged") {
		t.Fatalf("a damaged copy: exit code %d (%s), want a failure", code, out)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Fatalf("a damaged copy left %v", left)
	}
	if out, code := runScript(t, t.TempDir(), nodeInstallScript, bin, p, hash); code != 0 {
		t.Fatalf("exit code %d: %s", code, out)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("the copy: %v, %v; want mode 0755", fi, err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(bin) {
		t.Fatalf("the copy holds %q", b)
	}
	// There already: kept, standard input not needed.
	if out, code := runScript(t, t.TempDir(), nodeInstallScript, []byte("other"), p, hash); code != 0 {
		t.Fatalf("second copy: exit code %d: %s", code, out)
	}
	if b, _ := os.ReadFile(p); string(b) != string(bin) {
		t.Fatalf("the second run changed the copy to %q", b)
	}
	if got := nodeSupervisorPath(hash); got != "/usr/local/lib/devenv/supervise-"+hash[:16] {
		t.Errorf("nodeSupervisorPath = %s", got)
	}
}

func TestLiveUpdateVia(t *testing.T) {
	c := &Cluster{log: log.Nop()}
	ctx := context.Background()
	target := LiveTarget{Namespace: "ns", Pod: "app-1", Container: "app", Node: "kind-control-plane"}
	if got := c.liveVia(ctx, nil, target.Node); got != LiveExec {
		t.Errorf("without Docker LiveAuto takes %q, want %q", got, LiveExec)
	}
	for _, tc := range []struct {
		via  LiveVia
		want string
	}{
		{LiveNode, "from its node: no Docker engine given"},
		{"ssh", `unknown way "ssh"`},
		{LiveExec, "no connection to the Kubernetes API"},
		{LiveAuto, "no connection to the Kubernetes API"}, // without Docker: exec
	} {
		err := c.LiveUpdate(ctx, nil, LiveChange{Target: target, Via: tc.via})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Via %q: err = %v, want one saying %q", tc.via, err, tc.want)
		}
	}
}

// TestLiveTargetsAnyRuntime: the container ID loses its runtime's prefix,
// whichever runtime it is (exec works on any cluster).
func TestLiveTargetsAnyRuntime(t *testing.T) {
	one := int32(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"},
		Spec:       appsv1.DeploymentSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app"}}},
	}
	for _, tc := range []struct{ id, want string }{
		{"containerd://abc", "abc"},
		{"cri-o://def", "def"},
		{"docker://0123", "0123"},
		{"abc", ""}, // not a runtime's ID: not running
	} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "app-1", Namespace: "ns", Labels: map[string]string{"app": "app"}},
			Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "img"}}},
			Status: corev1.PodStatus{
				PodIP:      "10.0.0.5",
				Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
				ContainerStatuses: []corev1.ContainerStatus{{
					Name: "app", Ready: true, ContainerID: tc.id,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
				}},
			},
		}
		c := &Cluster{Client: fake.NewClientset(d, pod), log: log.Nop()}
		got, err := c.LiveTargets(context.Background(), "ns", "app", "app")
		if tc.want == "" {
			if !errors.Is(err, ErrNoLive) {
				t.Errorf("%s: err = %v, want ErrNoLive", tc.id, err)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0].ContainerID != tc.want {
			t.Errorf("%s: %+v, %v; want container ID %s", tc.id, got, err, tc.want)
		}
	}
}
