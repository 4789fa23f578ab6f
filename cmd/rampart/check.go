package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"time"
)

func runCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlags("check", stderr)
	at := fs.String("at", "", "answer as of this RFC 3339 time (within history.retention)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rampart check [--config FILE] [--at TIME] ADDRESS...")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, true); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	var when time.Time
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("--at: want an RFC 3339 time such as 2026-11-20T10:00:00Z: %w", err)
		}
		when = t
	}
	a, err := loadApp(ctx, *configPath)
	if err != nil {
		return err
	}
	defer a.close()
	if a.service.Index().Len() == 0 {
		fmt.Fprintln(stderr, "note: the store holds no listings yet; run 'rampart sync' first")
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	failed := 0
	for _, s := range fs.Args() {
		addr, err := netip.ParseAddr(s)
		if err != nil || addr.Zone() != "" {
			fmt.Fprintf(stderr, "%s: not an IP address\n", s)
			failed++
			continue
		}
		ans := a.service.Check(addr.Unmap())
		if !when.IsZero() {
			if ans, err = a.service.CheckAt(addr.Unmap(), when); err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", s, err)
				failed++
				continue
			}
		}
		if err := enc.Encode(ans); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d addresses could not be answered", failed, fs.NArg())
	}
	return nil
}
