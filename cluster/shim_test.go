package cluster

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeDocker writes a "real docker" that prints each argument on its own line.
func fakeDocker(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(dir, "docker"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestShimRewritesPrivileged(t *testing.T) {
	shim := t.TempDir()
	if err := installShim(shim); err != nil {
		t.Fatal(err)
	}
	real := fakeDocker(t)
	// The shim's own dir comes first and twice, as it would after prependPath:
	// it must skip itself and find the fake.
	path := strings.Join([]string{shim, shim, real, "/usr/bin", "/bin"}, string(os.PathListSeparator))

	rewritten := []string{"--cap-add=ALL", "--cap-drop=SYS_RESOURCE", "--security-opt=systempaths=unconfined", "--device-cgroup-rule=a *:* rwm", "--device=/dev/kmsg"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"run", []string{"run", "--name", "n1", "--privileged", "-e", "A=b c", "img"},
			append(append([]string{"run", "--name", "n1"}, rewritten...), "-e", "A=b c", "img")},
		{"create", []string{"create", "--privileged=true", "img"},
			append(append([]string{"create"}, rewritten...), "img")},
		{"exec drops it", []string{"exec", "--privileged", "-i", "node", "ctr", "images", "ls"},
			[]string{"exec", "-i", "node", "ctr", "images", "ls"}},
		{"others pass through", []string{"inspect", "--privileged", "x"}, []string{"inspect", "--privileged", "x"}},
		{"empty and spaced args survive", []string{"run", "-e", "", "-e", "a  b", "--privileged", "img"},
			append(append([]string{"run", "-e", "", "-e", "a  b"}, rewritten...), "img")},
		// Only docker's own flags are rewritten: what follows the image
		// (run, create) or the container (exec) is the command inside.
		{"exec keeps the command's flag", []string{"exec", "--privileged", "node", "ctr", "run", "--privileged", "x"},
			[]string{"exec", "node", "ctr", "run", "--privileged", "x"}},
		{"exec with valued flags", []string{"exec", "-e", "--privileged", "--user=root", "-w", "/", "-it", "node", "sh", "-c", "--privileged"},
			[]string{"exec", "-e", "--privileged", "--user=root", "-w", "/", "-it", "node", "sh", "-c", "--privileged"}},
		{"exec bundled short flags", []string{"exec", "-it", "--privileged=true", "node", "--privileged"},
			[]string{"exec", "-it", "node", "--privileged"}},
		{"run keeps the command's flag", []string{"run", "--privileged", "img", "ctr", "run", "--privileged", "x"},
			append(append([]string{"run"}, rewritten...), "img", "ctr", "run", "--privileged", "x")},
		{"run with kind's flags", []string{"run", "--name", "n", "--hostname", "n", "--label", "a=b", "--privileged",
			"--security-opt", "seccomp=unconfined", "--tmpfs", "/tmp", "--volume", "/var", "-e", "X", "--detach", "--tty",
			"--net", "kind", "--restart=on-failure:1", "--init=false", "--publish=127.0.0.1:1:6443/TCP", "img"},
			append(append([]string{"run", "--name", "n", "--hostname", "n", "--label", "a=b"}, rewritten...),
				"--security-opt", "seccomp=unconfined", "--tmpfs", "/tmp", "--volume", "/var", "-e", "X", "--detach", "--tty",
				"--net", "kind", "--restart=on-failure:1", "--init=false", "--publish=127.0.0.1:1:6443/TCP", "img")},
		{"run value flags that look like the flag", []string{"run", "--name", "--privileged", "-dit", "-v", "/a:/b", "-eX=1", "img", "--privileged"},
			[]string{"run", "--name", "--privileged", "-dit", "-v", "/a:/b", "-eX=1", "img", "--privileged"}},
		{"run short flag bundle ending in a valued one", []string{"run", "-de", "--privileged", "--privileged", "img"},
			append(append([]string{"run", "-de", "--privileged"}, rewritten...), "img")},
		{"run after --", []string{"run", "--rm", "--", "img", "--privileged"},
			[]string{"run", "--rm", "--", "img", "--privileged"}},
		{"create false stays", []string{"create", "--privileged=false", "img"}, []string{"create", "--privileged=false", "img"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(shim, "docker"), tt.args...)
			cmd.Env = append(os.Environ(), "PATH="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("shim failed: %v\n%s", err, out)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("args\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestShimWithoutRealDocker(t *testing.T) {
	shim := t.TempDir()
	if err := installShim(shim); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(shim, "docker"), "ps")
	cmd.Env = append(os.Environ(), "PATH="+shim)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 127 {
		t.Fatalf("want exit 127, got %v", err)
	}
	if !strings.Contains(string(out), "no docker CLI found") {
		t.Errorf("message should say what is missing: %s", out)
	}
}

func TestInstallShimIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	for range 2 {
		if err := installShim(dir); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "docker"))
	if err != nil || string(b) != shimScript {
		t.Fatalf("shim content wrong: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left temp files behind: %v", entries)
	}
}

func TestShimDir(t *testing.T) {
	t.Setenv("DEVENV_CACHE", "/tmp/x")
	d, err := shimDir()
	if err != nil || d != "/tmp/x/docker-shim" {
		t.Fatalf("got %q, %v", d, err)
	}
}

func TestPrivilegedRefused(t *testing.T) {
	for msg, want := range map[string]bool{
		"Error response from daemon: failed to create shim task: OCI runtime create failed: runc create failed: unable to apply caps: operation not permitted: unknown": true,
		"No such image: foo": false,
	} {
		if got := privilegedRefused(errors.New(msg)); got != want {
			t.Errorf("%q: got %v", msg, got)
		}
	}
}

func TestPrependPath(t *testing.T) {
	t.Setenv("PATH", "/a:/shim:/b")
	prependPath("/shim")
	prependPath("/shim")
	if got := os.Getenv("PATH"); got != "/shim:/a:/b" {
		t.Errorf("PATH = %q", got)
	}
}

// TestShimSkipsOtherShims: with two shim folders in PATH (an earlier
// InstallPrivilegedShim with another cache folder), the shims do not hand
// the call to each other for ever; the real docker gets it.
func TestShimSkipsOtherShims(t *testing.T) {
	real := fakeDocker(t)
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := installShim(d); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(filepath.Join(a, "docker"), "ps")
	cmd.Env = append(os.Environ(), "PATH="+a+":"+b+":"+real+":/usr/bin:/bin")
	cmd.WaitDelay = time.Second
	done := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	close(done)
	if err != nil || strings.TrimSpace(string(out)) != "ps" {
		t.Fatalf("two shims in PATH: %v\n%s", err, out)
	}
}
