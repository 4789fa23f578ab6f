package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/rampart-ip/rampart/misp"
)

// maxFileSize bounds a configuration file; a larger one is certainly a mistake.
const maxFileSize = 8 << 20

// Env looks up an environment variable; os.LookupEnv in production, a map in tests.
type Env func(key string) (string, bool)

// Load reads the configuration file at path (an empty path means no file:
// every setting at its default), applies RAMPART_* environment overrides
// and the feeds_file, and validates the result. Every problem is reported
// at once, each naming its key path.
func Load(path string, env Env) (*Config, error) {
	var data []byte
	if path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("load config: %w", err)
		}
		defer f.Close()
		data, err = io.ReadAll(io.LimitReader(f, maxFileSize+1))
		if err != nil {
			return nil, fmt.Errorf("load config %s: %w", path, err)
		}
		if len(data) > maxFileSize {
			return nil, fmt.Errorf("load config %s: file larger than %d bytes", path, maxFileSize)
		}
	}
	cfg, err := Parse(data)
	if err != nil {
		if path != "" {
			return nil, fmt.Errorf("load config %s: %w", path, err)
		}
		return nil, err
	}
	if env == nil {
		env = os.LookupEnv
	}
	envErrs := cfg.applyEnv(env)
	if err := cfg.loadFeedsFile(); err != nil {
		return nil, err
	}
	if err := errors.Join(append(envErrs, cfg.Validate())...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse decodes YAML strictly over the defaults: an unknown key is an error
// naming its path. It does not apply the environment or validate.
func Parse(data []byte) (*Config, error) {
	cfg := Default()
	if len(bytes.TrimSpace(data)) == 0 {
		return &cfg, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if len(root.Content) == 0 {
		return &cfg, nil
	}
	doc := root.Content[0]
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return &cfg, nil
	}
	if doc.Kind != yaml.MappingNode {
		return nil, errors.New("parse config: the top level must be a mapping of settings")
	}
	if errs := unknownKeys(doc, reflect.TypeOf(cfg), ""); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := doc.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	defaultFeedsEnabled(doc, cfg.Feeds)
	return &cfg, nil
}

// unknownKeys walks a mapping node against a struct type and reports every
// key the struct does not have, with its full path and line.
func unknownKeys(n *yaml.Node, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				errs = append(errs, fmt.Errorf("%s: unknown key (line %d)", p, k.Line))
				continue
			}
			// yaml.v3 stops at the first error an UnmarshalYAML returns and
			// drops its position, so durations are checked here, where the
			// key path is known and every bad one can be reported.
			if f.Type == durationType {
				var d Duration
				if err := d.UnmarshalYAML(v); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", p, err))
				}
				continue
			}
			errs = append(errs, unknownKeys(v, f.Type, p)...)
		}
		return errs
	case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
		var errs []error
		for i, item := range n.Content {
			errs = append(errs, unknownKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	}
	return nil
}

var durationType = reflect.TypeFor[Duration]()

func yamlFields(t reflect.Type) map[string]reflect.StructField {
	out := make(map[string]reflect.StructField, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// defaultFeedsEnabled makes a feed written in the config enabled unless it
// says enabled: false; a feed someone bothered to write is meant to run.
func defaultFeedsEnabled(doc *yaml.Node, feeds []misp.Feed) {
	var seq *yaml.Node
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "feeds" {
			seq = doc.Content[i+1]
		}
	}
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return
	}
	for i, item := range seq.Content {
		if i >= len(feeds) || item.Kind != yaml.MappingNode {
			continue
		}
		set := false
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j].Value == "enabled" {
				set = true
			}
		}
		if !set {
			feeds[i].Enabled = true
		}
		feeds[i].Origin = "config"
	}
}

// applyEnv applies the fixed RAMPART_* environment overrides and resolves
// key_env and token_env into the key and token, so that every later user of
// the configuration sees the secret in one place. A key written both inline
// and as key_env is ambiguous and reported, since after resolution the two
// can no longer be told apart.
func (c *Config) applyEnv(env Env) []error {
	var errs []error
	set := func(key string, dst *string) {
		if v, ok := env(key); ok && v != "" {
			*dst = v
		}
	}
	set("RAMPART_HTTP_LISTEN", &c.HTTP.Listen)
	set("RAMPART_GRPC_LISTEN", &c.GRPC.Listen)
	set("RAMPART_DATA_DIR", &c.DataDir)
	set("RAMPART_MONGODB_URI", &c.Storage.MongoDBURI)
	set("RAMPART_MISP_URL", &c.MISP.URL)
	set("RAMPART_MISP_KEY", &c.MISP.Key)
	set("RAMPART_SLACK_TOKEN", &c.Alerts.Slack.Token)
	for i := range c.Auth.APIKeys {
		k := &c.Auth.APIKeys[i]
		if k.KeyEnv != "" && k.Key != "" {
			errs = append(errs, fmt.Errorf("auth.api_keys[%d]: set key or key_env, not both", i))
			continue
		}
		if k.KeyEnv != "" {
			if v, ok := env(k.KeyEnv); ok {
				k.Key = v
			}
		}
	}
	if s := &c.Alerts.Slack; s.TokenEnv != "" {
		if v, ok := env(s.TokenEnv); ok {
			s.Token = v
		}
	}
	return errs
}

// loadFeedsFile appends the feeds of a MISP feed-metadata JSON file.
func (c *Config) loadFeedsFile() error {
	if c.FeedsFile == "" {
		return nil
	}
	f, err := os.Open(c.FeedsFile)
	if err != nil {
		return fmt.Errorf("feeds_file: %w", err)
	}
	defer f.Close()
	feeds, err := misp.LoadFeedMetadata(f)
	if err != nil {
		return fmt.Errorf("feeds_file %s: %w", c.FeedsFile, err)
	}
	if c.Feeds == nil {
		c.Feeds = []misp.Feed{}
	}
	c.Feeds = append(c.Feeds, feeds...)
	return nil
}

// StaticFeeds returns the feeds the configuration defines: the default
// catalog when the feeds key is absent (and no feeds_file is set), else the
// configured list.
func (c *Config) StaticFeeds() []misp.Feed {
	if c.Feeds == nil {
		return misp.DefaultCatalog()
	}
	return c.Feeds
}
