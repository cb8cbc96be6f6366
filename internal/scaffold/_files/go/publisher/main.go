// Command publisher is a small HTTP service that publishes messages to Kafka.
//
//	GET  /health    200 "ok"
//	GET  /version   the build's version (version.go)
//	POST /messages  publishes the request body to the topic; 201 {"topic","partition","offset"}
//
// Settings come from the environment (devenv passes its ConfigMap as env):
//
//	PORT    port to listen on (8080)
//	BROKER  Kafka bootstrap address(es), comma-separated (kafka:9092)
//	TOPIC   topic the messages go to (messages)
//
// The service starts without Kafka; a message Kafka does not take within a
// few seconds is answered 503 with the error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// publishTimeout bounds one publish, so a request never hangs on a missing broker.
const publishTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := log.New(os.Stdout, "", log.LstdFlags|log.LUTC)
	if err := run(ctx, os.Getenv, logger); err != nil {
		logger.Printf("error: %v", err)
		stop()
		os.Exit(1)
	}
}

// run starts the service and serves until ctx is done.
func run(ctx context.Context, getenv func(string) string, logger *log.Logger) error {
	get := func(key, def string) string {
		if v := strings.TrimSpace(getenv(key)); v != "" {
			return v
		}
		return def
	}
	port, topic := get("PORT", "8080"), get("TOPIC", "messages")
	brokers := strings.Split(get("BROKER", "kafka:9092"), ",")
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(publishTimeout),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return fmt.Errorf("creating kafka client for BROKER %v: %w", brokers, err)
	}
	defer cl.Close()

	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           routes(cl.ProduceSync, topic, logger),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Printf("publisher %s listening on :%s; kafka %v topic %s", version, port, brokers, topic)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving http on port %s (PORT): %w", port, err)
	case <-ctx.Done():
	}
	logger.Printf("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down http server: %w", err)
	}
	return nil
}

// produceFunc writes records and waits until Kafka has them (kgo.Client.ProduceSync).
type produceFunc func(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults

// routes returns the service's HTTP handler.
func routes(produce produceFunc, topic string, logger *log.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("POST /messages", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil || len(body) == 0 {
			reply(w, http.StatusBadRequest, map[string]any{"error": "send the message as the request body"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
		defer cancel()
		rec, err := produce(ctx, &kgo.Record{Value: body}).First()
		if err != nil {
			logger.Printf("publishing to %s: %v", topic, err)
			reply(w, http.StatusServiceUnavailable, map[string]any{"error": fmt.Sprintf("publishing to topic %s: %v", topic, err)})
			return
		}
		logger.Printf("published %d bytes to %s/%d at offset %d", len(body), rec.Topic, rec.Partition, rec.Offset)
		reply(w, http.StatusCreated, map[string]any{"topic": rec.Topic, "partition": rec.Partition, "offset": rec.Offset})
	})
	return mux
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
