package render

import (
	"sort"
	"strings"

	"github.com/devenv-tool/devenv/internal/config"
)

// H2URL is the JDBC URL of service's H2 database: an in-memory database in the
// service's own JVM, or one on the H2 server. DB_CLOSE_DELAY=-1 keeps the
// in-memory database alive between connections.
func H2URL(cfg *config.Config, service string) string {
	if cfg.H2.Mode == config.H2Server {
		return "jdbc:h2:tcp://" + cfg.H2.Service + ":" + itoa(cfg.H2.Port) + "/mem:" + service + ";DB_CLOSE_DELAY=-1"
	}
	return "jdbc:h2:mem:" + service + ";DB_CLOSE_DELAY=-1"
}

// References returns the names usable as ${name} in this config, sorted.
func References(cfg *config.Config) []string {
	refs := []string{"namespace", "kafka.address", "kafka.host_address"}
	if cfg.H2.Mode == config.H2Server {
		refs = append(refs, "h2.address")
	}
	for _, s := range cfg.Services {
		refs = append(refs, "services."+s.Name+".address", "h2.url."+s.Name)
	}
	sort.Strings(refs)
	return refs
}

// expand resolves the ${...} references in v; $${ writes a literal ${.
func expand(cfg *config.Config, v config.Value, field string) (string, error) {
	return config.Expand(v, field, func(ref string) (string, error) { return lookup(cfg, ref, v.Pos, field) })
}

func lookup(cfg *config.Config, ref string, pos config.Pos, field string) (string, error) {
	switch {
	case ref == "namespace":
		return cfg.Namespace, nil
	case ref == "kafka.address":
		if cfg.Kafka == nil {
			return "", pos.Errorf(field, "${kafka.address} is used but Kafka is not configured; add a kafka: section")
		}
		return cfg.Kafka.Address(), nil
	case ref == "kafka.host_address":
		return "", pos.Errorf(field, "${kafka.host_address} is the broker's address on your machine (127.0.0.1:<hostPort>) and does not work inside the cluster; use ${kafka.address}")
	case ref == "h2.address":
		if cfg.H2.Mode != config.H2Server {
			return "", pos.Errorf(field, "${h2.address} needs h2: {mode: server}; in memory mode use ${h2.url.<service>}")
		}
		return cfg.H2.Service + ":" + itoa(cfg.H2.Port), nil
	case strings.HasPrefix(ref, "h2.url."):
		name := strings.TrimPrefix(ref, "h2.url.")
		if cfg.Service(name) == nil {
			return "", pos.Errorf(field, "${%s}: there is no enabled service %q", ref, name)
		}
		return H2URL(cfg, name), nil
	case strings.HasPrefix(ref, "services.") && strings.HasSuffix(ref, ".address"):
		name := strings.TrimSuffix(strings.TrimPrefix(ref, "services."), ".address")
		s := cfg.Service(name)
		if s == nil {
			return "", pos.Errorf(field, "${%s}: there is no enabled service %q", ref, name)
		}
		return s.Address(), nil
	}
	msg := "unknown reference ${" + ref + "}"
	if c := closestRef(ref, References(cfg)); c != "" {
		msg += "; did you mean ${" + c + "}?"
	}
	return "", pos.Errorf(field, "%s (known: %s; write $${ for a literal ${)", msg, strings.Join(References(cfg), ", "))
}

// closestRef returns the reference sharing the longest prefix with ref, if any is close.
func closestRef(ref string, known []string) string {
	best, bestLen := "", 0
	for _, k := range known {
		n := 0
		for n < len(ref) && n < len(k) && ref[n] == k[n] {
			n++
		}
		if n > bestLen {
			best, bestLen = k, n
		}
	}
	if bestLen < 3 {
		return ""
	}
	return best
}
