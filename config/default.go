package config

import (
	"time"

	"github.com/rampart-ip/rampart/misp"
)

// Default returns the configuration used when a setting is absent. It is the
// single source of defaults: config.yaml.example documents the same values
// and a test keeps the two equal.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Listen:         "127.0.0.1:8080",
			ReadTimeout:    d(10 * time.Second),
			WriteTimeout:   d(60 * time.Second),
			MaxBatch:       10000,
			MaxBodyBytes:   4 << 20,
			AuthzChallenge: "allow",
		},
		GRPC: GRPC{
			Listen:   "127.0.0.1:9090",
			ExtAuthz: ExtAuthz{Challenge: "allow", FailOpen: true},
		},
		DataDir: "./data",
		Storage: Storage{Database: "rampart"},
		MISP: MISP{
			VerifyTLS:    true,
			Timeout:      d(30 * time.Second),
			PollInterval: d(5 * time.Minute),
			Feeds:        true,
			Attributes: MISPAttributes{
				Enabled:   true,
				Types:     []string{"ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip"},
				ToIDsOnly: true,
				PageSize:  1000,
				Reconcile: d(24 * time.Hour),
			},
		},
		Sync: Sync{
			Interval:    d(time.Hour),
			Timeout:     d(2 * time.Minute),
			MaxBytes:    256 << 20,
			Concurrency: 4,
		},
		History: History{
			Retention:  d(168 * time.Hour),
			StaleAfter: d(24 * time.Hour),
		},
		Scoring: Scoring{
			Thresholds:                Thresholds{Block: 30, Challenge: 60, Triage: 90},
			DefaultLifetime:           d(14 * 24 * time.Hour),
			DecaySpeed:                2,
			WarninglistDiscount:       0.25,
			WarninglistTrust:          0.95,
			WarninglistSharedDiscount: 0.9,
			WarninglistQuorum:         3,
			Grace:                     d(24 * time.Hour),
			HistoryWeight:             0.6,
			ContextCap:                0.45,
		},
		Cache: Cache{Size: 100000, Doorkeeper: true},
		Auth: Auth{OpenQueries: true, RateLimit: RateLimit{
			Burst:    50,
			MaxPeers: 100000,
		}},
		Alerts: Alerts{Slack: Slack{
			Verdicts:    []string{"dangerous"},
			Dedup:       d(time.Hour),
			BatchSize:   20,
			BatchWindow: d(10 * time.Second),
			PerMinute:   10,
			QueueSize:   1024,
			DedupSize:   100000,
			Timeout:     d(10 * time.Second),
		}},
		Log: Log{Level: "info", Format: "text"},
	}
}

func d(v time.Duration) Duration { return misp.Duration(v) }
