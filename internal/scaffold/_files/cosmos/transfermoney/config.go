package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// config is the service's settings, read from the environment.
type config struct {
	Port       string
	AccountURL string
	Brokers    []string
	Topic      string
}

// configFromEnv reads and checks the settings; an error names the variable at fault.
func configFromEnv(getenv func(string) string) (config, error) {
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	cfg := config{
		Port:       get("PORT", "8080"),
		AccountURL: strings.TrimRight(get("ACCOUNT_URL", "http://account:8080"), "/"),
		Topic:      get("TOPIC", "transfers"),
	}
	if n, err := strconv.Atoi(cfg.Port); err != nil || n < 1 || n > 65535 {
		return config{}, fmt.Errorf("PORT=%q is not a port number: set it to 1-65535 or unset it for 8080", cfg.Port)
	}
	u, err := url.Parse(cfg.AccountURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config{}, fmt.Errorf("ACCOUNT_URL=%q is not an http(s) URL: set it like http://account:8080", cfg.AccountURL)
	}
	for _, b := range strings.Split(get("BROKER", "kafka:9092"), ",") {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		if !strings.Contains(b, ":") {
			return config{}, fmt.Errorf("BROKER: %q has no port: set it like kafka:9092 (comma-separate several)", b)
		}
		cfg.Brokers = append(cfg.Brokers, b)
	}
	if len(cfg.Brokers) == 0 {
		return config{}, fmt.Errorf("BROKER names no address: set it like kafka:9092")
	}
	return cfg, nil
}
