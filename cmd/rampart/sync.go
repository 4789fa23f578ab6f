package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rampart-ip/rampart/ingest"
)

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("sync", stderr)
	quiet := fs.Bool("quiet", false, "print only the summary")
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	a, err := loadApp(ctx, *configPath)
	if err != nil {
		return err
	}
	defer a.close()
	feeds := a.engine.Feeds()
	total := 0
	for _, f := range feeds {
		if f.Enabled {
			total++
		}
	}
	fmt.Fprintf(stderr, "syncing %d enabled feeds\n", total)

	p := newProgress(stderr, total, *quiet)
	start := time.Now()
	reports := a.engine.SyncAll(ctx, p.done)
	p.finish()
	if err := a.syncMISP(ctx, stderr); err != nil {
		return err
	}

	sort.Slice(reports, func(i, j int) bool { return reports[i].Feed < reports[j].Feed })
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEED\tADDED\tREMOVED\tENTRIES\tTIME\tSTATUS")
	failed := 0
	for _, r := range reports {
		status := "ok"
		switch {
		case r.Err != nil:
			status = "FAILED: " + r.Err.Error()
			failed++
		case r.NotModified:
			status = "unchanged"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", r.Feed, r.Added, r.Removed, r.Entries, r.Duration.Round(time.Millisecond), status)
	}
	tw.Flush()
	fmt.Fprintf(stdout, "%d feeds in %s, %d failed; index holds %d prefixes\n",
		len(reports), time.Since(start).Round(time.Millisecond), failed, a.service.Index().Len())
	if failed > 0 && failed == len(reports) {
		return fmt.Errorf("every feed failed")
	}
	return nil
}

// progress shows feed syncs as they finish: a redrawn line on a terminal,
// one log line per feed otherwise.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	quiet bool
	total int
	n     int
}

func newProgress(w io.Writer, total int, quiet bool) *progress {
	return &progress{w: w, tty: isTerminal(w), quiet: quiet, total: total}
}

func (p *progress) done(r ingest.Report) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.quiet {
		return
	}
	state := fmt.Sprintf("+%d -%d =%d", r.Added, r.Removed, r.Entries)
	if r.NotModified {
		state = "unchanged"
	}
	if r.Err != nil {
		state = "failed: " + r.Err.Error()
	}
	if p.tty {
		bar := bar(p.n, p.total, 24)
		fmt.Fprintf(p.w, "\r\033[K%s %d/%d %s %s", bar, p.n, p.total, r.Feed, state)
		return
	}
	fmt.Fprintf(p.w, "[%d/%d] %s %s (%s)\n", p.n, p.total, r.Feed, state, r.Duration.Round(time.Millisecond))
}

func (p *progress) finish() {
	if p.tty && !p.quiet {
		fmt.Fprintln(p.w)
	}
}

func bar(n, total, width int) string {
	if total <= 0 {
		total = 1
	}
	full := n * width / total
	if full > width {
		full = width
	}
	b := make([]byte, 0, width+2)
	b = append(b, '[')
	for i := 0; i < width; i++ {
		if i < full {
			b = append(b, '#')
		} else {
			b = append(b, '.')
		}
	}
	return string(append(b, ']'))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
