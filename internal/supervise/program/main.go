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
// devenv compiles this file itself (CGO off, static) and puts the binary
// in the images it assembles when it watches; it has no dependencies.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
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
