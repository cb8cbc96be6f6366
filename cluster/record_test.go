package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestJudge(t *testing.T) {
	running := func(int, string) bool { return true }
	gone := func(int, string) bool { return false }
	rec := func(state, node string) *record {
		return &record{Cluster: "c", Engine: "e", State: state, Node: node, PID: 42}
	}
	cases := []struct {
		name  string
		rec   *record
		nodes []string
		alive func(int, string) bool
		want  verdict
	}{
		{"no record: the user's own cluster", nil, []string{"n1"}, gone, notOurs},
		{"no record, no nodes", nil, nil, gone, notOurs},
		{"killed after the node was noted", rec(recCreating, "n1"), []string{"n1"}, gone, halfCreated},
		{"killed before the node was noted", rec(recCreating, ""), []string{"n1"}, gone, halfCreated},
		{"killed, nodes since removed", rec(recCreating, "n1"), nil, gone, notOurs},
		{"killed, someone else made the cluster again", rec(recCreating, "n1"), []string{"n2"}, gone, notOurs},
		{"another devenv is creating it", rec(recCreating, "n1"), []string{"n1"}, running, creatingNow},
		{"another devenv is creating it, no node yet", rec(recCreating, ""), nil, running, creatingNow},
		{"complete", rec(recComplete, "n1"), []string{"n1"}, running, completed},
		{"complete, made again by someone else", rec(recComplete, "n1"), []string{"n2"}, gone, notOurs},
		{"failed and kept", rec(recFailed, "n1"), []string{"n1"}, gone, failedKept},
		{"unknown state", rec("later", "n1"), []string{"n1"}, gone, notOurs},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := judge(c.rec, c.nodes, c.alive); got != c.want {
				t.Errorf("judge = %d, want %d", got, c.want)
			}
		})
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	recs := newRecords(filepath.Join(dir, "state"))
	if got, err := recs.read("e1", "cosmos"); got != nil || err != nil {
		t.Fatalf("read before any write: %v, %v", got, err)
	}
	want := record{Cluster: "cosmos", Engine: "e1", State: recCreating, PID: 7, Started: time.Unix(1700000000, 0).UTC()}
	if err := recs.write(want); err != nil {
		t.Fatal(err)
	}
	got, err := recs.read("e1", "cosmos")
	if err != nil || got == nil || *got != want {
		t.Fatalf("read = %+v, %v; want %+v", got, err, want)
	}
	// Another engine, or another cluster, has its own record.
	for _, k := range [][2]string{{"e2", "cosmos"}, {"e1", "cosmos2"}} {
		if got, err := recs.read(k[0], k[1]); got != nil || err != nil {
			t.Errorf("read(%s, %s) = %+v, %v; want none", k[0], k[1], got, err)
		}
	}
	want.State, want.Node = recComplete, "n1"
	if err := recs.write(want); err != nil {
		t.Fatal(err)
	}
	if got, _ := recs.read("e1", "cosmos"); got == nil || *got != want {
		t.Fatalf("after the second write: %+v", got)
	}
	fi, err := os.Stat(recs.dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("records folder: %v, %v; want mode 0700", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(recs.dir)
	if len(entries) != 1 {
		t.Errorf("records folder holds %d files, want 1 (no temporary files left)", len(entries))
	}
	if err := recs.remove("e1", "cosmos"); err != nil {
		t.Fatal(err)
	}
	if got, _ := recs.read("e1", "cosmos"); got != nil {
		t.Errorf("after remove: %+v", got)
	}
	if err := recs.remove("e1", "cosmos"); err != nil {
		t.Errorf("removing a missing record: %v", err)
	}
}

func TestRecordsDamaged(t *testing.T) {
	recs := newRecords(t.TempDir())
	if err := recs.write(record{Cluster: "c", Engine: "e", State: recCreating}); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"not JSON":       "{creat",
		"another name":   `{"cluster":"d","engine":"e","state":"creating"}`,
		"another engine": `{"cluster":"c","engine":"f","state":"creating"}`,
	} {
		if err := os.WriteFile(recs.path("e", "c"), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		// Unknown, not half-created: a damaged record must not get a
		// working cluster deleted.
		if got, err := recs.read("e", "c"); got != nil || err != nil {
			t.Errorf("%s: read = %+v, %v; want none", name, got, err)
		}
	}
}

func TestRecordPathOddNames(t *testing.T) {
	recs := newRecords("/state")
	seen := map[string]string{}
	for _, name := range []string{"cosmos", "../../etc/passwd", "a/b", "a_b", "ä"} {
		p := recs.path("e", name)
		if filepath.Dir(p) != recs.dir {
			t.Errorf("path(%q) = %s, outside %s", name, p, recs.dir)
		}
		if other, ok := seen[p]; ok {
			t.Errorf("%q and %q share %s", name, other, p)
		}
		seen[p] = name
	}
}

func TestProcessAlive(t *testing.T) {
	self := os.Getpid()
	start, ok := processStart(self)
	if !processAlive(self, start) {
		t.Errorf("this process (%d, start %q) is not alive", self, start)
	}
	if ok && processAlive(self, start+"1") {
		t.Error("a process with another start time (the PID reused) counts as alive")
	}
	if processAlive(0, "") || processAlive(-1, "") {
		t.Error("PID 0 or -1 counts as alive")
	}

	// A killed child is a zombie until reaped, and gone after.
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	pid := cmd.Process.Pid
	childStart, _ := processStart(pid)
	if !processAlive(pid, childStart) {
		t.Errorf("running child %d is not alive", pid)
	}
	_ = cmd.Process.Kill()
	if ok {
		// Wait until the kernel has made it a zombie, without reaping it.
		deadline := time.Now().Add(5 * time.Second)
		for processAlive(pid, childStart) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if processAlive(pid, childStart) {
			t.Errorf("killed, unreaped child %d still counts as alive", pid)
		}
	}
	_ = cmd.Wait()
	if processAlive(pid, childStart) {
		t.Errorf("reaped child %d counts as alive", pid)
	}
	if _, err := strconv.Atoi(childStart); ok && err != nil {
		t.Errorf("start time %q is not a number", childStart)
	}
}
