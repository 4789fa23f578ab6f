package main

import (
	"log/slog"
	"math"
	"runtime/debug"
)

// defaultMemoryLimit is the soft memory limit serve sets when GOMEMLIMIT
// is not set: 256 MiB. A million indicators take about 150 MiB of live heap
// (index, enrichment tables, a full answer cache); with the collector's
// default GOGC=100 alone the heap would grow to twice that before a
// collection, and index rebuilds would push it higher. The limit makes the
// collector work harder only when the process nears it, so memory stays
// within budget without a lower GOGC taxing every request.
const defaultMemoryLimit = 256 << 20

// chooseMemoryLimit returns the soft memory limit to set and where it comes
// from, given GOMEMLIMIT's value: set means the runtime already applied it
// (0 returned: nothing to set), unset means the default.
func chooseMemoryLimit(gomemlimit string) (limit int64, source string) {
	if gomemlimit != "" {
		return 0, "GOMEMLIMIT"
	}
	return defaultMemoryLimit, "default"
}

// applyMemoryLimit sets the process's soft memory limit (runtime/debug
// SetMemoryLimit) to defaultMemoryLimit unless GOMEMLIMIT is set, in which
// case the runtime has applied that one and it is left alone. It logs the
// limit in force and returns it in bytes (math.MaxInt64 for none).
func applyMemoryLimit(getenv func(string) string, log *slog.Logger) int64 {
	limit, source := chooseMemoryLimit(getenv("GOMEMLIMIT"))
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	cur := debug.SetMemoryLimit(-1) // -1 reads the limit without changing it
	if cur == math.MaxInt64 {
		log.Info("no soft memory limit", "component", "serve", "source", source)
	} else {
		log.Info("soft memory limit", "component", "serve", "limit_mib", cur>>20, "source", source)
	}
	return cur
}
