package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rampart-ip/rampart/misp"
	"github.com/rampart-ip/rampart/store"
)

// eventState is what the poller remembers of one event: its source name
// and which attribute lists which prefix, so that a prefix listed by two
// attributes ends only when both are gone.
type eventState struct {
	Name        string            `json:"name"`
	UUID        string            `json:"uuid,omitempty"`
	Info        string            `json:"info,omitempty"`
	ThreatLevel int               `json:"threat_level,omitempty"`
	Published   int64             `json:"published,omitempty"` // publish_timestamp when ThreatLevel was read
	Tags        []string          `json:"tags,omitempty"`
	LastTS      int64             `json:"last_ts,omitempty"` // newest live attribute timestamp
	Attrs       map[string]string `json:"attrs"`             // attribute uuid → prefix
}

func (s *eventState) prefixes() map[netip.Prefix]bool {
	out := make(map[netip.Prefix]bool, len(s.Attrs))
	for _, v := range s.Attrs {
		if p, err := netip.ParsePrefix(v); err == nil {
			out[p] = true
		}
	}
	return out
}

// applyBatch applies a batch of attributes event by event, in the order
// each event first appears. In full mode each event's state is replaced
// by exactly the batch's attributes.
func (m *MISP) applyBatch(ctx context.Context, recs []misp.AttributeRecord, full bool, rep *AttributeReport) (bool, error) {
	var order []string
	byEvent := map[string][]misp.AttributeRecord{}
	for _, a := range recs {
		if a.EventID == "" {
			rep.Malformed++
			continue
		}
		if _, ok := byEvent[a.EventID]; !ok {
			order = append(order, a.EventID)
		}
		byEvent[a.EventID] = append(byEvent[a.EventID], a)
	}
	changed := false
	for _, id := range order {
		c, err := m.applyEvent(ctx, id, byEvent[id], full, rep)
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

// applyEvent folds one event's attributes into its stored state and
// writes the change of its listings: the listings and source first, the
// state after, so that a crash between them is repaired by the repeated
// pull (Apply ignores prefixes already in the wanted state).
func (m *MISP) applyEvent(ctx context.Context, id string, recs []misp.AttributeRecord, full bool, rep *AttributeReport) (bool, error) {
	key := mispEventKey + id
	st := &eventState{}
	isNew := false
	if raw, err := m.st.Get(ctx, key); errors.Is(err, store.ErrNotFound) {
		isNew = true
	} else if err != nil {
		return false, fmt.Errorf("event %s: %w", id, err)
	} else if err := json.Unmarshal([]byte(raw), st); err != nil {
		m.log.Warn("damaged MISP event state, rebuilt from this pull", "event", id, "err", err)
		isNew = st.Name == ""
	}
	if st.Attrs == nil {
		st.Attrs = map[string]string{}
	}
	before := st.prefixes()
	oldAttrs := maps.Clone(st.Attrs)
	oldMeta := [3]string{strconv.Itoa(st.ThreatLevel), strings.Join(st.Tags, ","), st.UUID}
	if full {
		clear(st.Attrs)
	}
	types := m.cfg.Attributes.Types
	var ev misp.EventRecord
	var tags []string
	hasTags := false
	for _, a := range recs {
		if a.Event.ID != "" {
			ev = a.Event
		}
		k := a.UUID
		if k == "" {
			k = "id:" + a.ID
		}
		p, ok := misp.ParsePrefix(a.Type, a.Value)
		live := !a.Deleted && (!m.cfg.Attributes.ToIDsOnly || a.ToIDs) && slices.Contains(types, a.Type)
		if live && !ok {
			rep.Malformed++
		}
		if live && ok {
			st.Attrs[k] = p.String()
			st.LastTS = max(st.LastTS, a.Timestamp)
		} else {
			delete(st.Attrs, k)
		}
		var inherited []string
		for _, t := range a.Tags {
			if t.Inherited {
				inherited = append(inherited, t.Name)
			}
		}
		if len(inherited) > 0 {
			tags, hasTags = inherited, true
		}
	}
	if isNew && len(st.Attrs) == 0 {
		return false, nil // nothing of this event is listed, nor was
	}
	if ev.UUID != "" {
		st.UUID = ev.UUID
	}
	if isNew || (ev.PublishTimestamp != 0 && ev.PublishTimestamp != st.Published) {
		m.refreshEvent(ctx, id, ev, st)
	}
	if hasTags {
		slices.Sort(tags)
		st.Tags = slices.Compact(tags)
	}
	if isNew {
		info := ev.Info
		if info == "" {
			info = st.Info
		}
		st.Info = info
		name, err := m.sourceName(ctx, id, info)
		if err != nil {
			return false, err
		}
		st.Name = name
	}
	after := st.prefixes()
	var ch store.Change
	for p := range after {
		if !before[p] {
			ch.Added = append(ch.Added, p)
		}
	}
	for p := range before {
		if !after[p] {
			ch.Removed = append(ch.Removed, p)
		}
	}
	newMeta := [3]string{strconv.Itoa(st.ThreatLevel), strings.Join(st.Tags, ","), st.UUID}
	if !isNew && ch.Empty() && maps.Equal(oldAttrs, st.Attrs) && oldMeta == newMeta {
		return false, nil
	}
	slices.SortFunc(ch.Added, comparePrefixes)
	slices.SortFunc(ch.Removed, comparePrefixes)
	src := m.source(id, st, len(after))
	err := m.eng.ApplySource(ctx, src, ch)
	if errors.Is(err, ErrNameTaken) && isNew {
		st.Name = disambiguate(st.Info, id)
		src.Name = st.Name
		err = m.eng.ApplySource(ctx, src, ch)
	}
	if err != nil {
		return false, fmt.Errorf("event %s: %w", id, err)
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return false, fmt.Errorf("event %s: %w", id, err)
	}
	if err := m.st.Put(ctx, key, string(raw)); err != nil {
		return false, fmt.Errorf("event %s: save state: %w", id, err)
	}
	rep.Events++
	rep.Added += len(ch.Added)
	rep.Removed += len(ch.Removed)
	return true, nil
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// refreshEvent reads the event's threat level and tags, which restSearch
// does not embed, when the event is new or was published again. A failure
// leaves them as they were (the next publish, or pull of a new event, tries
// again); it is not worth failing the pull for.
func (m *MISP) refreshEvent(ctx context.Context, id string, ev misp.EventRecord, st *eventState) {
	if ev.ThreatLevel != 0 {
		st.ThreatLevel = ev.ThreatLevel
		st.Published = ev.PublishTimestamp
		return
	}
	m.client.ForgetEvent(id)
	full, err := m.client.Event(ctx, id)
	if err != nil {
		m.log.Warn("read MISP event metadata", "event", id, "err", err)
		return
	}
	st.ThreatLevel = full.ThreatLevel
	st.Published = ev.PublishTimestamp
	if st.Published == 0 {
		st.Published = full.PublishTimestamp
	}
	if len(full.Tags) > 0 {
		st.Tags = slices.Clone(full.Tags)
	}
	if st.Info == "" {
		st.Info = full.Info
	}
	if st.UUID == "" {
		st.UUID = full.UUID
	}
}

func (m *MISP) source(id string, st *eventState, entries int) store.Source {
	meta := map[string]string{"event_id": id, "origin": OriginMISP}
	if st.UUID != "" {
		meta["event_uuid"] = st.UUID
	}
	if st.ThreatLevel != 0 {
		meta["threat_level"] = strconv.Itoa(st.ThreatLevel)
	}
	if len(st.Tags) > 0 {
		meta["tags"] = strings.Join(st.Tags, ",")
	}
	if st.Info != "" {
		meta["info"] = st.Info
	}
	src := store.Source{Name: st.Name, Kind: store.KindMISPEvent, Entries: entries, Meta: meta}
	// A MISP event confirms its listings when an analyst last changed one
	// of its attributes: that is what MISP's decay models count from.
	if st.LastTS > 0 {
		src.LastSuccess = time.Unix(st.LastTS, 0).UTC()
	}
	src.LastAttempt = m.eng.now()
	return src
}

// sourceName picks a new event's source name: its info, or, when a feed
// or another event has that name, "info (event id)". The name stays with
// the event for good, so that its history does not split.
func (m *MISP) sourceName(ctx context.Context, id, info string) (string, error) {
	base := cleanInfo(info)
	if base == "" {
		return "MISP event " + id, nil
	}
	for _, f := range m.eng.Feeds() {
		if f.Name == base {
			return disambiguate(info, id), nil
		}
	}
	s, err := m.st.Source(ctx, base)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return base, nil
	case err != nil:
		return "", fmt.Errorf("event %s: %w", id, err)
	case s.Kind == store.KindMISPEvent && s.Meta["event_id"] == id:
		return base, nil
	}
	return disambiguate(info, id), nil
}

func disambiguate(info, id string) string {
	if base := cleanInfo(info); base != "" {
		return base + " (event " + id + ")"
	}
	return "MISP event " + id
}

// cleanInfo makes an event's info usable as a name: one line, single
// spaces, bounded length.
func cleanInfo(info string) string {
	s := strings.Join(strings.Fields(info), " ")
	if len(s) > maxInfoLen {
		s = s[:maxInfoLen]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
