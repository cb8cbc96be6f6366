// Package fakebroker runs devenv's offline Kafka broker: a single kfake
// broker (github.com/twmb/franz-go/pkg/kfake) that listens on a chosen
// address, advertises a chosen address, persists to a data directory, and can
// serve a second, external listener that advertises another address (for
// clients on the host reaching the container through a published port).
//
// kfake has one listener per broker and advertises that listener's address to
// every client. The external listener is therefore an in-process Kafka
// protocol proxy in front of the internal one that rewrites the broker
// host/port in Metadata, FindCoordinator and DescribeCluster responses.
//
// The package is built into the devenv.local/kafka stand-in image (see
// internal/images/kfake), so it imports only the standard library and
// franz-go modules; Source holds its own files for that build.
package fakebroker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Defaults used by ConfigFromEnv and by Run for empty fields.
const (
	DefaultListen    = "0.0.0.0:9092"
	DefaultClusterID = "devenv-kafka"
	// Auto as the advertised address means: the first non-loopback IPv4
	// address of this machine (the container's IP) with the listen port.
	Auto = "auto"
)

// Environment variables read by ConfigFromEnv.
const (
	EnvListen             = "DEVENV_KAFKA_LISTEN"              // internal listener bind address (default 0.0.0.0:9092)
	EnvAdvertised         = "DEVENV_KAFKA_ADVERTISED"          // host:port advertised on it, or "auto" (default)
	EnvExternalListen     = "DEVENV_KAFKA_EXTERNAL_LISTEN"     // external listener bind address; empty = none
	EnvExternalAdvertised = "DEVENV_KAFKA_EXTERNAL_ADVERTISED" // host:port advertised on it (required with the listener)
	EnvDataDir            = "DEVENV_KAFKA_DATA_DIR"            // persistence directory; empty = in memory only
	EnvPartitions         = "DEVENV_KAFKA_PARTITIONS"          // default partitions of new topics (default 1)
	EnvTopics             = "DEVENV_KAFKA_TOPICS"              // seed topics: name[:partitions],...
	EnvAutoCreate         = "DEVENV_KAFKA_AUTO_CREATE"         // "true" (default) or "false"
	EnvLogLevel           = "DEVENV_KAFKA_LOG"                 // none|error|warn|info|debug (default warn)
	EnvClusterID          = "DEVENV_KAFKA_CLUSTER_ID"          // cluster ID in metadata (default devenv-kafka)
)

// Topic is a topic created at start when it does not exist yet.
type Topic struct {
	Name       string
	Partitions int32 // 0 = Config.Partitions
}

// Config configures Run.
type Config struct {
	// Listen is the internal listener's bind address (default 0.0.0.0:9092).
	Listen string
	// Advertised is the host:port the internal listener advertises, or Auto.
	Advertised string
	// ExternalListen, when set, opens the external listener on this address.
	ExternalListen string
	// ExternalAdvertised is the host:port the external listener advertises,
	// for example 127.0.0.1:<published host port>.
	ExternalAdvertised string
	// DataDir, when set, makes the broker persist its state there (every write
	// synced) and reload it on the next Run.
	DataDir string
	// Partitions is the partition count of auto-created topics (default 1).
	Partitions int
	// Topics are created at start if missing.
	Topics []Topic
	// AutoCreate lets producers and metadata requests create topics.
	AutoCreate bool
	// LogLevel is none, error, warn (default), info or debug.
	LogLevel string
	// ClusterID is reported in metadata (default devenv-kafka).
	ClusterID string
	// Log receives the broker's log lines (default os.Stderr).
	Log io.Writer
	// OnReady, when set, is called once every listener accepts connections.
	OnReady func()
}

// ConfigFromEnv reads a Config from the DEVENV_KAFKA_* variables through
// getenv (os.Getenv in the image). A malformed value is an error naming the
// variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	cfg := Config{
		Listen:             get(EnvListen, DefaultListen),
		Advertised:         get(EnvAdvertised, Auto),
		ExternalListen:     get(EnvExternalListen, ""),
		ExternalAdvertised: get(EnvExternalAdvertised, ""),
		DataDir:            get(EnvDataDir, ""),
		LogLevel:           get(EnvLogLevel, "warn"),
		ClusterID:          get(EnvClusterID, DefaultClusterID),
	}
	n, err := strconv.Atoi(get(EnvPartitions, "1"))
	if err != nil || n < 1 {
		return Config{}, fmt.Errorf("%s=%q: want a whole number of at least 1", EnvPartitions, getenv(EnvPartitions))
	}
	cfg.Partitions = n
	switch v := strings.ToLower(get(EnvAutoCreate, "true")); v {
	case "true", "1", "yes":
		cfg.AutoCreate = true
	case "false", "0", "no":
	default:
		return Config{}, fmt.Errorf("%s=%q: want true or false", EnvAutoCreate, v)
	}
	for _, item := range strings.Split(getenv(EnvTopics), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, ps, hasParts := strings.Cut(item, ":")
		t := Topic{Name: strings.TrimSpace(name)}
		if t.Name == "" {
			return Config{}, fmt.Errorf("%s: entry %q has no topic name; want name[:partitions],...", EnvTopics, item)
		}
		if hasParts {
			p, err := strconv.ParseInt(strings.TrimSpace(ps), 10, 32)
			if err != nil || p < 1 {
				return Config{}, fmt.Errorf("%s: topic %q: partitions %q is not a whole number of at least 1", EnvTopics, t.Name, ps)
			}
			t.Partitions = int32(p)
		}
		cfg.Topics = append(cfg.Topics, t)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func (cfg *Config) validate() error {
	if _, _, err := net.SplitHostPort(cfg.Listen); err != nil {
		return fmt.Errorf("listen address %q (%s): %w", cfg.Listen, EnvListen, err)
	}
	if cfg.Advertised != Auto {
		if err := checkHostPort(cfg.Advertised); err != nil {
			return fmt.Errorf("advertised address %q (%s): %w", cfg.Advertised, EnvAdvertised, err)
		}
	}
	if cfg.ExternalListen != "" {
		if _, _, err := net.SplitHostPort(cfg.ExternalListen); err != nil {
			return fmt.Errorf("external listen address %q (%s): %w", cfg.ExternalListen, EnvExternalListen, err)
		}
		if cfg.ExternalAdvertised == "" {
			return fmt.Errorf("external listener %q has no advertised address: set %s to host:port", cfg.ExternalListen, EnvExternalAdvertised)
		}
		if err := checkHostPort(cfg.ExternalAdvertised); err != nil {
			return fmt.Errorf("external advertised address %q (%s): %w", cfg.ExternalAdvertised, EnvExternalAdvertised, err)
		}
	}
	if _, err := logLevel(cfg.LogLevel); err != nil {
		return err
	}
	return nil
}

func checkHostPort(s string) error {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if h == "" {
		return errors.New("empty host")
	}
	if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not between 1 and 65535", p)
	}
	return nil
}

func logLevel(s string) (kfake.LogLevel, error) {
	switch strings.ToLower(s) {
	case "none":
		return kfake.LogLevelNone, nil
	case "error":
		return kfake.LogLevelError, nil
	case "", "warn":
		return kfake.LogLevelWarn, nil
	case "info":
		return kfake.LogLevelInfo, nil
	case "debug":
		return kfake.LogLevelDebug, nil
	}
	return 0, fmt.Errorf("log level %q (%s): want none, error, warn, info or debug", s, EnvLogLevel)
}

// Run starts the broker and serves until ctx is done, then shuts down
// (flushing the data directory) and returns nil. It returns an error if the
// configuration is invalid or a listener cannot be opened.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Advertised == "" {
		cfg.Advertised = Auto
	}
	if cfg.Partitions < 1 {
		cfg.Partitions = 1
	}
	if cfg.ClusterID == "" {
		cfg.ClusterID = DefaultClusterID
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	lvl, _ := logLevel(cfg.LogLevel)
	_, port, _ := net.SplitHostPort(cfg.Listen)
	adv := cfg.Advertised
	if adv == Auto {
		adv = net.JoinHostPort(firstIPv4(), port)
	}

	// kfake asks for a listener once per broker; we give it ours, bound to
	// cfg.Listen and reporting the advertised address as its Addr, which is
	// what kfake puts in its responses.
	var bound net.Addr
	listen := func(network, _ string) (net.Listener, error) {
		ln, err := net.Listen(network, cfg.Listen)
		if err != nil {
			return nil, err
		}
		bound = ln.Addr()
		return advertisedListener{Listener: ln, adv: tcpAddr(adv)}, nil
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID(cfg.ClusterID),
		kfake.DefaultNumPartitions(cfg.Partitions),
		kfake.WithLogger(kfake.BasicLogger(cfg.Log, lvl)),
		kfake.ListenFn(listen),
	}
	if cfg.AutoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir), kfake.SyncWrites())
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("starting broker on %s: %w", cfg.Listen, err)
	}
	defer cluster.Close()
	// Seed topics are created here rather than with kfake.SeedTopics, which
	// kfake ignores when it reloads state from the data directory.
	for _, t := range cfg.Topics {
		if cluster.TopicInfo(t.Name) != nil {
			continue
		}
		if err := cluster.CreateTopic(t.Name, t.Partitions, nil); err != nil {
			return fmt.Errorf("creating seed topic %q: %w", t.Name, err)
		}
	}
	fmt.Fprintf(cfg.Log, "fakebroker: internal listener %s advertised as %s\n", cfg.Listen, adv)

	var wg sync.WaitGroup
	if cfg.ExternalListen != "" {
		ln, err := net.Listen("tcp", cfg.ExternalListen)
		if err != nil {
			return fmt.Errorf("opening external listener on %s: %w", cfg.ExternalListen, err)
		}
		p := newProxy(backendAddr(bound), cfg.ExternalAdvertised, cfg.Log)
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.serve(ln)
		}()
		defer func() {
			_ = ln.Close()
			p.closeAll()
			wg.Wait()
		}()
		fmt.Fprintf(cfg.Log, "fakebroker: external listener %s advertised as %s\n", cfg.ExternalListen, cfg.ExternalAdvertised)
	}
	fmt.Fprintf(cfg.Log, "fakebroker: ready\n")
	if cfg.OnReady != nil {
		cfg.OnReady()
	}
	<-ctx.Done()
	fmt.Fprintf(cfg.Log, "fakebroker: shutting down\n")
	return nil
}

// backendAddr is the address the proxy dials to reach the internal listener:
// the bound address, with an unspecified host replaced by loopback.
func backendAddr(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func firstIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

// advertisedListener reports the advertised address as its Addr.
type advertisedListener struct {
	net.Listener
	adv tcpAddr
}

func (l advertisedListener) Addr() net.Addr { return l.adv }
