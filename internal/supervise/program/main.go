// Command supervise is the first process of a container that devenv
// updates in place (live update): it runs the image's command as its child,
// restarts the child on SIGHUP (after devenv copied new files into the
// container), passes every other signal on, and exits as the child did
// when the child ends after SIGTERM or SIGINT, or when the image's own
// process ends (so the kubelet sees a crash as usual). A child started by a
// restart that exits on its own is restarted with a back-off instead, so
// the container keeps the files devenv copied into it.
//
// It writes its state to a file (default /.devenv/state) on every change,
// one line: "<generation> <state> <detail>", where generation counts the
// child's starts, state is "running" or "exited", and detail is the child's
// PID or how it exited. devenv reads it from the node to know when the new
// process runs.
//
// "supervise update" is the other half, run by devenv inside the
// container's namespaces (nsenter from the node): it removes the paths
// given as arguments, writes the files of the tar on its standard input,
// sends SIGHUP to the supervisor (PID 1), and waits until the new child
// runs and accepts connections on -ip:-port. Its exit code says how it
// went: 0 serving, 11 the container does not run under the supervisor
// (nothing was changed), 12 the new process exited, 14 it did not listen
// in time, 1 anything else; its last line of output says more.
//
// `make generate` builds it (CGO off, static) for linux/amd64 and
// linux/arm64 into ../bin, which devenv embeds and puts into the images it
// assembles when it watches; it has no dependencies. Change it, then run
// `make generate` and commit the binaries: a unit test checks they match.
package main

import (
	"archive/tar"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "update" {
		os.Exit(update(os.Args[2:]))
	}
	state := flag.String("state", "/.devenv/state", "file to write the state to")
	grace := flag.Duration("grace", 5*time.Second, "how long the child has to exit after SIGTERM on a restart")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "supervise: no command given: supervise [-state FILE] -- COMMAND [ARG...]")
		os.Exit(2)
	}
	os.Exit(run(flag.Args(), *state, *grace))
}

type supervisor struct {
	args      []string
	stateFile string
	gen       int       // how many times the child was started
	pid       int       // the child's PID; 0 when none runs
	started   time.Time // when the child was last started
}

func (s *supervisor) write(state, detail string) {
	tmp := s.stateFile + ".tmp"
	line := fmt.Sprintf("%d %s %s\n", s.gen, state, detail)
	if err := os.WriteFile(tmp, []byte(line), 0o644); err == nil {
		_ = os.Rename(tmp, s.stateFile)
	}
}

// start starts the child. Its exit is collected by reap (SIGCHLD), not
// by os/exec, so that orphans can be reaped too.
func (s *supervisor) start() error {
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	s.gen++
	if err := cmd.Start(); err != nil {
		s.write("exited", "start: "+oneLine(err.Error()))
		fmt.Fprintf(os.Stderr, "supervise: starting %s: %v\n", s.args[0], err)
		return err
	}
	s.pid, s.started = cmd.Process.Pid, time.Now()
	_ = cmd.Process.Release()
	s.write("running", fmt.Sprint(s.pid))
	return nil
}

func run(args []string, stateFile string, grace time.Duration) int {
	s := &supervisor{args: args, stateFile: stateFile}
	_ = os.MkdirAll(filepath.Dir(stateFile), 0o755)
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	if s.start() != nil {
		return 127
	}
	backoff := time.Second
	var retry <-chan time.Time
	stopping := false
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGCHLD:
				ws, done := s.reap()
				if !done {
					continue
				}
				s.pid = 0
				if stopping || s.gen == 1 {
					// Asked to stop, or the image's own process ended:
					// end as it did, as a container would.
					return exitCode(ws)
				}
				s.write("exited", describe(ws))
				// A process devenv restarted: restart it here, as the
				// kubelet would, so the container keeps the new files.
				if time.Since(s.started) > 10*time.Second {
					backoff = time.Second
				}
				fmt.Fprintf(os.Stderr, "supervise: %s %s; restarting it in %s\n", args[0], describe(ws), backoff)
				retry = time.After(backoff)
				backoff = min(2*backoff, 10*time.Second)
			case syscall.SIGURG, syscall.SIGWINCH, syscall.SIGPIPE:
				// The Go runtime's own, and ones not worth passing on.
			case syscall.SIGHUP:
				// New files are in place: restart the child now.
				s.stop(grace)
				retry, backoff = nil, time.Second
				if s.start() != nil {
					retry = time.After(backoff)
				}
			default:
				if sig == syscall.SIGTERM || sig == syscall.SIGINT {
					stopping = true
				}
				if s.pid == 0 {
					if stopping {
						return 128 + int(sig.(syscall.Signal))
					}
					continue
				}
				_ = syscall.Kill(s.pid, sig.(syscall.Signal))
			}
		case <-retry:
			retry = nil
			if s.start() != nil {
				retry = time.After(backoff)
				backoff = min(2*backoff, 10*time.Second)
			}
		}
	}
}

// reap collects every child that ended (orphans are re-parented to this
// process when it is PID 1) and reports whether the supervised one did.
func (s *supervisor) reap() (syscall.WaitStatus, bool) {
	var mine syscall.WaitStatus
	done := false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return mine, done
		}
		if pid == s.pid {
			mine, done = ws, true
		}
	}
}

// stop ends the child: SIGTERM, then SIGKILL after grace.
func (s *supervisor) stop(grace time.Duration) {
	if s.pid == 0 {
		return
	}
	pid := s.pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	kill := time.AfterFunc(grace, func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	defer kill.Stop()
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || got == pid {
			s.pid = 0
			return
		}
	}
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "was killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exited with code %d", ws.ExitStatus())
}

func oneLine(s string) string {
	for i, r := range s {
		if r == '\n' {
			return s[:i]
		}
	}
	return s
}

// update is "supervise update": see the package comment.
func update(args []string) int {
	fs := flag.NewFlagSet("update", flag.ContinueOnError)
	stateFile := fs.String("state", "/.devenv/state", "the supervisor's state file")
	ip := fs.String("ip", "127.0.0.1", "address the new process must accept connections on")
	port := fs.Int("port", 0, "port the new process must accept connections on (0: wait until it has run for a second)")
	timeout := fs.Duration("timeout", time.Minute, "how long the new process has to accept connections")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Printf(format+"\n", a...)
		return code
	}
	self, _ := os.Readlink("/proc/self/exe")
	if init, err := os.Readlink("/proc/1/exe"); err != nil || init != self {
		return fail(11, "the container's first process (%s) is not devenv's supervisor", init)
	}
	gen0, _, _ := readState(*stateFile)
	for _, p := range fs.Args() {
		if err := os.RemoveAll(p); err != nil {
			return fail(1, "removing %s: %v", p, err)
		}
	}
	if err := extract(os.Stdin); err != nil {
		return fail(1, "writing the new files: %v", err)
	}
	if err := syscall.Kill(1, syscall.SIGHUP); err != nil {
		return fail(1, "signalling the supervisor: %v", err)
	}
	deadline := time.Now().Add(*timeout)
	addr := net.JoinHostPort(*ip, strconv.Itoa(*port))
	var since time.Time
	for ; time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		gen, state, detail := readState(*stateFile)
		switch {
		case gen <= gen0:
			continue // not restarted yet
		case state == "exited":
			// (A crash stays "exited" for the back-off, a second at least:
			// polling sees it.)
			return fail(12, "%s", detail)
		case *port == 0:
			if since.IsZero() {
				since = time.Now()
			}
			if time.Since(since) >= time.Second {
				return fail(0, "running")
			}
		default:
			if c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond); err == nil {
				c.Close()
				return fail(0, "serving on %s", addr)
			}
		}
	}
	return fail(14, "the new process did not accept connections on %s within %s", addr, *timeout)
}

// readState reads the supervisor's state file.
func readState(file string) (gen int, state, detail string) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, "", ""
	}
	f := strings.SplitN(strings.TrimSpace(string(b)), " ", 3)
	gen, _ = strconv.Atoi(f[0])
	if len(f) > 1 {
		state = f[1]
	}
	if len(f) > 2 {
		detail = f[2]
	}
	return gen, state, detail
}

// extract writes the tar's entries under /: files are written beside their
// target and renamed over it, so a running program's file can be replaced.
func extract(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		mode := h.FileInfo().Mode()
		if err := os.MkdirAll(path.Dir(name), 0o755); err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(name); err != nil || !fi.IsDir() {
				_ = os.RemoveAll(name)
				if err := os.Mkdir(name, 0o700); err != nil {
					return err
				}
			}
		case tar.TypeReg:
			tmp := path.Join(path.Dir(name), ".devenv-"+path.Base(name))
			_ = os.Remove(tmp)
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = own(tmp, h, mode)
			}
			if err == nil {
				if fi, lerr := os.Lstat(name); lerr == nil && fi.IsDir() {
					_ = os.RemoveAll(name)
				}
				err = os.Rename(tmp, name)
			}
			if err != nil {
				_ = os.Remove(tmp)
				return err
			}
			continue
		case tar.TypeSymlink:
			_ = os.RemoveAll(name)
			if err := os.Symlink(h.Linkname, name); err != nil {
				return err
			}
			if err := os.Lchown(name, h.Uid, h.Gid); err != nil {
				return err
			}
			continue
		case tar.TypeLink:
			_ = os.RemoveAll(name)
			if err := os.Link(path.Clean("/"+h.Linkname), name); err != nil {
				return err
			}
			continue
		default:
			return fmt.Errorf("%s: entries of type %q are not supported", name, h.Typeflag)
		}
		if err := own(name, h, mode); err != nil {
			return err
		}
	}
}

// own gives a written file or folder the entry's owner, mode and time.
func own(name string, h *tar.Header, mode os.FileMode) error {
	if err := os.Lchown(name, h.Uid, h.Gid); err != nil {
		return err
	}
	if err := os.Chmod(name, mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
		return err
	}
	return os.Chtimes(name, h.ModTime, h.ModTime)
}
