package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/devenv-tool/devenv/internal/execx"
)

func TestIntegrationAccountJava(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the Java account service")
	}
	for _, tool := range []string{"javac", "jar", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install a JDK 17 with apt-get install -y default-jdk-headless libh2-java", tool)
		}
	}
	dir := filepath.Join("cosmos", "account")
	build(t, dir)
	for _, f := range []string{"target/account-1.0.0.jar", "target/h2.jar"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("build.sh did not produce %s: %v", f, err)
		}
	}
	wantVersion := constant(t, filepath.Join(dir, "src/main/java/cosmos/account/Version.java"),
		`(?m)^\s*static final String VERSION = "([^"]*)";$`)

	port := freePort(t)
	password := fmt.Sprintf("pw-%d-not-for-logs", time.Now().UnixNano())
	p := start(t, dir, []string{"java", "-jar", "target/account-1.0.0.jar"},
		"PORT="+port,
		// The seed's ConfigMap value, without DB_CLOSE_DELAY: the service must keep the database alive itself.
		"DATASOURCE_URL=jdbc:h2:mem:account",
		"DATASOURCE_USERNAME=cosmos",
		"DATASOURCE_PASSWORD="+password,
		"DATASOURCE_DRIVER_CLASS_NAME=org.h2.Driver",
	)
	base := "http://127.0.0.1:" + port
	waitHealthy(t, p, base, 60*time.Second)

	expect(t, "GET", base+"/version", "", 200, wantVersion)
	expect(t, "GET", base+"/accounts/A-1", "", 200, `"balance":1000`)
	expect(t, "GET", base+"/accounts/A-2", "", 200, `"balance":0`)
	expect(t, "POST", base+"/accounts", `{"id":"T-1","owner":"tester","balance":100}`, 201, `"owner":"tester"`)
	expect(t, "POST", base+"/accounts", `{"id":"T-1","owner":"tester","balance":100}`, 409, "already exists")
	expect(t, "POST", base+"/accounts/T-1/withdraw", `{"amount":30}`, 200, `"balance":70`)
	expect(t, "POST", base+"/accounts/T-1/withdraw", `{"amount":71}`, 409, "insufficient funds")
	expect(t, "GET", base+"/accounts/T-1", "", 200, `"balance":70`)
	expect(t, "POST", base+"/accounts/T-1/deposit", `{"amount":5}`, 200, `"balance":75`)
	expect(t, "POST", base+"/accounts/T-1/deposit", `{"amount":-5}`, 400, `field \"amount\" must be greater than 0`)
	expect(t, "POST", base+"/accounts/nobody/withdraw", `{"amount":1}`, 404, "not found")
	expect(t, "POST", base+"/accounts", `{"id":"T-2"}`, 400, `field \"owner\"`)

	p.stop(t)
	if strings.Contains(p.out.String(), password) {
		t.Errorf("the datasource password appears in the service's output:\n%s", p.out.String())
	}
}

// TestIntegrationAccountStartScript runs the account image's start.sh on
// this machine's JVM, with the image's /app and /tmp folders in temporary
// ones: a restart while the first start's background job dumps the class
// data sharing archive ends the dump and leaves nothing behind; the next
// first start writes the archive; the start after it maps it (-Xshare:on
// fails otherwise) and loads H2's classes from it; and a damaged archive
// does not stop the service from starting.
func TestIntegrationAccountStartScript(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds the Java account service and runs its start.sh")
	}
	for _, tool := range []string{"javac", "jar", "java"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install a JDK 17 with apt-get install -y default-jdk-headless libh2-java", tool)
		}
	}
	dir := filepath.Join("cosmos", "account")
	build(t, dir)
	app, cds := t.TempDir(), filepath.Join(t.TempDir(), "cds")
	for _, f := range []string{"target/account-1.0.0.jar", "target/h2.jar", "start.sh"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(app, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs(filepath.Join(app, "start.sh"))
	if err != nil {
		t.Fatal(err)
	}
	run := func(env ...string) (*process, string) {
		t.Helper()
		port := freePort(t)
		p := start(t, app, []string{"/bin/sh", script}, append(env, "PORT="+port, "APP_DIR="+app, "CDS_DIR="+cds)...)
		base := "http://127.0.0.1:" + port
		waitHealthy(t, p, base, 60*time.Second)
		expect(t, "GET", base+"/version", "", 200, "")
		// exec: the shell's process is the JVM, so signals reach it.
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.cmd.Process.Pid)); !bytes.HasPrefix(cmdline, []byte("java\x00")) {
			t.Fatalf("start.sh's process runs %q, not java", bytes.ReplaceAll(cmdline, []byte{0}, []byte(" ")))
		}
		return p, base
	}
	// dumps lists the PIDs of the processes that dump an archive into cds.
	dumps := func() []string {
		var out []string
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err == nil && bytes.Contains(b, []byte("-Xshare:dump")) && bytes.Contains(b, []byte(cds)) {
				out = append(out, e.Name())
			}
		}
		return out
	}
	files := func() []string {
		ents, _ := os.ReadDir(cds)
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	waitFor := func(what string, timeout time.Duration, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(timeout); !ok(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, timeout)
			}
		}
	}

	// A restart while the dump runs: the dump ends with the JVM.
	p, _ := run()
	waitFor("the first start's dump began", 2*time.Minute, func() bool { return len(dumps()) > 0 })
	p.stop(t)
	waitFor("the dump ended after the JVM", 5*time.Second, func() bool { return len(dumps()) == 0 })
	waitFor("the dump's files removed", 5*time.Second, func() bool { return len(files()) == 0 })

	// The next first start writes the archive.
	p, _ = run()
	waitFor("start.sh wrote the archive", 3*time.Minute, func() bool { return strings.Contains(p.out.String(), "archive") })
	if !strings.Contains(p.out.String(), "written: the next start uses it") {
		t.Fatalf("start.sh did not write the archive:\n%s\n%s", p.out.String(), readFile(filepath.Join(cds, "dump.log")))
	}
	p.stop(t)
	got := files()
	if len(got) != 1 || !strings.HasSuffix(got[0], ".jsa") {
		t.Fatalf("%s holds %q, want one archive", cds, got)
	}
	jsa := filepath.Join(cds, got[0])

	// The next start maps it, and H2's classes come from it.
	loaded := filepath.Join(t.TempDir(), "classes.log")
	p, _ = run("JAVA_TOOL_OPTIONS=-Xshare:on -Xlog:class+load=info:file=" + loaded)
	p.stop(t)
	log := readFile(loaded)
	for _, want := range []string{"org.h2.Driver source: shared objects file", "cosmos.account.Main source: file:"} {
		if !strings.Contains(log, want) {
			t.Errorf("the class loading log has no %q", want)
		}
	}

	// A damaged archive is ignored.
	if err := os.Chmod(jsa, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jsa, []byte("not an archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ = run()
	p.stop(t)
}

func readFile(name string) string {
	b, _ := os.ReadFile(name)
	return string(b)
}

func TestIntegrationTransferMoney(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the transfermoney service against kfake")
	}
	dir := filepath.Join("cosmos", "transfermoney")
	build(t, dir)
	wantVersion := constant(t, filepath.Join(dir, "version.go"), `(?m)^const version = "([^"]*)"$`)

	kafka, err := kfake.NewCluster(kfake.AllowAutoTopicCreation(), kfake.SeedTopics(1, "transfers"))
	if err != nil {
		t.Fatalf("starting kfake: %v", err)
	}
	t.Cleanup(kafka.Close)
	brokers := kafka.ListenAddrs()

	accounts := &accountService{balances: map[string]int64{"A-1": 1000, "A-2": 0}}
	as := httptest.NewServer(accounts)
	t.Cleanup(as.Close)

	port := freePort(t)
	p := start(t, dir, []string{"./bin/transfermoney"},
		"PORT="+port, "ACCOUNT_URL="+as.URL, "BROKER="+strings.Join(brokers, ","), "TOPIC=transfers")
	base := "http://127.0.0.1:" + port
	waitHealthy(t, p, base, 30*time.Second)
	expect(t, "GET", base+"/version", "", 200, wantVersion)

	body := expect(t, "POST", base+"/transfers", `{"from":"A-1","to":"A-2","amount":250}`, 201, `"amount":250`)
	var answered transferEvent
	if err := json.Unmarshal(body, &answered); err != nil {
		t.Fatalf("decoding 201 answer %q: %v", body, err)
	}
	if answered.ID == "" || answered.From != "A-1" || answered.To != "A-2" || answered.Amount != 250 || answered.Time.IsZero() {
		t.Errorf("answered event %+v, want id, from A-1, to A-2, amount 250, time", answered)
	}
	if got := accounts.balance("A-1"); got != 750 {
		t.Errorf("A-1 balance after transfer = %d, want 750", got)
	}
	if got := accounts.balance("A-2"); got != 250 {
		t.Errorf("A-2 balance after transfer = %d, want 250", got)
	}

	rec := consumeOne(t, brokers, "transfers")
	var published transferEvent
	if err := json.Unmarshal(rec.Value, &published); err != nil {
		t.Fatalf("decoding the record on topic transfers %q: %v", rec.Value, err)
	}
	if published != answered {
		t.Errorf("published %+v, answered %+v: want the same event", published, answered)
	}
	if string(rec.Key) != "A-1" {
		t.Errorf("record key = %q, want the source account A-1", rec.Key)
	}

	expect(t, "POST", base+"/transfers", `{"from":"A-2","to":"A-1","amount":999}`, 409, "insufficient funds")
	if got := accounts.balance("A-1"); got != 750 {
		t.Errorf("A-1 balance after a refused transfer = %d, want 750", got)
	}
	p.stop(t)

	t.Run("kafka down", func(t *testing.T) {
		// A port nothing listens on: the service must start anyway and answer 503.
		port := freePort(t)
		p := start(t, dir, []string{"./bin/transfermoney"},
			"PORT="+port, "ACCOUNT_URL="+as.URL, "BROKER=127.0.0.1:"+freePort(t))
		base := "http://127.0.0.1:" + port
		waitHealthy(t, p, base, 30*time.Second)
		began := time.Now()
		expect(t, "POST", base+"/transfers", `{"from":"A-1","to":"A-2","amount":1}`, 503, "not published")
		if d := time.Since(began); d > 15*time.Second {
			t.Errorf("the 503 took %s, want a short timeout", d)
		}
		p.stop(t)
	})
}

func TestIntegrationTransferMoneyImage(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test: builds and runs the transfermoney image with Docker")
	}
	ctx := t.Context()
	docker := func(args ...string) string {
		t.Helper()
		out, err := execx.Output(ctx, execx.Cmd{Args: append([]string{"docker"}, args...), Env: []string{"DOCKER_BUILDKIT=0"}})
		if err != nil {
			t.Fatalf("%v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if _, err := execx.Output(ctx, execx.Cmd{Args: []string{"docker", "info"}}); err != nil {
		t.Fatalf("docker is not usable (start dockerd first): %v", err)
	}
	dir := filepath.Join("cosmos", "transfermoney")
	build(t, dir)
	wantVersion := constant(t, filepath.Join(dir, "version.go"), `(?m)^const version = "([^"]*)"$`)

	const label = "dev.devenv.test=examples"
	tag := fmt.Sprintf("devenv-examples/transfermoney:test-%d", time.Now().UnixNano())
	// FROM scratch: nothing is pulled.
	docker("build", "-q", "--label", label, "-t", tag, dir)
	t.Cleanup(func() { _ = execx.Run(context.Background(), execx.Cmd{Args: []string{"docker", "rmi", "-f", tag}}) })

	id := docker("run", "-d", "--label", label, "-p", "127.0.0.1::8080", "-e", "BROKER=127.0.0.1:1", tag)
	t.Cleanup(func() { _ = execx.Run(context.Background(), execx.Cmd{Args: []string{"docker", "rm", "-f", id}}) })
	hostPort := docker("port", id, "8080/tcp")
	if i := strings.LastIndex(hostPort, ":"); i >= 0 {
		hostPort = hostPort[i+1:]
	}
	base := "http://127.0.0.1:" + hostPort
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			logs, _ := execx.Output(ctx, execx.Cmd{Args: []string{"docker", "logs", id}})
			t.Fatalf("container %s not healthy within 30s (last error %v); logs:\n%s", id, err, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	expect(t, "GET", base+"/version", "", 200, wantVersion)
	if files := docker("image", "inspect", "--format", "{{len .RootFS.Layers}}", tag); files != "1" {
		t.Errorf("image has %s layers, want 1 (only the binary)", files)
	}
	// Go as PID 1 must stop cleanly on SIGTERM.
	docker("stop", "-t", "10", id)
	if code := docker("inspect", "--format", "{{.State.ExitCode}}", id); code != "0" {
		t.Errorf("container exit code after docker stop = %s, want 0", code)
	}
}

// transferEvent mirrors the event transfermoney publishes.
type transferEvent struct {
	ID     string    `json:"id"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Amount int64     `json:"amount"`
	Time   time.Time `json:"time"`
}

// accountService implements the account service's withdraw and deposit endpoints.
type accountService struct {
	mu       sync.Mutex
	balances map[string]int64
}

func (a *accountService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id, op, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/accounts/"), "/")
	var req struct{ Amount int64 }
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil || req.Amount <= 0 {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"error":"bad request"}`)
		return
	}
	bal, ok := a.balances[id]
	switch {
	case !ok:
		w.WriteHeader(http.StatusNotFound)
		_, _ = fmt.Fprintf(w, `{"error":"account %s not found"}`, id)
	case op == "withdraw" && bal < req.Amount:
		w.WriteHeader(http.StatusConflict)
		_, _ = fmt.Fprintf(w, `{"error":"insufficient funds: account %s has %d"}`, id, bal)
	case op == "withdraw":
		a.balances[id] = bal - req.Amount
		_, _ = fmt.Fprintf(w, `{"id":%q,"balance":%d}`, id, a.balances[id])
	case op == "deposit":
		a.balances[id] = bal + req.Amount
		_, _ = fmt.Fprintf(w, `{"id":%q,"balance":%d}`, id, a.balances[id])
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":"no such path"}`)
	}
}

func (a *accountService) balance(id string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.balances[id]
}

// consumeOne reads the first record of topic from the start.
func consumeOne(t *testing.T, brokers []string, topic string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("creating kafka consumer: %v", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no record on topic %s within 20s", topic)
		}
		for _, e := range fs.Errors() {
			t.Logf("fetch error on %s/%d: %v", e.Topic, e.Partition, e.Err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

// build runs dir/build.sh and fails the test with its output if it fails.
func build(t *testing.T, dir string) {
	t.Helper()
	began := time.Now()
	if err := execx.Run(t.Context(), execx.Cmd{Args: []string{"./build.sh"}, Dir: dir}); err != nil {
		t.Fatalf("building %s: %v", dir, err)
	}
	t.Logf("%s/build.sh took %s", dir, time.Since(began).Round(time.Millisecond))
}

// constant returns the first group of re's first match in file.
func constant(t *testing.T, file, re string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(re).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no line matching %s", file, re)
	}
	return string(m[1])
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
}

// lockedBuffer collects a process's output for concurrent reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// process is a service started by a test.
type process struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	err  error
}

// start runs args in dir with extra env; the process is killed when the test ends.
func start(t *testing.T, dir string, args []string, env ...string) *process {
	t.Helper()
	p := &process{out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %v: %v", args, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("output of %v:\n%s", args, p.out.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for a clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stopping %v: %v", p.cmd.Args, err)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%v did not stop within 15s of SIGTERM", p.cmd.Args)
	}
	// A JVM ends with 143 (128+SIGTERM) after its shutdown hooks ran; Go exits 0.
	if p.err != nil && p.cmd.ProcessState.ExitCode() != 143 {
		t.Errorf("%v exited with %v", p.cmd.Args, p.err)
	}
}

// waitHealthy polls base/health until it answers 200, the process exits, or timeout passes.
func waitHealthy(t *testing.T, p *process, base string, timeout time.Duration) {
	t.Helper()
	t.Logf("waiting up to %s for %s/health", timeout, base)
	began := time.Now()
	deadline := began.Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("%v exited before it was healthy (%v):\n%s", p.cmd.Args, p.err, p.out.String())
		default:
		}
		resp, err := http.Get(base + "/health")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.TrimSpace(string(b)) == "ok" {
				t.Logf("%s healthy after %s", base, time.Since(began).Round(time.Millisecond))
				return
			}
			err = fmt.Errorf("status %d, body %q", resp.StatusCode, b)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s/health not ok within %s; last error: %v", base, timeout, last)
}

// expect sends one request and checks the status and that the body contains want.
func expect(t *testing.T, method, url, body string, wantStatus int, want string) []byte {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	if resp.StatusCode != wantStatus || !strings.Contains(string(b), want) {
		t.Errorf("%s %s %s = %d %s, want %d and a body containing %q", method, url, body, resp.StatusCode, b, wantStatus, want)
	}
	return b
}
