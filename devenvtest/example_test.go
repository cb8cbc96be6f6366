package devenvtest_test

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/devenv-tool/devenv/devenvtest"
)

// A test of the cosmos project (devenv.yaml two folders up) posts a
// transfer to the transfermoney service through a port-forward. The
// examples' t is the test's *testing.T.
func Example() {
	var t *testing.T // in a test: func TestIntegrationTransfer(t *testing.T)

	env := devenvtest.Start(t, devenvtest.WithFile("../../devenv.yaml"))
	resp, err := http.Post(env.ServiceURL("transfermoney")+"/transfers", "application/json",
		strings.NewReader(`{"from":"A-1","to":"A-2","amount":1}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /transfers: %s", resp.Status)
	}
}

// Options layer a CI override on the project's file, bound the wait for
// another holder, log through the test's own logger, and keep the cluster's
// context out of the user's kubeconfig.
func ExampleStart_options() {
	var t *testing.T

	env := devenvtest.Start(t,
		devenvtest.WithFile("../../devenv.yaml", "ci.yaml"),
		devenvtest.WithTimeout(15*time.Minute),
		devenvtest.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))),
		devenvtest.WithKubeconfig(t.TempDir()+"/kubeconfig"),
		devenvtest.WithDown(os.Getenv("CI") != ""), // remove it at the end in CI only
	)
	_ = env
}

// A test produces to a topic of its own, which no other test or run sees
// and which is deleted when the test ends.
func ExampleEnv_Topic() {
	var t *testing.T
	env := devenvtest.Start(t)

	topic := env.Topic(t, "transfers")
	cl, err := kgo.NewClient(kgo.SeedBrokers(env.KafkaBootstrap()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("hello")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// A test reads the cluster with client-go.
func ExampleEnv_Kube() {
	var t *testing.T
	env := devenvtest.Start(t)

	k := env.Kube()
	pods, err := k.Client.CoreV1().Pods(k.Namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pods in %s (kubectl --context %s)", len(pods.Items), k.Namespace, k.Context)
}

// With h2: {mode: server}, a test reaches a service's database from the host.
func ExampleEnv_H2JDBCURL() {
	var t *testing.T
	env := devenvtest.Start(t)

	url, err := env.H2JDBCURL()
	if err != nil {
		t.Skip(err) // H2 runs in memory inside each service
	}
	t.Logf("account's database: %s/mem:account;DB_CLOSE_DELAY=-1", url)
}
