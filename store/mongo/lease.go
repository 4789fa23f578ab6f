package mongo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rampart-ip/rampart/store"
)

// A lease is one kv document under store.LeaseKeyPrefix + name whose value
// is "<expiry in Unix milliseconds> <holder>"; the generation is the kv
// document store.GenerationKey, in decimal. Both change by compare and
// swap: an insert that fails on a taken _id, or an update or delete whose
// filter includes the value read before. MongoDB applies each
// single-document write atomically, so two replicas racing for an expired
// lease cannot both win, and neither needs a transaction. (FerretDB, the
// test server, runs an update as a read and then a write without a
// transaction, so there two racing updates can both match; racing inserts
// are safe on both.)

const (
	// casAttempts bounds the compare-and-swap retries of one call; each
	// retry means another writer changed the document meanwhile.
	casAttempts = 50
)

// errContended is returned when every compare-and-swap attempt lost.
var errContended = errors.New("document changed by others on every attempt")

// read returns the value under key and whether it exists.
func (s *Store) read(ctx context.Context, key string) (string, bool, error) {
	var d kvDoc
	err := s.kv.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return d.Value, true, nil
}

// swap writes next under key if the key still holds old (or, when existed
// is false, still does not exist), and reports whether it did.
func (s *Store) swap(ctx context.Context, key, old string, existed bool, next string) (bool, error) {
	if !existed {
		_, err := s.kv.InsertOne(ctx, kvDoc{Key: key, Value: next})
		if mongo.IsDuplicateKeyError(err) {
			return false, nil
		}
		return err == nil, err
	}
	res, err := s.kv.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "value", Value: old}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "value", Value: next}}}})
	if err != nil {
		return false, err
	}
	return res.MatchedCount == 1, nil
}

// TryLease acquires or renews the lease name for holder until now+ttl.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (bool, error) {
	op := fmt.Sprintf("try lease %q", name)
	if err := store.CheckLease(name, holder, ttl); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	key := store.LeaseKeyPrefix + name
	for range casAttempts {
		v, existed, err := s.read(ctx, key)
		if err != nil {
			return false, fail(ctx, op, err)
		}
		if existed {
			if expires, cur := store.ParseLease(v); cur != holder && now.Before(expires) {
				return false, nil
			}
		}
		ok, err := s.swap(ctx, key, v, existed, store.FormatLease(now.Add(ttl), holder))
		if err != nil {
			return false, fail(ctx, op, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, fmt.Errorf("%s: %w", op, errContended)
}

// ReleaseLease ends holder's lease name, if holder holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	op := fmt.Sprintf("release lease %q", name)
	if name == "" || holder == "" {
		return fmt.Errorf("%s: empty name or holder", op)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	key := store.LeaseKeyPrefix + name
	v, existed, err := s.read(ctx, key)
	if err != nil {
		return fail(ctx, op, err)
	}
	if _, cur := store.ParseLease(v); !existed || cur != holder {
		return nil
	}
	// The filter on the value read keeps a lease taken over meanwhile.
	if _, err := s.kv.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "value", Value: v}}); err != nil {
		return fail(ctx, op, err)
	}
	return nil
}

// BumpGeneration increments the sync generation and returns it.
func (s *Store) BumpGeneration(ctx context.Context) (int64, error) {
	const op = "bump generation"
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	for range casAttempts {
		v, existed, err := s.read(ctx, store.GenerationKey)
		if err != nil {
			return 0, fail(ctx, op, err)
		}
		var gen int64
		if existed {
			if gen, err = strconv.ParseInt(v, 10, 64); err != nil {
				return 0, fmt.Errorf("%s: stored %q: %w", op, v, err)
			}
		}
		gen++
		ok, err := s.swap(ctx, store.GenerationKey, v, existed, strconv.FormatInt(gen, 10))
		if err != nil {
			return 0, fail(ctx, op, err)
		}
		if ok {
			return gen, nil
		}
	}
	return 0, fmt.Errorf("%s: %w", op, errContended)
}

// Generation returns the sync generation, 0 until the first bump.
func (s *Store) Generation(ctx context.Context) (int64, error) {
	const op = "read generation"
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	v, existed, err := s.read(ctx, store.GenerationKey)
	if err != nil {
		return 0, fail(ctx, op, err)
	}
	if !existed {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: stored %q: %w", op, v, err)
	}
	return n, nil
}
