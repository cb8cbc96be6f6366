package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

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
	cfg, err := configFromEnv(getenv)
	if err != nil {
		return err
	}
	pub, err := newKafkaPublisher(cfg.Brokers, cfg.Topic)
	if err != nil {
		return err
	}
	defer pub.Close()

	aud := &audit{}
	go aud.consume(ctx, cfg.Brokers, cfg.Topic, logger)
	srv := &server{
		accounts: newAccountClient(cfg.AccountURL),
		events:   pub,
		audit:    aud,
		log:      logger,
		now:      time.Now,
	}
	ln, err := net.Listen("tcp", ":"+cfg.Port)
	if err != nil {
		return fmt.Errorf("listening on port %s (PORT): %w", cfg.Port, err)
	}
	hs := &http.Server{
		Handler:           srv.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	logger.Printf("transfermoney %s listening on :%s; account service %s; kafka %v topic %s",
		version, cfg.Port, cfg.AccountURL, cfg.Brokers, cfg.Topic)

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving http: %w", err)
	case <-ctx.Done():
	}
	logger.Printf("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutting down http server: %w", err)
	}
	return nil
}
