package mongo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rampart-ip/rampart/store"
)

// Collection names.
const (
	feedsCollection      = "feeds"
	indicatorsCollection = "indicators"
	historyCollection    = "history"
	kvCollection         = "kv"
)

// Store is the MongoDB implementation of store.Store. It is safe for
// concurrent use.
type Store struct {
	client     *mongo.Client
	feeds      *mongo.Collection
	indicators *mongo.Collection
	history    *mongo.Collection
	kv         *mongo.Collection
	logger     *slog.Logger
}

var _ store.Store = (*Store)(nil)

// Open connects to the MongoDB deployment at uri, checks that it answers,
// and creates the indexes the store uses in database.
func Open(ctx context.Context, uri, database string, logger *slog.Logger) (*Store, error) {
	if database == "" {
		return nil, errors.New("open mongo store: empty database name")
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		// The driver's URI errors name the offending option or host, never
		// the password, so err is safe to return.
		return nil, fmt.Errorf("open mongo store: %w", err)
	}
	db := client.Database(database)
	s := &Store{
		client:     client,
		feeds:      db.Collection(feedsCollection),
		indicators: db.Collection(indicatorsCollection),
		history:    db.Collection(historyCollection),
		kv:         db.Collection(kvCollection),
		logger:     logger.With("component", "store/mongo"),
	}
	if err := s.init(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("open mongo store: %w", err), client.Disconnect(context.WithoutCancel(ctx)))
	}
	return s, nil
}

func (s *Store) init(ctx context.Context) error {
	if err := s.client.Ping(ctx, nil); err != nil {
		return fail(ctx, "ping", err)
	}
	indexes := []struct {
		coll *mongo.Collection
		keys bson.D
	}{
		{s.indicators, bson.D{{Key: "source", Value: 1}}},
		{s.history, bson.D{{Key: "source", Value: 1}}},
		{s.history, bson.D{{Key: "ended", Value: 1}}},
	}
	for _, ix := range indexes {
		if _, err := ix.coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: ix.keys}); err != nil {
			return fail(ctx, "create index on "+ix.coll.Name(), err)
		}
	}
	return nil
}

// Close disconnects from the deployment.
func (s *Store) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("close mongo store: %w", err)
	}
	return nil
}

// fail wraps err with the operation's name, and with ctx's error when the
// context ended: the driver does not always wrap it, and callers check for
// it with errors.Is.
func fail(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%s: %w", op, errors.Join(cerr, err))
	}
	return fmt.Errorf("%s: %w", op, err)
}

// feedDoc is a document in the feeds collection.
type feedDoc struct {
	Name         string            `bson:"_id"`
	Kind         string            `bson:"kind"`
	ETag         string            `bson:"etag"`
	LastModified string            `bson:"last_modified"`
	ContentHash  string            `bson:"content_hash"`
	LastAttempt  time.Time         `bson:"last_attempt"`
	LastSuccess  time.Time         `bson:"last_success"`
	LastError    string            `bson:"last_error"`
	Entries      int64             `bson:"entries"`
	Meta         map[string]string `bson:"meta,omitempty"`
}

func (d feedDoc) source() store.Source {
	return store.Source{
		Name: d.Name, Kind: d.Kind, ETag: d.ETag, LastModified: d.LastModified, ContentHash: d.ContentHash,
		LastAttempt: utc(d.LastAttempt), LastSuccess: utc(d.LastSuccess), LastError: d.LastError,
		Entries: int(d.Entries), Meta: d.Meta,
	}
}

// utc returns t in UTC, and the zero time for the zero instant, which BSON
// stores as a date in year 1.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// Sources returns every stored source, ordered by name.
func (s *Store) Sources(ctx context.Context) ([]store.Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	cur, err := s.feeds.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, fail(ctx, "list sources", err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var out []store.Source
	for cur.Next(ctx) {
		var d feedDoc
		if err := cur.Decode(&d); err != nil {
			return nil, fmt.Errorf("list sources: %w", err)
		}
		out = append(out, d.source())
	}
	if err := cur.Err(); err != nil {
		return nil, fail(ctx, "list sources", err)
	}
	return out, nil
}

// Source returns one source, or store.ErrNotFound.
func (s *Store) Source(ctx context.Context, name string) (store.Source, error) {
	if err := ctx.Err(); err != nil {
		return store.Source{}, fmt.Errorf("get source %q: %w", name, err)
	}
	var d feedDoc
	err := s.feeds.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Source{}, fmt.Errorf("get source %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.Source{}, fail(ctx, fmt.Sprintf("get source %q", name), err)
	}
	return d.source(), nil
}

// PutSource creates or replaces a source's state.
func (s *Store) PutSource(ctx context.Context, src store.Source) error {
	if src.Name == "" {
		return errors.New("put source: empty name")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put source %q: %w", src.Name, err)
	}
	d := feedDoc{
		Name: src.Name, Kind: src.Kind, ETag: src.ETag, LastModified: src.LastModified, ContentHash: src.ContentHash,
		LastAttempt: src.LastAttempt, LastSuccess: src.LastSuccess, LastError: src.LastError,
		Entries: int64(src.Entries), Meta: src.Meta,
	}
	_, err := s.feeds.ReplaceOne(ctx, bson.D{{Key: "_id", Value: src.Name}}, d, options.Replace().SetUpsert(true))
	if err != nil {
		return fail(ctx, fmt.Sprintf("put source %q", src.Name), err)
	}
	return nil
}

type kvDoc struct {
	Key   string `bson:"_id"`
	Value string `bson:"value"`
}

// Get returns the value stored under key, or store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("get key %q: %w", key, err)
	}
	var d kvDoc
	err := s.kv.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return "", fmt.Errorf("get key %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return "", fail(ctx, fmt.Sprintf("get key %q", key), err)
	}
	return d.Value, nil
}

// Put stores value under key.
func (s *Store) Put(ctx context.Context, key, value string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put key %q: %w", key, err)
	}
	_, err := s.kv.ReplaceOne(ctx, bson.D{{Key: "_id", Value: key}}, kvDoc{Key: key, Value: value},
		options.Replace().SetUpsert(true))
	if err != nil {
		return fail(ctx, fmt.Sprintf("put key %q", key), err)
	}
	return nil
}
