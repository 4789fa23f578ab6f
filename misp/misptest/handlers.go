package misptest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

func str(n int) string     { return strconv.Itoa(n) }
func str64(n int64) string { return strconv.FormatInt(n, 10) }

func (s *Server) serveFeeds(w http.ResponseWriter) {
	s.mu.Lock()
	out := make([]map[string]any, 0, len(s.feedIDs))
	for _, id := range s.feedIDs {
		f := s.feeds[id]
		settings := f.Settings
		if settings == "" {
			settings = `{"csv":{"value":"","delimiter":","},"common":{"excluderegex":""}}`
		}
		out = append(out, map[string]any{"Feed": map[string]any{
			"id": str(id), "name": f.Name, "provider": f.Provider, "url": f.URL,
			"rules":   `{"tags":{"OR":[],"NOT":[]},"orgs":{"OR":[],"NOT":[]}}`,
			"enabled": f.Enabled, "distribution": "3", "sharing_group_id": "0", "tag_id": "0",
			"default": false, "source_format": f.SourceFormat, "fixed_event": true, "delta_merge": false,
			"event_id": "0", "publish": false, "override_ids": false, "settings": settings,
			"input_source": f.InputSource, "delete_local_file": false, "lookup_visible": false,
			"headers": f.Headers, "caching_enabled": false, "force_to_ids": false, "orgc_id": "0",
			"cache_timestamp": false,
		}})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// search is a parsed restSearch filter.
type search struct {
	types, notTypes []string
	tsFrom, tsTo    int64
	tsNone          bool // an unparseable timestamp: matches nothing
	deleted         [2]bool
	toIDs           *bool
	eventID         int
	eventTags       bool
	page, limit     int
}

func (s *Server) serveRestSearch(w http.ResponseWriter, r *http.Request, endless bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request", r.URL.Path)
		return
	}
	var params map[string]json.RawMessage
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &params); err != nil {
			writeError(w, http.StatusMethodNotAllowed, "Invalid JSON input. Make sure that the JSON input is a correctly formatted JSON string. This request has been blocked to avoid an unfiltered request.", r.URL.Path)
			return
		}
	}
	if inner, ok := params["request"]; ok {
		params = nil
		if json.Unmarshal(inner, &params) != nil {
			writeError(w, http.StatusMethodNotAllowed, "Invalid JSON input.", r.URL.Path)
			return
		}
	}
	if len(params) == 0 {
		writeError(w, http.StatusBadRequest, "Either specify the search terms in the url, or POST a json with the filter parameters.", r.URL.Path)
		return
	}
	q := parseSearch(params)
	if endless {
		q.page = 1
	}
	writeJSON(w, http.StatusOK, map[string]any{"response": map[string]any{"Attribute": s.match(q)}})
}

func parseSearch(p map[string]json.RawMessage) search {
	q := search{deleted: [2]bool{true, false}, page: 1}
	if raw, ok := p["type"]; ok {
		var one string
		var list []string
		var ornot struct{ OR, NOT []string }
		switch {
		case json.Unmarshal(raw, &one) == nil:
			q.types = []string{one}
		case json.Unmarshal(raw, &list) == nil:
			q.types = list
		case json.Unmarshal(raw, &ornot) == nil:
			q.types, q.notTypes = ornot.OR, ornot.NOT
		}
	}
	if raw, ok := p["timestamp"]; ok {
		var pair []json.RawMessage
		if json.Unmarshal(raw, &pair) == nil && len(pair) == 2 {
			var ok1, ok2 bool
			q.tsFrom, ok1 = unixValue(pair[0])
			q.tsTo, ok2 = unixValue(pair[1])
			q.tsNone = !ok1 || !ok2
		} else if v, ok := unixValue(raw); ok {
			q.tsFrom = v
		} else {
			q.tsNone = true
		}
	}
	if raw, ok := p["deleted"]; ok {
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) == nil {
			q.deleted = [2]bool{}
			for _, v := range list {
				q.deleted[boolIndex(v)] = true
			}
		} else {
			q.deleted = [2]bool{}
			q.deleted[boolIndex(raw)] = true
		}
	}
	if raw, ok := p["to_ids"]; ok && string(raw) != "null" {
		b := boolIndex(raw) == 1
		q.toIDs = &b
	}
	if raw, ok := p["eventid"]; ok {
		if v, ok := unixValue(raw); ok {
			q.eventID = int(v)
		} else {
			q.eventID = -1
		}
	}
	if raw, ok := p["includeEventTags"]; ok {
		q.eventTags = boolIndex(raw) == 1
	}
	if v, ok := unixValue(p["limit"]); ok {
		q.limit = int(v)
	}
	if v, ok := unixValue(p["page"]); ok && v > 0 {
		q.page = int(v)
	}
	return q
}

// unixValue reads a non-negative integer given as a number or a string of digits.
func unixValue(raw json.RawMessage) (int64, bool) {
	t := strings.Trim(string(raw), `"`)
	if t == "" {
		return 0, false
	}
	v, err := strconv.ParseInt(t, 10, 64)
	return v, err == nil && v >= 0
}

// boolIndex reads a MISP flag: 1 for true/1/"1", else 0.
func boolIndex(raw json.RawMessage) int {
	switch strings.Trim(string(raw), `"`) {
	case "true", "1":
		return 1
	}
	return 0
}

func (s *Server) match(q search) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	if q.tsNone {
		return out
	}
	skip := 0
	if q.limit > 0 {
		skip = (q.page - 1) * q.limit
	}
	for _, a := range s.attrs {
		if len(q.types) > 0 && !contains(q.types, a.Type) || contains(q.notTypes, a.Type) {
			continue
		}
		if a.Timestamp < q.tsFrom || (q.tsTo > 0 && a.Timestamp > q.tsTo) {
			continue
		}
		if !q.deleted[b2i(a.Deleted)] {
			continue
		}
		if q.toIDs != nil && a.ToIDs != *q.toIDs {
			continue
		}
		if q.eventID != 0 && a.eventID != q.eventID {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		out = append(out, s.attrJSON(a, q.eventTags))
		if q.limit > 0 && len(out) == q.limit {
			break
		}
	}
	return out
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func tagJSON(id int, name string, inherited bool) map[string]any {
	t := map[string]any{"id": str(id), "name": name, "colour": "#ffffff", "exportable": true,
		"user_id": "0", "hide_tag": false, "numerical_value": nil, "is_galaxy": false, "is_custom_galaxy": false, "local": 0}
	if inherited {
		t["inherited"] = 1
	}
	return t
}

func (s *Server) attrJSON(a *attribute, eventTags bool) map[string]any {
	ev := s.events[a.eventID]
	m := map[string]any{
		"id": str(a.id), "event_id": str(a.eventID), "object_id": "0", "object_relation": nil,
		"category": a.Category, "type": a.Type, "value": a.Value, "to_ids": a.ToIDs, "uuid": a.UUID,
		"timestamp": str64(a.Timestamp), "distribution": "5", "sharing_group_id": "0", "comment": "",
		"deleted": a.Deleted, "disable_correlation": false, "first_seen": nil, "last_seen": nil,
		// As in MISP, the embedded event has no threat_level_id.
		"Event": map[string]any{"org_id": "1", "distribution": "1", "id": str(ev.id), "info": ev.Info,
			"orgc_id": "1", "uuid": ev.UUID, "publish_timestamp": str64(ev.timestamp)},
	}
	var tags []map[string]any
	for i, t := range a.Tags {
		tags = append(tags, tagJSON(1000+i, t, false))
	}
	if eventTags {
		for i, t := range ev.Tags {
			tags = append(tags, tagJSON(i+1, t, true))
		}
	}
	if len(tags) > 0 {
		m["Tag"] = tags
	}
	return m
}

func (s *Server) serveEvent(w http.ResponseWriter, r *http.Request, id string) {
	s.mu.Lock()
	ev, ok := s.events[atoi(id)]
	if !ok {
		s.mu.Unlock()
		writeError(w, http.StatusNotFound, "Invalid event", r.URL.Path)
		return
	}
	tl := ev.ThreatLevel
	if tl < 1 || tl > 4 {
		tl = 4
	}
	attrs := []map[string]any{}
	for _, a := range s.attrs {
		if a.eventID == ev.id && !a.Deleted {
			m := s.attrJSON(a, false)
			delete(m, "Event")
			attrs = append(attrs, m)
		}
	}
	tags := []map[string]any{}
	for i, t := range ev.Tags {
		tags = append(tags, tagJSON(i+1, t, false))
	}
	published := ev.Published
	out := map[string]any{"Event": map[string]any{
		"id": str(ev.id), "orgc_id": "1", "org_id": "1", "date": "2026-01-01", "threat_level_id": str(tl),
		"info": ev.Info, "published": published, "uuid": ev.UUID, "attribute_count": str(len(attrs)),
		"analysis": "2", "timestamp": str64(ev.timestamp), "distribution": "1", "proposal_email_lock": false,
		"locked": false, "publish_timestamp": str64(ev.timestamp), "sharing_group_id": "0",
		"disable_correlation": false, "extends_uuid": "", "event_creator_email": "admin@admin.test",
		"Org":       map[string]any{"id": "1", "name": "ORGNAME", "uuid": "5e0f3c9a-0000-4000-8000-000000000001", "local": true},
		"Orgc":      map[string]any{"id": "1", "name": "ORGNAME", "uuid": "5e0f3c9a-0000-4000-8000-000000000001", "local": true},
		"Attribute": attrs, "ShadowAttribute": []any{}, "RelatedEvent": []any{}, "Galaxy": []any{},
		"Object": []any{}, "EventReport": []any{}, "Tag": tags,
	}}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}
