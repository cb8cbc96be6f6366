package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// dockerdPidfile is where dockerd writes its process ID by default.
const dockerdPidfile = "/var/run/docker.pid"

// Dockerd is the Docker daemon this machine runs at the default socket, as
// a fault test sees it: its process, command line and environment, to kill
// it and start it again as it was started.
type Dockerd struct {
	pid  int
	argv []string
	env  []string
}

// FindDockerd returns the daemon behind the default socket. It skips the
// test when that daemon cannot be restarted from here (not root, another
// DOCKER_HOST, no pidfile), and fails it instead in CI (CI set), where the
// fault tests must run.
func FindDockerd(tb testing.TB) *Dockerd {
	tb.Helper()
	why := ""
	if h := os.Getenv("DOCKER_HOST"); h != "" && h != "unix:///var/run/docker.sock" {
		why = "DOCKER_HOST is " + h + ", not this machine's default daemon"
	} else if os.Geteuid() != 0 {
		why = "restarting dockerd needs root"
	}
	var d *Dockerd
	if why == "" {
		var err error
		if d, err = readDockerd(); err != nil {
			why = err.Error()
		}
	}
	if why != "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("cannot restart the Docker daemon here: %s", why)
		}
		tb.Skipf("cannot restart the Docker daemon here: %s", why)
	}
	return d
}

func readDockerd() (*Dockerd, error) {
	b, err := os.ReadFile(dockerdPidfile)
	if err != nil {
		return nil, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", dockerdPidfile, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil, fmt.Errorf("dockerd (pid %d): %v", pid, err)
	}
	argv := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if !strings.HasSuffix(argv[0], "dockerd") {
		return nil, fmt.Errorf("pid %d in %s is %q, not dockerd", pid, dockerdPidfile, argv[0])
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil, err
	}
	var env []string
	for _, kv := range bytes.Split(environ, []byte{0}) {
		if len(kv) > 0 {
			env = append(env, string(kv))
		}
	}
	return &Dockerd{pid: pid, argv: argv, env: env}, nil
}

// Restart kills the daemon (SIGKILL: a crash, not a shutdown; its
// containerd and the containers' shims live on), and after 3 s (systemd
// restarts docker.service 2 s after a crash) starts it again with the
// same command line and environment (detached, its output appended to
// /var/log/dockerd.log) and waits until docker answers. It returns how long
// the daemon did not answer. The test's cleanup starts the daemon when a
// failure left it stopped.
func (d *Dockerd) Restart(tb testing.TB, ctx context.Context, docker *client.Client) time.Duration {
	tb.Helper()
	p, err := os.FindProcess(d.pid)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		tb.Fatalf("killing dockerd (pid %d): %v", d.pid, err)
	}
	tb.Cleanup(func() { d.ensureRunning(tb) })
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", d.pid)); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("dockerd (pid %d) still runs 30 s after SIGKILL", d.pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	if err := d.start(); err != nil {
		tb.Fatal(err)
	}
	if err := Eventually(ctx, 2*time.Minute, 200*time.Millisecond, func() error {
		_, err := docker.Ping(ctx, client.PingOptions{})
		return err
	}); err != nil {
		tb.Fatalf("dockerd does not answer 2 minutes after its restart: %v", err)
	}
	return time.Since(start)
}

// start starts dockerd detached from the test (its own session), as d was.
func (d *Dockerd) start() error {
	logf, err := os.OpenFile("/var/log/dockerd.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(d.argv[0], d.argv[1:]...)
	cmd.Env, cmd.Dir = d.env, "/"
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting dockerd again: %v", err)
	}
	d.pid = cmd.Process.Pid
	return cmd.Process.Release()
}

// ensureRunning starts the daemon when no dockerd answers to the pidfile:
// a test that failed half-way leaves the machine with Docker.
func (d *Dockerd) ensureRunning(tb testing.TB) {
	if cur, err := readDockerd(); err == nil {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", cur.pid)); err == nil {
			return
		}
	}
	tb.Logf("dockerd is not running after the test: starting it")
	if err := d.start(); err != nil {
		tb.Errorf("%v", err)
	}
}
