package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/rampart-ip/rampart/alert"
	"github.com/rampart-ip/rampart/config"
	"github.com/rampart-ip/rampart/enrich"
	"github.com/rampart-ip/rampart/ingest"
	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/reputation"
	"github.com/rampart-ip/rampart/store"
	"github.com/rampart-ip/rampart/store/mongo"
	"github.com/rampart-ip/rampart/store/sqlite"
)

// app is the set of components one command works with, built from the
// configuration. close releases them in reverse order.
type app struct {
	cfg      *config.Config
	log      *slog.Logger
	store    store.Store
	enricher *enrich.Enricher
	warner   *misp.Warninglists
	service  *reputation.Service
	engine   *ingest.Engine
	misp     *ingest.MISP    // nil without misp.url
	alerts   *alert.Notifier // nil without Slack settings; nil is safe to use
	// runners are extra long-running parts (MISP sync, alerts) that serve
	// runs beside the servers.
	runners []func(ctx context.Context) error
	closers []func() error
}

func newLogger(cfg config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// openStore opens the configured backend: MongoDB when a URI is set, else
// the embedded SQLite file in data_dir.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (store.Store, error) {
	if cfg.Storage.MongoDBURI != "" {
		return mongo.Open(ctx, cfg.Storage.MongoDBURI, cfg.Storage.Database, log)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data_dir: %w", err)
	}
	return sqlite.Open(ctx, filepath.Join(cfg.DataDir, "rampart.db"), log)
}

// newApp loads the configuration and builds the store, enrichment, the
// reputation service and the sync engine. The index is not loaded yet.
func newApp(ctx context.Context, configPath string, logw io.Writer) (*app, error) {
	cfg, err := config.Load(configPath, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	a := &app{cfg: cfg, log: newLogger(cfg.Log, logw)}
	ok := false
	defer func() {
		if !ok {
			a.close()
		}
	}()

	a.store, err = openStore(ctx, cfg, a.log)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	a.closers = append(a.closers, a.store.Close)

	a.enricher, err = enrich.Open(cfg.Enrich.GeoIP, a.log)
	if err != nil {
		return nil, fmt.Errorf("open enrichment: %w", err)
	}
	a.closers = append(a.closers, a.enricher.Close)

	var enr reputation.Enricher = a.enricher
	var warner reputation.Warner
	if len(cfg.Enrich.Warninglists) > 0 {
		a.warner, err = misp.LoadWarninglists(cfg.Enrich.Warninglists...)
		if err != nil {
			return nil, fmt.Errorf("load warninglists: %w", err)
		}
		warner = a.warner
	}

	a.alerts, err = alert.NewSlack(cfg.Alerts.Slack, a.log, time.Now)
	if err != nil {
		return nil, err
	}
	if a.alerts != nil {
		a.runners = append(a.runners, a.alerts.Run)
	}

	a.service = reputation.NewService(reputation.ServiceOptions{
		Model:      reputation.NewModel(cfg.Scoring),
		CacheSize:  cfg.Cache.Size,
		Doorkeeper: cfg.Cache.Doorkeeper,
		Enricher:   enr,
		Warner:     warner,
		Logger:     a.log,
		Observe:    a.alerts.Observe,
	})
	fetcher := misp.NewFetcher(misp.FetchOptions{
		Client:   &http.Client{},
		Timeout:  cfg.Sync.Timeout.Std(),
		MaxBytes: cfg.Sync.MaxBytes,
	}, a.log)
	a.engine = ingest.NewEngine(ingest.EngineOptions{
		Store:    a.store,
		Service:  a.service,
		Fetcher:  fetcher,
		Sync:     cfg.Sync,
		History:  cfg.History,
		Scoring:  cfg.Scoring,
		Enricher: enr,
		Warner:   warner,
		Logger:   a.log,
		// Replicas sharing MongoDB take turns syncing through a lease; the
		// embedded store has one process, which always syncs.
		Lease: ingest.LeaseOptions{Shared: cfg.Storage.MongoDBURI != ""},
	})
	origin := "config"
	if cfg.Feeds == nil {
		origin = "catalog"
	}
	a.engine.SetFeeds(origin, cfg.StaticFeeds())
	// Before Start, so that Start does not end the listings of feeds
	// added through the admin API as if they had been removed.
	if err := a.engine.LoadAPIFeeds(ctx); err != nil {
		return nil, err
	}
	if err := a.setupMISP(); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// loadApp is newApp for the one-shot commands (sync, check, eval): logs
// discarded, and the stored index loaded before it returns.
func loadApp(ctx context.Context, configPath string) (*app, error) {
	a, err := newApp(ctx, configPath, io.Discard)
	if err != nil {
		return nil, err
	}
	if err := a.engine.Start(ctx); err != nil {
		a.close()
		return nil, fmt.Errorf("load index: %w", err)
	}
	return a, nil
}

func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.log.Warn("close", "err", err)
		}
	}
	a.closers = nil
}
