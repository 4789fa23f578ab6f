package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

func mapEnv(m map[string]string) Env {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestBadConfigsReportEveryProblemWithItsKeyPath(t *testing.T) {
	tests := map[string][]string{
		"unknown-key.bad.yaml": {"http.listn: unknown key (line 2)", "feeds[0].colour: unknown key (line 7)"},
		"values.bad.yaml": {
			`http.listen: must be host:port, got "localhost"`,
			"sync.interval: must be at least 1m0s, got 10s",
			`feeds[0].settings.csv.value: column must be a positive integer, got "0"`,
			"feeds[1].url: must not be empty",
			`feeds[1].source_format: must be freetext, csv or misp, got "json"`,
			`feeds[1].name: "a" is already the name of feeds[0]`,
			"scoring.thresholds: block (70) must not be above challenge (40)",
			"auth.api_keys[0].key: must be at least 16 characters",
			`auth.api_keys[0].role: must be query, bouncer or admin, got "root"`,
			`log.level: must be debug, info, warn or error, got "loud"`,
		},
		"duration.bad.yaml": {
			"sync.interval: line 2: duration 3600 has no unit",
			`history.retention: invalid duration "banana"`,
			"history.stale_after: line 5: a duration must be a string",
			`feeds[0].refresh: invalid duration "soon"`,
		},
		"keyenv.bad.yaml": {"auth.api_keys[0]: set key or key_env, not both"},
		"misp.bad.yaml": {
			"misp.url: must be an http:// or https:// URL",
			"misp.key: is required when misp.url is set",
			`misp.attributes.types[1]: unknown IP attribute type "url"`,
		},
		"notmap.bad.yaml": {"the top level must be a mapping"},
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
	if len(files) != len(tests) {
		t.Fatalf("%d bad files, %d expectations: keep the table in step with testdata", len(files), len(tests))
	}
	for name, want := range tests {
		t.Run(name+" is rejected with each of its problems", func(t *testing.T) {
			_, err := Load(filepath.Join("testdata", name), noEnv)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestGoodConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yaml")
	if len(files) == 0 {
		t.Fatal("no good configs")
	}
	env := mapEnv(map[string]string{"RAMPART_TEST_ADMIN_KEY": "an-admin-key-long-enough"})
	for _, f := range files {
		t.Run(filepath.Base(f)+" loads", func(t *testing.T) {
			if _, err := Load(f, env); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFullConfigValues(t *testing.T) {
	env := mapEnv(map[string]string{"RAMPART_TEST_ADMIN_KEY": "an-admin-key-long-enough"})
	c, err := Load("testdata/full.good.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Sync.Interval.Std() != 30*time.Minute || c.MISP.PollInterval.Std() != 2*time.Minute {
		t.Errorf("durations: %s %s", c.Sync.Interval, c.MISP.PollInterval)
	}
	if len(c.Feeds) != 2 || !c.Feeds[0].Enabled || c.Feeds[1].Enabled {
		t.Errorf("a feed without enabled is enabled, one with enabled: false is not: %+v", c.Feeds)
	}
	if c.Feeds[1].Settings.CSV.Value != "2" || c.Feeds[1].Refresh.Std() != 15*time.Minute || *c.Feeds[0].Weight != 0.7 {
		t.Errorf("feed fields: %+v", c.Feeds)
	}
	if c.Auth.APIKeys[1].Key != "an-admin-key-long-enough" {
		t.Error("key_env was not read")
	}
	if c.History.StaleAfter.Std() != 12*time.Hour || c.History.Retention.Std() != 336*time.Hour {
		t.Error("history durations")
	}
	if c.HTTP.MaxBatch != Default().HTTP.MaxBatch {
		t.Error("unset keys keep their defaults")
	}
}

func TestFeedsKeyAbsentMeansCatalogAndEmptyMeansNone(t *testing.T) {
	c, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Feeds != nil || len(c.StaticFeeds()) == 0 {
		t.Error("no feeds key should give the default catalog")
	}
	c, err = Load("testdata/empty-feeds.good.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Feeds == nil || len(c.StaticFeeds()) != 0 {
		t.Errorf("feeds: [] should give no static feeds, got %d", len(c.StaticFeeds()))
	}
}

func TestEnvironmentOverridesTheFile(t *testing.T) {
	env := mapEnv(map[string]string{
		"RAMPART_HTTP_LISTEN": "127.0.0.1:1", "RAMPART_GRPC_LISTEN": "127.0.0.1:2",
		"RAMPART_DATA_DIR": "/srv/r", "RAMPART_MONGODB_URI": "mongodb://m:27017",
		"RAMPART_MISP_URL": "https://misp.test", "RAMPART_MISP_KEY": "k3y",
	})
	c, err := Load("testdata/minimal.good.yaml", env)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{c.HTTP.Listen, c.GRPC.Listen, c.DataDir, c.Storage.MongoDBURI, c.MISP.URL, c.MISP.Key}
	want := []string{"127.0.0.1:1", "127.0.0.1:2", "/srv/r", "mongodb://m:27017", "https://misp.test", "k3y"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestNoFileAtAllIsValid(t *testing.T) {
	c, err := Load("", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.Listen != "127.0.0.1:8080" || c.GRPC.Listen != "127.0.0.1:9090" || c.DataDir != "./data" || c.Storage.Database != "rampart" {
		t.Errorf("defaults differ from ARCHITECTURE.md: %+v", c)
	}
}

func TestExampleFileEqualsTheDefaults(t *testing.T) {
	data, err := os.ReadFile("../config.yaml.example")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(*c, want) {
		t.Errorf("config.yaml.example and Default() differ:\nexample %+v\ndefault %+v", *c, want)
	}
}

func TestMissingFileIsAnError(t *testing.T) {
	if _, err := Load("testdata/nope.yaml", noEnv); err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("want an error naming the file, got %v", err)
	}
}
