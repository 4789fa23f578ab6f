package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/rampart-ip/rampart/ingest"
	"github.com/rampart-ip/rampart/misp"
)

// setupMISP connects the MISP poller when misp.url is set and registers
// its jobs on the engine's scheduler.
func (a *app) setupMISP() error {
	if a.cfg.MISP.URL == "" {
		return nil
	}
	client, err := misp.NewClient(ingest.MISPClientOptions(a.cfg.MISP), a.log)
	if err != nil {
		return fmt.Errorf("misp client: %w", err)
	}
	a.misp = ingest.NewMISP(ingest.MISPOptions{
		Engine: a.engine,
		Store:  a.store,
		Client: client,
		Config: a.cfg.MISP,
		Logger: a.log,
	})
	a.misp.Register()
	return nil
}

// syncMISP pulls MISP's feeds and attributes once, for `rampart sync`.
func (a *app) syncMISP(ctx context.Context, w io.Writer) error {
	if a.misp == nil {
		return nil
	}
	fmt.Fprintf(w, "syncing MISP at %s\n", a.cfg.MISP.URL)
	err := a.misp.SyncOnce(ctx, func(p ingest.MISPProgress) {
		switch {
		case p.Err != nil:
			fmt.Fprintf(w, "misp %s: failed: %v\n", p.Step, p.Err)
		case p.Step == "feeds":
			fmt.Fprintf(w, "misp: %d enabled feeds\n", p.Feeds)
		case p.Step == "feed":
			fmt.Fprintf(w, "misp feed %s: +%d -%d =%d\n", p.Report.Feed, p.Report.Added, p.Report.Removed, p.Report.Entries)
		case p.Step == "attributes":
			fmt.Fprintf(w, "misp attributes: %d read in %d pages, %d events changed, +%d -%d (%s)\n",
				p.Pull.Attributes, p.Pull.Pages, p.Pull.Events, p.Pull.Added, p.Pull.Removed, p.Pull.Duration.Round(time.Millisecond))
		}
	})
	if err != nil {
		return fmt.Errorf("misp: %w", err)
	}
	return nil
}
