package misp

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Source formats that Rampart can parse, with MISP's names.
const (
	FormatFreetext = "freetext"
	FormatCSV      = "csv"
	FormatMISP     = "misp"
)

// Feed is one feed definition. Its field names are MISP's Feed field names,
// so a feed exported from MISP (or MISP's default feed list) carries over;
// Rampart's own fields (weight, lifetime, refresh, tags, category) sit beside
// them and are ignored by MISP.
type Feed struct {
	Name         string   `yaml:"name" json:"name"`
	Provider     string   `yaml:"provider" json:"provider"`
	URL          string   `yaml:"url" json:"url"`
	SourceFormat string   `yaml:"source_format" json:"source_format"`
	Settings     Settings `yaml:"settings" json:"settings"`
	Enabled      bool     `yaml:"enabled" json:"enabled"`
	// Headers holds extra request headers, one "Name: value" per line, as in MISP.
	Headers string `yaml:"headers" json:"headers,omitempty"`
	// InputSource is "network" or "local", as in MISP.
	InputSource string `yaml:"input_source" json:"input_source,omitempty"`

	// Weight is how much a listing by this feed counts, 0 to 1. Nil means the
	// scoring's default for the feed's provider and category.
	Weight *float64 `yaml:"weight" json:"weight,omitempty"`
	// Lifetime is how long a listing stays strong after it was last seen.
	// Zero means the scoring's default.
	Lifetime Duration `yaml:"lifetime" json:"lifetime,omitempty"`
	// Refresh overrides sync.interval for this feed. Zero means the global interval.
	Refresh Duration `yaml:"refresh" json:"refresh,omitempty"`
	// Category says what the feed lists (for example "bruteforce", "botnet",
	// "tor", "spam"); it is reported in the answer's type field.
	Category string `yaml:"category" json:"category,omitempty"`
	// Tags are free-form labels, reported with the feed and weighed by scoring rules.
	Tags []string `yaml:"tags" json:"tags,omitempty"`
	// Origin says where the definition came from: "config", "catalog",
	// "feeds_file" or "misp". It is set by Rampart, never read from input.
	Origin string `yaml:"-" json:"origin,omitempty"`
}

// Settings is MISP's feed settings object. MISP stores it as a JSON string
// inside the Feed; UnmarshalJSON accepts both the string and the object.
type Settings struct {
	CSV    CSVSettings    `yaml:"csv" json:"csv"`
	Common CommonSettings `yaml:"common" json:"common"`
}

// CSVSettings are MISP's csv feed settings: 1-based value columns separated
// by commas, and a delimiter where the literal `\t` means a tab.
type CSVSettings struct {
	Value     string `yaml:"value" json:"value"`
	Delimiter string `yaml:"delimiter" json:"delimiter"`
}

// CommonSettings are MISP's common feed settings.
type CommonSettings struct {
	ExcludeRegex string `yaml:"excluderegex" json:"excluderegex"`
}

// UnmarshalJSON accepts the settings either as an object or as a JSON string
// holding the object, which is how MISP stores and exports them.
func (s *Settings) UnmarshalJSON(b []byte) error {
	type plain Settings
	if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		if strings.TrimSpace(str) == "" {
			*s = Settings{}
			return nil
		}
		b = []byte(str)
	}
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("feed settings: %w", err)
	}
	*s = Settings(p)
	return nil
}

// Duration is a time.Duration written in Go syntax ("90s", "5m", "24h") in
// YAML and JSON.
type Duration time.Duration

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats the duration in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses Go duration syntax.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use Go syntax such as 90s, 5m, 24h)", string(b))
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML requires Go duration syntax, so that a bare number (which
// would otherwise be read as nanoseconds) is an error, not a surprise.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be a string such as 90s, 5m or 24h", n.Line)
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		if n.Value == "0" {
			*d = 0
			return nil
		}
		return fmt.Errorf("line %d: duration %s has no unit (write 90s, 5m, 24h)", n.Line, n.Value)
	}
	return d.UnmarshalText([]byte(n.Value))
}
