package testrun

import (
	"reflect"
	"testing"
)

func TestEnviron(t *testing.T) {
	tests := []struct {
		name string
		vars Vars
		want []string
	}{
		{"empty", Vars{}, nil},
		{"everything", Vars{
			KafkaBootstrap: "127.0.0.1:29092",
			H2JDBCURL:      "jdbc:h2:tcp://127.0.0.1:19092/mem:account",
			Namespace:      "cosmos",
			KubeContext:    "kind-cosmos",
			Kubeconfig:     "/home/u/.kube/config",
			ServiceURLs:    map[string]string{"transfer-money": "http://127.0.0.1:18081", "account": "http://127.0.0.1:18080"},
		}, []string{
			"DEVENV_H2_JDBC_URL=jdbc:h2:tcp://127.0.0.1:19092/mem:account",
			"DEVENV_KAFKA_BOOTSTRAP=127.0.0.1:29092",
			"DEVENV_KUBE_CONTEXT=kind-cosmos",
			"DEVENV_NAMESPACE=cosmos",
			"DEVENV_SERVICE_ACCOUNT_URL=http://127.0.0.1:18080",
			"DEVENV_SERVICE_TRANSFER_MONEY_URL=http://127.0.0.1:18081",
			"KUBECONFIG=/home/u/.kube/config",
		}},
		{"empty values left out", Vars{Namespace: "shop", ServiceURLs: map[string]string{"a": "", "b": "http://b"}},
			[]string{"DEVENV_NAMESPACE=shop", "DEVENV_SERVICE_B_URL=http://b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 3 { // map order must not show
				if got := tt.vars.Environ(); !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Environ() = %q\nwant %q", got, tt.want)
				}
			}
		})
	}
}
