package main

// The opt-in debug listener serves Go's CPU, heap and goroutine profiles
// (net/http/pprof) so that the store's CPU per command can be measured while
// a benchmark runs:
//
//	go tool pprof -top http://127.0.0.1:6060/debug/pprof/profile?seconds=30
//
// It is off unless -debug-addr is given, and it only listens on a loopback
// address: profiles show query texts, which may hold personal data.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// checkDebugAddr refuses any address that is not loopback.
func checkDebugAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("invalid -debug-addr %q: %w", addr, err)
	}

	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("invalid -debug-addr %q: want a loopback IP such as 127.0.0.1", addr)
	}

	return nil
}

// serveDebug serves the profiles on addr until ctx ends.
func serveDebug(ctx context.Context, addr string, logger *slog.Logger) error {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("debug listener: %w", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)

	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	go func() {
		<-ctx.Done()
		_ = server.Close()
	}()

	logger.Info("debug listener (pprof) started", "addr", listener.Addr().String())

	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("debug listener stopped", "error", err)
		}
	}()

	return nil
}
