package mongo

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rampart-ip/rampart/store"
)

const (
	// writeBatch is how many listings one lookup, one history insert and
	// one delete (a single DeleteMany statement) cover. Deletes stay far
	// below the ~32k matches at which FerretDB fails them; the store issues
	// no updates, whose limit there is 100 documents per command. FerretDB
	// scans the collection for every $in, so few large batches beat many
	// small ones; MongoDB serves them from the _id index either way.
	writeBatch = 1000
	// insertBatch is the number of new listings sent per insert command;
	// inserts match nothing, so they are not bound by writeBatch.
	insertBatch = 1000
	// purgeScan is how many expired episode ids PurgeEpisodes reads before
	// deleting them, bounding its memory; a multiple of writeBatch.
	purgeScan = 10 * writeBatch
	// readBatch is the cursor batch size for streaming reads.
	readBatch = 1000
	// duplicateKey is MongoDB's error code for a duplicate _id.
	duplicateKey = 11000
)

// indicatorDoc is a current listing.
type indicatorDoc struct {
	ID     string    `bson:"_id"`
	Source string    `bson:"source"`
	Prefix string    `bson:"prefix"`
	Since  time.Time `bson:"since"`
}

// historyDoc is an ended episode. Its _id is derived from the episode, so
// that recording the same ending twice (a repeated Apply) stores it once.
type historyDoc struct {
	ID      string    `bson:"_id"`
	Source  string    `bson:"source"`
	Prefix  string    `bson:"prefix"`
	Started time.Time `bson:"started"`
	Ended   time.Time `bson:"ended"`
}

// indicatorID is the _id of a listing. Prefixes never contain "|", so the
// last "|" separates a source name that does.
func indicatorID(source, prefix string) string { return source + "|" + prefix }

func historyID(source, prefix string, started time.Time) string {
	return source + "|" + prefix + "|" + strconv.FormatInt(started.UnixMilli(), 10)
}

// prefixStrings returns the canonical text of each masked prefix, rejecting
// invalid ones so that Apply fails before it writes anything.
func prefixStrings(ps []netip.Prefix) ([]string, error) {
	out := make([]string, len(ps))
	for i, p := range ps {
		if !p.IsValid() {
			return nil, fmt.Errorf("prefix %d (%s): invalid", i, p)
		}
		out[i] = p.Masked().String()
	}
	return out, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("corrupt stored prefix: %w", err)
	}
	return p, nil
}

// onlyDuplicates reports whether err is a bulk write failure made only of
// duplicate-key errors: an unordered insert of documents that exist already.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != duplicateKey {
			return false
		}
	}
	return true
}

// insertNew inserts docs unordered, ignoring those whose _id exists.
func insertNew[T any](ctx context.Context, coll *mongo.Collection, docs []T) error {
	if len(docs) == 0 {
		return nil
	}
	_, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err != nil && !onlyDuplicates(err) {
		return err
	}
	return nil
}

// Apply writes one source's change at time now. Without transactions it
// is not atomic; it is ordered so that repeating the same change after a
// failure part-way completes it (see the package documentation). A prefix
// in both Added and Removed ends its episode and opens a new one.
func (s *Store) Apply(ctx context.Context, source string, ch store.Change, now time.Time) error {
	if source == "" {
		return errors.New("apply: empty source name")
	}
	added, err := prefixStrings(ch.Added)
	if err != nil {
		return fmt.Errorf("apply to %q: added %w", source, err)
	}
	removed, err := prefixStrings(ch.Removed)
	if err != nil {
		return fmt.Errorf("apply to %q: removed %w", source, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("apply to %q: %w", source, err)
	}
	for start := 0; start < len(removed); start += writeBatch {
		if err := s.end(ctx, source, removed[start:min(start+writeBatch, len(removed))], now); err != nil {
			return fail(ctx, fmt.Sprintf("apply to %q: end listings", source), err)
		}
	}
	docs := make([]indicatorDoc, 0, min(len(added), insertBatch))
	for start := 0; start < len(added); start += insertBatch {
		docs = docs[:0]
		for _, p := range added[start:min(start+insertBatch, len(added))] {
			docs = append(docs, indicatorDoc{ID: indicatorID(source, p), Source: source, Prefix: p, Since: now})
		}
		if err := insertNew(ctx, s.indicators, docs); err != nil {
			return fail(ctx, fmt.Sprintf("apply to %q: add listings", source), err)
		}
	}
	return nil
}

// end moves up to writeBatch listings of source to history: it records
// their episodes, then deletes them.
func (s *Store) end(ctx context.Context, source string, prefixes []string, now time.Time) error {
	ids := make([]string, len(prefixes))
	for i, p := range prefixes {
		ids[i] = indicatorID(source, p)
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}
	cur, err := s.indicators.Find(ctx, filter)
	if err != nil {
		return fmt.Errorf("look up listings: %w", err)
	}
	var listed []indicatorDoc
	if err := cur.All(ctx, &listed); err != nil {
		return fmt.Errorf("look up listings: %w", err)
	}
	if len(listed) == 0 {
		return nil
	}
	eps := make([]historyDoc, len(listed))
	for i, d := range listed {
		eps[i] = historyDoc{ID: historyID(d.Source, d.Prefix, d.Since), Source: d.Source, Prefix: d.Prefix,
			Started: d.Since, Ended: now}
	}
	if err := insertNew(ctx, s.history, eps); err != nil {
		return fmt.Errorf("record episodes: %w", err)
	}
	if _, err := s.indicators.DeleteMany(ctx, filter); err != nil {
		return fmt.Errorf("delete listings: %w", err)
	}
	return nil
}

// SourceListings returns the prefixes that source lists now.
func (s *Store) SourceListings(ctx context.Context, source string) ([]netip.Prefix, error) {
	op := fmt.Sprintf("listings of %q", source)
	var out []netip.Prefix
	err := stream(ctx, s.indicators, bson.D{{Key: "source", Value: source}}, func(d *indicatorDoc) error {
		p, err := parsePrefix(d.Prefix)
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	}, "prefix")
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return out, nil
}

// Listings calls fn for every current listing of every source.
func (s *Store) Listings(ctx context.Context, fn func(store.Listing) error) error {
	var fnErr error
	err := stream(ctx, s.indicators, bson.D{}, func(d *indicatorDoc) error {
		p, err := parsePrefix(d.Prefix)
		if err != nil {
			return err
		}
		if err := fn(store.Listing{Source: d.Source, Prefix: p, Since: d.Since.UTC()}); err != nil {
			fnErr = err
			return err
		}
		return nil
	}, "source", "prefix", "since")
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fail(ctx, "stream listings", err)
	}
	return nil
}

// Episodes calls fn for every ended episode with Ended >= since.
func (s *Store) Episodes(ctx context.Context, since time.Time, fn func(store.Episode) error) error {
	var fnErr error
	filter := bson.D{{Key: "ended", Value: bson.D{{Key: "$gte", Value: since}}}}
	err := stream(ctx, s.history, filter, func(d *historyDoc) error {
		p, err := parsePrefix(d.Prefix)
		if err != nil {
			return err
		}
		e := store.Episode{Source: d.Source, Prefix: p, Started: d.Started.UTC(), Ended: d.Ended.UTC()}
		if err := fn(e); err != nil {
			fnErr = err
			return err
		}
		return nil
	}, "source", "prefix", "started", "ended")
	if fnErr != nil {
		return fnErr
	}
	if err != nil {
		return fail(ctx, "stream episodes", err)
	}
	return nil
}

// stream decodes every document of coll matching filter into one reused
// T and calls fn with it, projecting the named fields.
func stream[T any](ctx context.Context, coll *mongo.Collection, filter bson.D, fn func(*T) error, fields ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	proj := bson.D{}
	for _, f := range fields {
		proj = append(proj, bson.E{Key: f, Value: 1})
	}
	opts := options.Find().SetBatchSize(readBatch).SetProjection(proj)
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return err
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		var d T
		if err := cur.Decode(&d); err != nil {
			return err
		}
		if err := fn(&d); err != nil {
			return err
		}
	}
	return cur.Err()
}

// PurgeEpisodes deletes ended episodes with Ended < before, in bounded
// batches.
func (s *Store) PurgeEpisodes(ctx context.Context, before time.Time) (int64, error) {
	filter := bson.D{{Key: "ended", Value: bson.D{{Key: "$lt", Value: before}}}}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("purge episodes: %w", err)
		}
		opts := options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}).SetLimit(purgeScan).SetBatchSize(readBatch)
		cur, err := s.history.Find(ctx, filter, opts)
		if err != nil {
			return total, fail(ctx, "purge episodes", err)
		}
		var docs []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return total, fail(ctx, "purge episodes", err)
		}
		var deleted int64
		for start := 0; start < len(docs); start += writeBatch {
			ids := make([]string, 0, writeBatch)
			for _, d := range docs[start:min(start+writeBatch, len(docs))] {
				ids = append(ids, d.ID)
			}
			res, err := s.history.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
			if err != nil {
				return total, fail(ctx, "purge episodes", err)
			}
			deleted += res.DeletedCount
		}
		total += deleted
		// A short scan was the last; a round that deleted nothing means
		// another writer is purging the same episodes.
		if len(docs) < purgeScan || deleted == 0 {
			return total, nil
		}
	}
}
