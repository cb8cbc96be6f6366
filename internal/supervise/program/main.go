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
// "supervise update" is the other half, run by devenv in the container:
// through the Kubernetes API (pods/exec, as the image's USER), or from the
// kind node inside the container's namespaces (nsenter) with -root naming
// the container's root as the node sees it (/proc/PID/root), which it
// enters (chroot) first. It reads the tar on its standard input, checks
// that its user may write every path the tar holds and every path given as
// an argument, removes those paths, writes the files, sends SIGHUP to the
// supervisor (PID 1), and waits until the new child runs and accepts
// connections on -ip:-port. Its exit code says how it went: 0 serving, 11
// the container does not run under the supervisor, 13 the user cannot
// write a path (both: nothing was changed), 12 the new process exited, 14
// it did not listen in time, 1 anything else; its last line of output
// says more. Run by a user other than root, the files it writes belong to
// that user (root is needed to give them the tar's owner).
//
// "supervise agent" runs on a kind node and takes one "update" after
// another from devenv over one docker exec: see agent.go.
//
// `make generate` builds it (CGO off, static) for linux/amd64 and
// linux/arm64 into ../bin, which devenv embeds and puts into the images it
// assembles when it watches; it has no dependencies. Change it, then run
// `make generate` and commit the binaries: a unit test checks they match.
package main

import (
	"archive/tar"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
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
	if len(os.Args) > 1 && os.Args[1] == "agent" {
		os.Exit(agent(os.Args[2:]))
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

// supervisePath is where devenv's images hold the supervisor
// (internal/supervise.Path).
const supervisePath = "/.devenv/supervise"

// update is "supervise update": see the package comment.
func update(args []string) int {
	flags := flag.NewFlagSet("update", flag.ContinueOnError)
	stateFile := flags.String("state", "/.devenv/state", "the supervisor's state file")
	ip := flags.String("ip", "127.0.0.1", "address the new process must accept connections on")
	port := flags.Int("port", 0, "port the new process must accept connections on (0: wait until it has run for a second)")
	timeout := flags.Duration("timeout", time.Minute, "how long the new process has to accept connections")
	root := flags.String("root", "", "the container's root folder to enter first (chroot), when run from outside the container's mount namespace")
	if err := flags.Parse(args); err != nil {
		return 1
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Printf(format+"\n", a...)
		return code
	}
	if *root != "" {
		if err := syscall.Chroot(*root); err != nil {
			return fail(1, "entering the container's root %s: %v", *root, err)
		}
		if err := os.Chdir("/"); err != nil {
			return fail(1, "entering the container's root %s: %v", *root, err)
		}
	}
	// Run from the node (-root), this program is devenv's copy on the
	// node, not the container's: PID 1 runs the container's.
	self, _ := os.Readlink("/proc/self/exe")
	// (" (deleted)": the image's file was replaced since PID 1 started.)
	if init, err := os.Readlink("/proc/1/exe"); err != nil || (init != self && strings.TrimSuffix(init, " (deleted)") != supervisePath) {
		return fail(11, "the container's first process (%s) is not devenv's supervisor", init)
	}
	entries, err := readTar(os.Stdin)
	if err != nil {
		return fail(1, "reading the new files: %v", err)
	}
	removed := flags.Args()
	if p, err := checkWritable(entries, removed, fsAccess{euid: os.Geteuid(), access: access}); err != nil {
		return fail(13, "user %d cannot write %s: %v", os.Geteuid(), p, err)
	}
	gen0, _, _ := readState(*stateFile)
	for _, p := range removed {
		if err := os.RemoveAll(p); err != nil {
			return fail(1, "removing %s: %v", p, err)
		}
	}
	if err := extract(entries); err != nil {
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

// entry is one entry of the tar of new files, its content read.
type entry struct {
	hdr  *tar.Header
	data []byte
}

// maxEntry is the largest file a live update writes (4 GiB).
const maxEntry = 4 << 30

// readTar reads the tar's entries up to its end marker (not to the end of
// r: an exec stream may not close standard input).
func readTar(r io.Reader) ([]entry, error) {
	tr := tar.NewReader(r)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		// One allocation of the entry's size: io.ReadAll's growing copies
		// fault in several times the file's size in new pages, which cost
		// 0.2 s for a 10 MB binary on a virtual machine.
		if h.Size < 0 || h.Size > maxEntry {
			return nil, fmt.Errorf("%s: size %d out of range", h.Name, h.Size)
		}
		data := make([]byte, h.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return nil, fmt.Errorf("%s: %w", h.Name, err)
		}
		out = append(out, entry{hdr: h, data: data})
	}
}

// access is access(2) with W_OK|X_OK and the like (mode 2|1): the real
// user's rights, which are the effective ones in a container.
func access(name string, mode uint32) error { return syscall.Access(name, mode) }

const (
	accessW = 2 // W_OK
	accessX = 1 // X_OK
)

// fsAccess is who checkWritable checks for: the effective user, and the
// access(2) check (a parameter so that tests running as root can deny).
type fsAccess struct {
	euid   int
	access func(name string, mode uint32) error
}

// checkWritable reports the first path of entries or removed that this
// user cannot write as extract and RemoveAll would (create or replace it
// in its folder, or create its missing folders), and why, so that
// nothing is changed when anything would fail for lack of permission (or
// a read-only file system). A folder of entries that exists is kept; as a
// user other than root it must have the entry's mode already or be the
// user's (its mode is set).
func checkWritable(entries []entry, removed []string, a fsAccess) (string, error) {
	for _, p := range removed {
		name := path.Clean("/" + p)
		fi, err := os.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return name, err
		}
		if err := a.canReplace(name, fi); err != nil {
			return name, err
		}
		if fi.IsDir() {
			if err := a.access(name, accessW|accessX); err != nil {
				return name, err
			}
		}
	}
	for _, e := range entries {
		name := path.Clean("/" + e.hdr.Name)
		if name == "/" {
			continue
		}
		fi, err := os.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			err = a.canCreate(name)
		case err != nil:
		case e.hdr.Typeflag == tar.TypeDir && fi.IsDir():
			if a.euid != 0 && owner(fi) != a.euid && fi.Mode()&modeBits != e.hdr.FileInfo().Mode()&modeBits {
				err = syscall.EPERM
			}
		default:
			err = a.canReplace(name, fi)
		}
		if err != nil {
			return name, err
		}
	}
	return "", nil
}

// canCreate checks that name's missing folders and name itself can be
// created: the closest folder that exists must be writable.
func (a fsAccess) canCreate(name string) error {
	d := path.Dir(name)
	for {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) && d != "/" {
			d = path.Dir(d)
			continue
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return syscall.ENOTDIR
		}
		return a.access(d, accessW|accessX)
	}
}

// canReplace checks that name, which exists (fi), can be removed or
// renamed over in its folder.
func (a fsAccess) canReplace(name string, fi fs.FileInfo) error {
	d := path.Dir(name)
	if err := a.access(d, accessW|accessX); err != nil {
		return err
	}
	di, err := os.Stat(d)
	if err != nil {
		return err
	}
	if a.euid != 0 && di.Mode()&fs.ModeSticky != 0 && owner(fi) != a.euid && owner(di) != a.euid {
		return syscall.EPERM
	}
	return nil
}

// modeBits are the mode bits own sets.
const modeBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// owner is fi's owner's user ID.
func owner(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
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
func extract(entries []entry) error {
	root := os.Geteuid() == 0
	for _, e := range entries {
		h := e.hdr
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
			fi, err := os.Lstat(name)
			if err != nil || !fi.IsDir() {
				_ = os.RemoveAll(name)
				if err := os.Mkdir(name, 0o700); err != nil {
					return err
				}
			} else if !root && owner(fi) != os.Geteuid() {
				continue // not this user's to change; checkWritable saw its mode is right
			}
		case tar.TypeReg:
			tmp := path.Join(path.Dir(name), ".devenv-"+path.Base(name))
			_ = os.Remove(tmp)
			f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			_, err = f.Write(e.data)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = own(tmp, h, mode, root)
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
			if root {
				if err := os.Lchown(name, h.Uid, h.Gid); err != nil {
					return err
				}
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
		if err := own(name, h, mode, root); err != nil {
			return err
		}
	}
	return nil
}

// own gives a written file or folder the entry's mode and time, and its
// owner when root writes it (any other user's files stay that user's).
func own(name string, h *tar.Header, mode os.FileMode, root bool) error {
	if root {
		if err := os.Lchown(name, h.Uid, h.Gid); err != nil {
			return err
		}
	}
	if err := os.Chmod(name, mode&modeBits); err != nil {
		return err
	}
	return os.Chtimes(name, h.ModTime, h.ModTime)
}
