package reputation

import (
	"fmt"
	"time"

	"github.com/rampart-ip/rampart/config"
)

// Scored is what the model decides about one address: the answer's
// judgement and the fields that explain it.
type Scored struct {
	Judgement
	IsIoC       bool
	IsActive    bool
	Historical  bool
	Description string
	Blacklists  []string
	Type        []string
	Reasons     []Reason
	FirstSeen   time.Time
	LastSeen    time.Time
}

// Model turns evidence into a score. It is immutable and safe for
// concurrent use; the same evidence at the same time gives the same score.
type Model struct {
	cfg config.Scoring
}

// NewModel returns the model for the scoring configuration.
func NewModel(cfg config.Scoring) *Model {
	return &Model{cfg: cfg}
}

// Score judges ev at time at. This first model counts sources: each active
// listing multiplies the remaining safety by (1 - weight), each ended one
// within retention by (1 - weight/4). Unlisted addresses score 100.
func (m *Model) Score(ev *Evidence, at time.Time) Scored {
	var s Scored
	safety := 1.0
	seen := map[string]bool{}
	for i := range ev.Matches {
		mt := &ev.Matches[i]
		if mt.Since.After(at) {
			continue
		}
		w := mt.Source.Weight
		if w <= 0 {
			w = 0.8
		}
		active := mt.Active(at)
		s.IsIoC = true
		if active {
			s.IsActive = true
		} else {
			s.Historical = true
			w /= 4
		}
		if !seen[mt.Source.Name] {
			seen[mt.Source.Name] = true
			s.Blacklists = append(s.Blacklists, mt.Source.Name)
			if c := mt.Source.Category; c != "" {
				s.Type = appendUnique(s.Type, c)
			}
			safety *= 1 - w
			s.Reasons = append(s.Reasons, Reason{Factor: "feed", Detail: mt.Source.Name, Weight: w})
		}
		if s.FirstSeen.IsZero() || mt.Since.Before(s.FirstSeen) {
			s.FirstSeen = mt.Since
		}
		if mt.LastSeen.After(s.LastSeen) {
			s.LastSeen = mt.LastSeen
		}
	}
	s.Score = 100 * safety
	switch {
	case s.IsActive:
		s.Verdict, s.Action = VerdictDangerous, ActionBlock
		s.Description = fmt.Sprintf("listed by %d feeds", len(s.Blacklists))
	case s.Historical:
		s.Verdict, s.Action = VerdictTriage, ActionChallenge
		s.Description = "listed in the past"
	default:
		s.Verdict, s.Action = VerdictNone, ActionAllow
		s.Description = "no evidence of threat"
	}
	return s
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
