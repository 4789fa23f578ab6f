package mongo

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rampart-ip/rampart/store"
)

func TestScratch2(t *testing.T) {
	f := startFerret(t)
	s := f.open(t, f.database())
	var all []netip.Prefix
	for i := range 3000 {
		all = append(all, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 32))
	}
	now := time.Now()
	step := func(name string, fn func() error) {
		start := time.Now()
		if err := fn(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", name, time.Since(start))
	}
	step("add 3000", func() error { return s.Apply(t.Context(), "x", store.Change{Added: all}, now) })
	ids := func(from, n int) []string {
		var out []string
		for i := from; i < from+n; i++ {
			out = append(out, indicatorID("x", all[i].String()))
		}
		return out
	}
	step("100 findone", func() error {
		for _, id := range ids(0, 100) {
			var d indicatorDoc
			if err := s.indicators.FindOne(t.Context(), bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
				return err
			}
		}
		return nil
	})
	step("find $in 99", func() error {
		cur, err := s.indicators.Find(t.Context(), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids(100, 99)}}}})
		if err != nil {
			return err
		}
		var docs []indicatorDoc
		return cur.All(t.Context(), &docs)
	})
	step("find source", func() error {
		cur, err := s.indicators.Find(t.Context(), bson.D{{Key: "source", Value: "x"}})
		if err != nil {
			return err
		}
		var docs []indicatorDoc
		return cur.All(t.Context(), &docs)
	})
	step("deletemany $in 99", func() error {
		_, err := s.indicators.DeleteMany(t.Context(), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids(200, 99)}}}})
		return err
	})
	step("deletemany $in 990", func() error {
		_, err := s.indicators.DeleteMany(t.Context(), bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids(300, 990)}}}})
		return err
	})
	step("10 deleteone bulk", func() error {
		var models []mongo.WriteModel
		for _, id := range ids(1300, 10) {
			models = append(models, mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}))
		}
		_, err := s.indicators.BulkWrite(t.Context(), models, options.BulkWrite().SetOrdered(false))
		return err
	})
	step("10 deleteone", func() error {
		for _, id := range ids(1400, 10) {
			if _, err := s.indicators.DeleteOne(t.Context(), bson.D{{Key: "_id", Value: id}}); err != nil {
				return err
			}
		}
		return nil
	})
	step("insert history 99", func() error {
		var docs []historyDoc
		for i := range 99 {
			docs = append(docs, historyDoc{ID: fmt.Sprint(i), Source: "x", Prefix: "p", Started: now, Ended: now})
		}
		return insertNew(t.Context(), s.history, docs)
	})
}
