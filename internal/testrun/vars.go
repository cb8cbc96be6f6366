package testrun

import (
	"sort"
	"strings"
)

// Vars are the environment's addresses a test receives as variables.
type Vars struct {
	KafkaBootstrap string            // DEVENV_KAFKA_BOOTSTRAP, e.g. 127.0.0.1:29092
	H2JDBCURL      string            // DEVENV_H2_JDBC_URL
	Namespace      string            // DEVENV_NAMESPACE
	KubeContext    string            // DEVENV_KUBE_CONTEXT
	Kubeconfig     string            // KUBECONFIG
	ServiceURLs    map[string]string // service name -> DEVENV_SERVICE_<NAME>_URL
}

// Environ returns the variables as NAME=value, sorted. A variable whose value
// is empty is left out. A service's NAME is its name upper-cased with - as _.
func (v Vars) Environ() []string {
	var env []string
	add := func(name, value string) {
		if value != "" {
			env = append(env, name+"="+value)
		}
	}
	add("DEVENV_KAFKA_BOOTSTRAP", v.KafkaBootstrap)
	add("DEVENV_H2_JDBC_URL", v.H2JDBCURL)
	add("DEVENV_NAMESPACE", v.Namespace)
	add("DEVENV_KUBE_CONTEXT", v.KubeContext)
	add("KUBECONFIG", v.Kubeconfig)
	for name, url := range v.ServiceURLs {
		add(ServiceURLVar(name), url)
	}
	sort.Strings(env)
	return env
}

// ServiceURLVar is the variable holding a service's URL:
// DEVENV_SERVICE_<NAME>_URL, NAME upper-cased with - and . as _.
func ServiceURLVar(service string) string {
	name := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(service))
	return "DEVENV_SERVICE_" + name + "_URL"
}
