package misp

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// FeedRecord is one feed as MISP's /feeds/index lists it. Settings is
// MISP's settings JSON string as stored.
type FeedRecord struct {
	ID           string
	Name         string
	Provider     string
	URL          string
	SourceFormat string
	Enabled      bool
	InputSource  string
	Settings     string
	Headers      string
}

// Feed converts the record into a feed definition with Origin "misp".
func (r FeedRecord) Feed() (Feed, error) {
	f := Feed{
		Name: r.Name, Provider: r.Provider, URL: r.URL, SourceFormat: r.SourceFormat,
		Enabled: r.Enabled, Headers: r.Headers, InputSource: r.InputSource, Origin: "misp",
	}
	if s := strings.TrimSpace(r.Settings); s != "" && s != "null" {
		if err := json.Unmarshal([]byte(s), &f.Settings); err != nil {
			return f, fmt.Errorf("feed %q settings: %w", r.Name, err)
		}
	}
	return f, nil
}

// AttributeQuery is one page of an /attributes/restSearch.
type AttributeQuery struct {
	Types []string
	// Timestamp, when positive, matches attributes changed at or after it
	// (unix seconds; MISP's Attribute.timestamp >= filter).
	Timestamp int64
	// Deleted includes soft-deleted attributes (MISP's deleted: [0, 1]).
	Deleted bool
	// ToIDs matches only attributes flagged for detection.
	ToIDs bool
	// IncludeEventTags adds the event's tags to each attribute's Tag list.
	IncludeEventTags bool
	// EventID, when set, restricts the search to one event.
	EventID string
	// Page is 1-based; Limit is the page size (required: without it MISP
	// returns everything at once).
	Page, Limit int
}

// AttributeRecord is one attribute of an /attributes/restSearch answer.
type AttributeRecord struct {
	ID        string
	EventID   string
	UUID      string
	Type      string
	Value     string
	Category  string
	ToIDs     bool
	Deleted   bool
	Timestamp int64
	// Event is the attribute's event as restSearch embeds it: id, uuid
	// and info; ThreatLevel only when MISP includes it (it usually does
	// not: see (*Client).Event).
	Event EventRecord
	Tags  []TagRecord
}

// TagRecord is one tag; Inherited marks a tag of the attribute's event.
type TagRecord struct {
	Name      string
	Inherited bool
}

// EventRecord is an event's metadata.
type EventRecord struct {
	ID               string
	UUID             string
	Info             string
	ThreatLevel      int // 1 high .. 4 undefined; 0 when not given
	Timestamp        int64
	PublishTimestamp int64
	Published        bool
	Tags             []string
}

// wire shapes. MISP writes ids and timestamps as strings, flags as
// booleans; other versions and stand-ins use numbers, so both are read.
type (
	flexString  string
	wireFeedRec struct {
		ID           flexString      `json:"id"`
		Name         string          `json:"name"`
		Provider     string          `json:"provider"`
		URL          string          `json:"url"`
		SourceFormat string          `json:"source_format"`
		Enabled      flexBool        `json:"enabled"`
		InputSource  string          `json:"input_source"`
		Settings     json.RawMessage `json:"settings"`
		Headers      *string         `json:"headers"`
	}
	wireTagRec struct {
		Name      string   `json:"name"`
		Inherited flexBool `json:"inherited"`
	}
	wireEventRec struct {
		ID               flexString   `json:"id"`
		UUID             string       `json:"uuid"`
		Info             string       `json:"info"`
		ThreatLevel      flexInt      `json:"threat_level_id"`
		Timestamp        flexInt      `json:"timestamp"`
		PublishTimestamp flexInt      `json:"publish_timestamp"`
		Published        flexBool     `json:"published"`
		Tag              []wireTagRec `json:"Tag"`
	}
	wireAttrRec struct {
		ID        flexString   `json:"id"`
		EventID   flexString   `json:"event_id"`
		UUID      string       `json:"uuid"`
		Type      string       `json:"type"`
		Value     string       `json:"value"`
		Category  string       `json:"category"`
		ToIDs     flexBool     `json:"to_ids"`
		Deleted   flexBool     `json:"deleted"`
		Timestamp flexInt      `json:"timestamp"`
		Event     wireEventRec `json:"Event"`
		Tag       []wireTagRec `json:"Tag"`
	}
)

// UnmarshalJSON reads a string, a number or null.
func (s *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	if _, err := strconv.ParseFloat(string(b), 64); err != nil {
		return fmt.Errorf("invalid id %s", b)
	}
	*s = flexString(b)
	return nil
}

func (e wireEventRec) record() EventRecord {
	r := EventRecord{
		ID: string(e.ID), UUID: e.UUID, Info: e.Info, ThreatLevel: threatLevel(e.ThreatLevel),
		Timestamp: int64(e.Timestamp), PublishTimestamp: int64(e.PublishTimestamp), Published: bool(e.Published),
	}
	for _, t := range e.Tag {
		if t.Name != "" {
			r.Tags = append(r.Tags, t.Name)
		}
	}
	return r
}
