package fakebroker

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    func(t *testing.T, c Config)
		wantErr string
	}{
		{
			name: "defaults",
			env:  nil,
			want: func(t *testing.T, c Config) {
				if c.Listen != DefaultListen || c.Advertised != Auto || c.ExternalListen != "" || c.DataDir != "" ||
					c.Partitions != 1 || !c.AutoCreate || c.LogLevel != "warn" || c.ClusterID != DefaultClusterID || len(c.Topics) != 0 {
					t.Errorf("defaults: got %+v", c)
				}
			},
		},
		{
			name: "everything",
			env: map[string]string{
				EnvListen: "0.0.0.0:9092", EnvAdvertised: "172.18.0.5:9092",
				EnvExternalListen: "0.0.0.0:19092", EnvExternalAdvertised: "127.0.0.1:30123",
				EnvDataDir: "/data", EnvPartitions: "3", EnvTopics: "orders:6, payments ,audit:1",
				EnvAutoCreate: "false", EnvLogLevel: "debug", EnvClusterID: "proj",
			},
			want: func(t *testing.T, c Config) {
				if c.Advertised != "172.18.0.5:9092" || c.ExternalListen != "0.0.0.0:19092" || c.ExternalAdvertised != "127.0.0.1:30123" ||
					c.DataDir != "/data" || c.Partitions != 3 || c.AutoCreate || c.LogLevel != "debug" || c.ClusterID != "proj" {
					t.Errorf("got %+v", c)
				}
				want := []Topic{{"orders", 6}, {"payments", 0}, {"audit", 1}}
				if fmt.Sprint(c.Topics) != fmt.Sprint(want) {
					t.Errorf("topics = %v, want %v", c.Topics, want)
				}
			},
		},
		{name: "bad partitions", env: map[string]string{EnvPartitions: "zero"}, wantErr: EnvPartitions},
		{name: "zero partitions", env: map[string]string{EnvPartitions: "0"}, wantErr: EnvPartitions},
		{name: "bad auto create", env: map[string]string{EnvAutoCreate: "maybe"}, wantErr: EnvAutoCreate},
		{name: "bad topic partitions", env: map[string]string{EnvTopics: "a:x"}, wantErr: `topic "a"`},
		{name: "empty topic name", env: map[string]string{EnvTopics: ":3"}, wantErr: EnvTopics},
		{name: "external without advertised", env: map[string]string{EnvExternalListen: "0.0.0.0:19092"}, wantErr: EnvExternalAdvertised},
		{name: "bad advertised", env: map[string]string{EnvAdvertised: "nohostport"}, wantErr: EnvAdvertised},
		{name: "bad log level", env: map[string]string{EnvLogLevel: "loud"}, wantErr: EnvLogLevel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, c)
		})
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type broker struct {
	internal, external string
	stop               func()
}

// start runs a broker on two loopback ports and waits until it is ready.
func start(t *testing.T, dataDir string, internalPort, externalPort int) *broker {
	t.Helper()
	b := &broker{
		internal: fmt.Sprintf("127.0.0.1:%d", internalPort),
		external: fmt.Sprintf("127.0.0.1:%d", externalPort),
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, Config{
			Listen: b.internal, Advertised: b.internal,
			ExternalListen: b.external, ExternalAdvertised: b.external,
			DataDir: dataDir, AutoCreate: true, Partitions: 2,
			Topics: []Topic{{Name: "seeded", Partitions: 3}},
			Log:    io.Discard, OnReady: func() { close(ready) },
		})
	}()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("broker not ready after 20s")
	}
	stopped := false
	b.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}
	t.Cleanup(b.stop)
	return b
}

func client(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestRunAdvertisesEachListenersAddress(t *testing.T) {
	b := start(t, "", freePort(t), freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, addr := range []string{b.internal, b.external} {
		adm := kadm.NewClient(client(t, addr))
		md, err := adm.BrokerMetadata(ctx)
		if err != nil {
			t.Fatalf("metadata via %s: %v", addr, err)
		}
		if len(md.Brokers) != 1 {
			t.Fatalf("metadata via %s: %d brokers, want 1", addr, len(md.Brokers))
		}
		got := net.JoinHostPort(md.Brokers[0].Host, fmt.Sprint(md.Brokers[0].Port))
		if got != addr {
			t.Errorf("metadata via %s advertises %s", addr, got)
		}
		// FindCoordinator goes through the rewrite too.
		if _, err := adm.DescribeGroups(ctx, "nobody"); err != nil {
			t.Errorf("describe groups via %s: %v", addr, err)
		}
		topics, err := adm.ListTopics(ctx, "seeded")
		if err != nil {
			t.Fatal(err)
		}
		if d := topics["seeded"]; d.Err != nil || len(d.Partitions) != 3 {
			t.Errorf("seeded topic via %s: err %v, %d partitions, want 3", addr, d.Err, len(d.Partitions))
		}
	}
}

func produce(t *testing.T, addr, topic string, values ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := client(t, addr, kgo.AllowAutoTopicCreation())
	for _, v := range values {
		if err := c.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("producing %q via %s: %v", v, addr, err)
		}
	}
}

func consume(t *testing.T, addr, topic string, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := client(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	for len(got) < n {
		fs := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consuming %s via %s: got %v after timeout", topic, addr, got)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Errorf("fetch via %s: %v", addr, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

func sameSet(a, b []string) bool {
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return len(a) == len(b)
}

func TestRunProduceConsumeThroughBothListeners(t *testing.T) {
	b := start(t, "", freePort(t), freePort(t))
	produce(t, b.internal, "via-internal", "a", "b")
	produce(t, b.external, "via-external", "c", "d")
	// Each topic read back through the other listener.
	if got := consume(t, b.external, "via-internal", 2); !sameSet(got, []string{"a", "b"}) {
		t.Errorf("via-internal read through external = %v", got)
	}
	if got := consume(t, b.internal, "via-external", 2); !sameSet(got, []string{"c", "d"}) {
		t.Errorf("via-external read through internal = %v", got)
	}
}

func TestRunKeepsDataAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ip, ep := freePort(t), freePort(t)
	b := start(t, dir, ip, ep)
	produce(t, b.external, "kept", "one", "two", "three")
	b.stop()

	b = start(t, dir, ip, ep)
	if got := consume(t, b.external, "kept", 3); !sameSet(got, []string{"one", "two", "three"}) {
		t.Errorf("after restart read %v", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(client(t, b.internal)).ListTopics(ctx, "seeded")
	if err != nil {
		t.Fatal(err)
	}
	if d := topics["seeded"]; d.Err != nil || len(d.Partitions) != 3 {
		t.Errorf("seeded topic after restart: err %v, %d partitions", d.Err, len(d.Partitions))
	}
}
