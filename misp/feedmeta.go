package misp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// ErrFeed is wrapped by every problem Feed.Validate reports.
var ErrFeed = errors.New("invalid feed")

// MinRefresh is the shortest refresh interval a feed may ask for.
const MinRefresh = time.Minute

// maxFeedMetadata bounds the number of feeds one metadata file may define.
const maxFeedMetadata = 10_000

// wireFeed is a Feed as MISP writes it, in its feed-metadata files and in
// /feeds/index. Only the fields Rampart uses are read.
type wireFeed struct {
	Feed struct {
		Name         string          `json:"name"`
		Provider     string          `json:"provider"`
		URL          string          `json:"url"`
		SourceFormat string          `json:"source_format"`
		Enabled      flexBool        `json:"enabled"`
		Settings     json.RawMessage `json:"settings"`
		Headers      string          `json:"headers"`
		InputSource  string          `json:"input_source"`
	} `json:"Feed"`
	Tag *struct {
		Name string `json:"name"`
	} `json:"Tag"`
}

// LoadFeedMetadata reads feed definitions in MISP's feed-metadata format
// (app/files/feed-metadata/*.json: [{"Feed": {...}, "Tag": {...}}], settings
// as a JSON string) into Feeds with Origin "feeds_file". The feed's tag, if
// any, becomes its first Tag. The definitions are not validated: call
// Validate on each.
func LoadFeedMetadata(r io.Reader) ([]Feed, error) {
	var wire []wireFeed
	if err := json.NewDecoder(r).Decode(&wire); err != nil {
		return nil, fmt.Errorf("load feed metadata: %w", err)
	}
	if len(wire) > maxFeedMetadata {
		return nil, fmt.Errorf("load feed metadata: %d feeds, limit %d", len(wire), maxFeedMetadata)
	}
	feeds := make([]Feed, 0, len(wire))
	for i, w := range wire {
		settings, err := feedSettings(w.Feed.Settings)
		if err != nil {
			return nil, fmt.Errorf("load feed metadata: [%d] (%.80q): settings: %w", i, w.Feed.Name, err)
		}
		f := Feed{
			Name:         w.Feed.Name,
			Provider:     w.Feed.Provider,
			URL:          w.Feed.URL,
			SourceFormat: w.Feed.SourceFormat,
			Settings:     settings,
			Enabled:      bool(w.Feed.Enabled),
			Headers:      w.Feed.Headers,
			InputSource:  w.Feed.InputSource,
			Origin:       "feeds_file",
		}
		if w.Tag != nil && w.Tag.Name != "" {
			f.Tags = []string{w.Tag.Name}
		}
		feeds = append(feeds, f)
	}
	return feeds, nil
}

// feedSettings decodes MISP's settings, which some exports encode as a JSON
// string more than once (MISP's own default list has a doubly encoded one).
func feedSettings(raw json.RawMessage) (Settings, error) {
	var s Settings
	for range 3 {
		if len(raw) == 0 || raw[0] != '"' {
			break
		}
		var inner string
		if err := json.Unmarshal(raw, &inner); err != nil {
			return s, err
		}
		inner = strings.TrimSpace(inner)
		if inner == "" {
			return s, nil
		}
		raw = json.RawMessage(inner)
	}
	if len(raw) == 0 || string(raw) == "null" {
		return s, nil
	}
	err := json.Unmarshal(raw, &s)
	return s, err
}

// Validate reports every problem of the definition at once, each naming its
// field ("settings.csv.value: ..."), so that a caller can prefix the path of
// the feed ("feeds[2]."). Each error wraps ErrFeed.
func (f Feed) Validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w: %s", field, ErrFeed, fmt.Sprintf(format, args...)))
	}
	if strings.TrimSpace(f.Name) == "" {
		bad("name", "required")
	}
	switch s := strings.TrimSpace(f.URL); {
	case s == "":
		bad("url", "required")
	default:
		switch scheme := urlScheme(s); scheme {
		case "", "file", "http", "https":
		default:
			bad("url", "scheme %q is not http, https or file", scheme)
		}
	}
	switch f.SourceFormat {
	case FormatFreetext, FormatMISP:
	case FormatCSV:
		if _, _, err := f.Settings.CSV.parse(); err != nil {
			if strings.Contains(err.Error(), "delimiter") {
				bad("settings.csv.delimiter", "must be one character, or \\t for a tab")
			} else {
				bad("settings.csv.value", "columns are 1-based numbers separated by commas, such as \"2\" or \"1,3\"")
			}
		}
	default:
		bad("source_format", "%q is not one of %s, %s, %s", f.SourceFormat, FormatFreetext, FormatCSV, FormatMISP)
	}
	if f.Settings.Common.ExcludeRegex != "" {
		if _, err := compileMISPRegex(f.Settings.Common.ExcludeRegex); err != nil {
			bad("settings.common.excluderegex", "%v", err)
		}
	}
	if _, err := ParseHeaders(f.Headers); err != nil {
		bad("headers", "%v", err)
	}
	switch f.InputSource {
	case "", "network", "local":
	default:
		bad("input_source", "%q is not network or local", f.InputSource)
	}
	if f.Weight != nil && (math.IsNaN(*f.Weight) || *f.Weight < 0 || *f.Weight > 1) {
		bad("weight", "%v is not between 0 and 1", *f.Weight)
	}
	if f.Lifetime < 0 {
		bad("lifetime", "must not be negative")
	}
	if f.Refresh < 0 {
		bad("refresh", "must not be negative")
	} else if f.Refresh > 0 && f.Refresh.Std() < MinRefresh {
		// Polling a provider more often gets the client banned, and no list
		// changes that fast.
		bad("refresh", "%s is shorter than %s", f.Refresh, MinRefresh)
	}
	return errs
}
