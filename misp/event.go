package misp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrEvent is returned for a document that is not a MISP event.
var ErrEvent = errors.New("not a MISP event")

// Event is a MISP event as published in a MISP-format feed.
type Event struct {
	UUID string
	Info string
	// ThreatLevel is MISP's threat_level_id: 1 high, 2 medium, 3 low,
	// 4 undefined; 0 when absent or invalid.
	ThreatLevel int
	Tags        []string
	Timestamp   time.Time
	// Attributes are the event's attributes followed by those of its
	// objects. An attribute of a deleted object is marked Deleted.
	Attributes []Attribute
}

// Attribute is one MISP attribute.
type Attribute struct {
	UUID      string
	Type      string
	Value     string
	Category  string
	ToIDs     bool
	Deleted   bool
	Timestamp time.Time
	Tags      []string
}

// ManifestEntry is the summary of one event in a MISP feed's manifest.json.
type ManifestEntry struct {
	Info        string
	Org         string
	Date        string
	ThreatLevel int
	Timestamp   time.Time
	Tags        []string
}

// wire types: MISP writes numbers and flags as strings, numbers or booleans
// depending on version and exporter.
type (
	wireTag struct {
		Name string `json:"name"`
	}
	wireAttribute struct {
		UUID      string    `json:"uuid"`
		Type      string    `json:"type"`
		Value     string    `json:"value"`
		Category  string    `json:"category"`
		ToIDs     flexBool  `json:"to_ids"`
		Deleted   flexBool  `json:"deleted"`
		Timestamp flexInt   `json:"timestamp"`
		Tag       []wireTag `json:"Tag"`
	}
	wireObject struct {
		Deleted   flexBool        `json:"deleted"`
		Attribute []wireAttribute `json:"Attribute"`
	}
	wireEvent struct {
		UUID        string          `json:"uuid"`
		Info        string          `json:"info"`
		ThreatLevel flexInt         `json:"threat_level_id"`
		Timestamp   flexInt         `json:"timestamp"`
		Tag         []wireTag       `json:"Tag"`
		Attribute   []wireAttribute `json:"Attribute"`
		Object      []wireObject    `json:"Object"`
	}
	wireManifestEntry struct {
		Info        string                `json:"info"`
		Date        string                `json:"date"`
		Timestamp   flexInt               `json:"timestamp"`
		ThreatLevel flexInt               `json:"threat_level_id"`
		Orgc        struct{ Name string } `json:"Orgc"`
		Tag         []wireTag             `json:"Tag"`
	}
)

// flexInt reads a JSON number, a string holding one, or null.
type flexInt int64

func (n *flexInt) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("invalid number %s", b)
	}
	*n = flexInt(v)
	return nil
}

// flexBool reads true/false, 0/1, "0"/"1", "true"/"false" or null.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	switch string(bytes.Trim(b, `"`)) {
	case "true", "1":
		*f = true
	case "false", "0", "", "null":
		*f = false
	default:
		return fmt.Errorf("invalid flag %s", b)
	}
	return nil
}

func unixTime(n flexInt) time.Time {
	if n <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(n), 0).UTC()
}

func threatLevel(n flexInt) int {
	if n < 1 || n > 4 {
		return 0
	}
	return int(n)
}

func tagNames(tags []wireTag) []string {
	var out []string
	for _, t := range tags {
		if t.Name != "" {
			out = append(out, t.Name)
		}
	}
	return out
}

func (a wireAttribute) attribute(deleted bool) Attribute {
	return Attribute{
		UUID:      a.UUID,
		Type:      a.Type,
		Value:     a.Value,
		Category:  a.Category,
		ToIDs:     bool(a.ToIDs),
		Deleted:   deleted || bool(a.Deleted),
		Timestamp: unixTime(a.Timestamp),
		Tags:      tagNames(a.Tag),
	}
}

// ParseEvent parses a MISP event file ({"Event": {...}}, as in a MISP feed's
// <uuid>.json, or the bare event object). The reader is read to its end: bound it (the Fetcher does).
func ParseEvent(r io.Reader) (*Event, error) {
	// Some feeds publish the bare event object, without the wrapper.
	var doc struct {
		Event *wireEvent `json:"Event"`
		wireEvent
	}
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("parse event: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("parse event: %w: data after the event", ErrEvent)
	}
	w := doc.Event
	if w == nil {
		if doc.UUID == "" && doc.Attribute == nil && doc.Object == nil {
			return nil, fmt.Errorf("parse event: %w: no \"Event\" object", ErrEvent)
		}
		w = &doc.wireEvent
	}
	ev := &Event{
		UUID:        w.UUID,
		Info:        w.Info,
		ThreatLevel: threatLevel(w.ThreatLevel),
		Tags:        tagNames(w.Tag),
		Timestamp:   unixTime(w.Timestamp),
	}
	n := len(w.Attribute)
	for _, o := range w.Object {
		n += len(o.Attribute)
	}
	ev.Attributes = make([]Attribute, 0, n)
	for _, a := range w.Attribute {
		ev.Attributes = append(ev.Attributes, a.attribute(false))
	}
	for _, o := range w.Object {
		for _, a := range o.Attribute {
			ev.Attributes = append(ev.Attributes, a.attribute(bool(o.Deleted)))
		}
	}
	return ev, nil
}

// ParseManifest parses a MISP feed's manifest.json, a map from event UUID to
// a summary of the event. Keys that are not UUIDs are an error, since they
// name the event files to fetch.
func ParseManifest(r io.Reader) (map[string]ManifestEntry, error) {
	var m map[string]wireManifestEntry
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	out := make(map[string]ManifestEntry, len(m))
	for id, e := range m {
		if !isUUID(id) {
			return nil, fmt.Errorf("parse manifest: %w: key %.40q is not a UUID", ErrEvent, id)
		}
		out[strings.ToLower(id)] = ManifestEntry{
			Info:        e.Info,
			Org:         e.Orgc.Name,
			Date:        e.Date,
			ThreatLevel: threatLevel(e.ThreatLevel),
			Timestamp:   unixTime(e.Timestamp),
			Tags:        tagNames(e.Tag),
		}
	}
	return out, nil
}

// isUUID reports whether s is a UUID in its canonical 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if s[i] != '-' {
				return false
			}
			continue
		}
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

// eventsResult is the union of the address-bearing attributes of events,
// deleted ones left out; other attributes with a value go to Others.
func eventsResult(events []*Event) *Result {
	var c collector
	for _, ev := range events {
		for _, a := range ev.Attributes {
			if a.Deleted {
				continue
			}
			c.lines++
			if p, ok := ParsePrefix(a.Type, a.Value); ok {
				c.prefixes = append(c.prefixes, p)
				continue
			}
			if isAddressType(a.Type) {
				c.bad++
				continue
			}
			if a.Type != "" && a.Value != "" && len(a.Value) <= maxTokenBytes {
				c.addOther(a.Type, a.Value)
			}
		}
	}
	return c.result()
}

// isAddressType reports whether a MISP attribute type carries an address.
func isAddressType(t string) bool {
	switch t {
	case "ip-src", "ip-dst", "ip-src|port", "ip-dst|port", "domain|ip":
		return true
	}
	return false
}
