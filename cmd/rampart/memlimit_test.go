package main

import (
	"log/slog"
	"runtime/debug"
	"testing"
)

func TestApplyMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.DiscardHandler)

	t.Run("without GOMEMLIMIT the default limit is set", func(t *testing.T) {
		got := applyMemoryLimit(func(string) string { return "" }, log)
		if got != defaultMemoryLimit || debug.SetMemoryLimit(-1) != defaultMemoryLimit {
			t.Fatalf("limit %d, runtime %d, want %d", got, debug.SetMemoryLimit(-1), defaultMemoryLimit)
		}
	})
	t.Run("with GOMEMLIMIT the runtime's limit is left alone", func(t *testing.T) {
		debug.SetMemoryLimit(1 << 30) // as the runtime would have from GOMEMLIMIT=1GiB
		got := applyMemoryLimit(func(k string) string {
			if k == "GOMEMLIMIT" {
				return "1GiB"
			}
			return ""
		}, log)
		if got != 1<<30 {
			t.Fatalf("limit %d, want %d", got, 1<<30)
		}
	})
}
