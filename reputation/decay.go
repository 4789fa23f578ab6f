package reputation

import (
	"math"
	"time"
)

// decay is MISP's polynomial decay: the share of a listing's weight left
// age after it was last seen, 1 − (age/lifetime)^(1/speed), clamped to
// [0, 1]. MISP's "NIDS Simple" model for addresses uses speed 2, which
// drops fast at first and slowly near the end of the lifetime.
func decay(age, lifetime time.Duration, speed float64) float64 {
	if age <= 0 {
		return 1
	}
	if lifetime <= 0 || age >= lifetime {
		return 0
	}
	x := float64(age) / float64(lifetime)
	var p float64
	switch speed {
	case 1:
		p = x
	case 2:
		p = math.Sqrt(x)
	default:
		p = math.Pow(x, 1/speed)
	}
	return 1 - p
}

// evidenceAge is how long before at a match was last seen, less the grace
// for open listings: a feed confirms its listings only when it is
// refreshed, so an open listing confirmed within grace counts as seen now.
// An ended listing decays from its end, with no grace.
func evidenceAge(m *Match, active bool, at time.Time, grace time.Duration) time.Duration {
	last := m.LastSeen
	if !active && !m.Ended.IsZero() && (last.IsZero() || m.Ended.Before(last)) {
		last = m.Ended
	}
	if last.IsZero() {
		last = m.Since
	}
	age := at.Sub(last)
	if active {
		age -= grace
	}
	if age < 0 {
		return 0
	}
	return age
}
