package ingest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rampart-ip/rampart/misp"
)

func TestAPIFeedsLifecycle(t *testing.T) {
	ctx := context.Background()
	fs := newFeedServer(t)
	fs.set("/a.txt", []byte("192.0.2.1\n192.0.2.2\n"))
	fs.set("/b.txt", []byte("198.51.100.7\n"))
	h := newHarness(t, harnessOptions{})
	h.eng.SetFeeds(OriginConfig, []misp.Feed{feed("cfg", fs.URL+"/b.txt")})
	if err := h.eng.LoadAPIFeeds(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.Start(ctx); err != nil {
		t.Fatal(err)
	}

	st, err := h.eng.AddFeed(ctx, feed("api-a", fs.URL+"/a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Origin != OriginAPI || !st.Enabled {
		t.Fatalf("added feed status = %+v, want origin api and enabled", st)
	}
	if _, err := h.eng.SyncFeed(ctx, "api-a"); err != nil {
		t.Fatal(err)
	}
	if n := len(h.listings(t, "api-a")); n != 2 {
		t.Fatalf("api-a lists %d prefixes after sync, want 2", n)
	}

	t.Run("a name taken by any origin cannot be added again", func(t *testing.T) {
		for _, name := range []string{"api-a", "cfg"} {
			if _, err := h.eng.AddFeed(ctx, feed(name, fs.URL+"/a.txt")); !errors.Is(err, ErrFeedExists) {
				t.Errorf("AddFeed(%q) err = %v, want ErrFeedExists", name, err)
			}
		}
	})
	t.Run("a feed from the config file cannot be replaced or deleted", func(t *testing.T) {
		_, err := h.eng.ReplaceFeed(ctx, "cfg", feed("cfg", fs.URL+"/a.txt"))
		if !errors.Is(err, ErrFeedNotEditable) || !strings.Contains(err.Error(), "config file") {
			t.Errorf("ReplaceFeed(cfg) err = %v, want ErrFeedNotEditable naming the config file", err)
		}
		if err := h.eng.DeleteFeed(ctx, "cfg"); !errors.Is(err, ErrFeedNotEditable) {
			t.Errorf("DeleteFeed(cfg) err = %v, want ErrFeedNotEditable", err)
		}
	})
	t.Run("an unknown feed is reported as unknown", func(t *testing.T) {
		if _, err := h.eng.ReplaceFeed(ctx, "nope", feed("nope", fs.URL+"/a.txt")); !errors.Is(err, ErrUnknownFeed) {
			t.Errorf("ReplaceFeed err = %v, want ErrUnknownFeed", err)
		}
		if err := h.eng.DeleteFeed(ctx, "nope"); !errors.Is(err, ErrUnknownFeed) {
			t.Errorf("DeleteFeed err = %v, want ErrUnknownFeed", err)
		}
	})
	t.Run("an invalid definition is refused with every problem", func(t *testing.T) {
		bad := misp.Feed{Name: "x\n", URL: "gopher://h/", SourceFormat: "xml"}
		_, err := h.eng.AddFeed(ctx, bad)
		if !errors.Is(err, ErrInvalidFeed) {
			t.Fatalf("err = %v, want ErrInvalidFeed", err)
		}
		for _, want := range []string{"url:", "source_format:", "name:"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	})
	t.Run("a replacement must keep the name", func(t *testing.T) {
		if _, err := h.eng.ReplaceFeed(ctx, "api-a", feed("other", fs.URL+"/a.txt")); !errors.Is(err, ErrInvalidFeed) {
			t.Errorf("err = %v, want ErrInvalidFeed", err)
		}
	})

	t.Run("a restart keeps the api feeds and their listings", func(t *testing.T) {
		h2 := newHarness(t, harnessOptions{dbPath: h.path})
		h2.eng.SetFeeds(OriginConfig, []misp.Feed{feed("cfg", fs.URL+"/b.txt")})
		if err := h2.eng.LoadAPIFeeds(ctx); err != nil {
			t.Fatal(err)
		}
		if err := h2.eng.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := h2.status(t, "api-a"); got.Origin != OriginAPI || got.Entries != 2 {
			t.Errorf("after restart api-a = %+v, want origin api with 2 entries", got)
		}
		if n := len(h2.listings(t, "api-a")); n != 2 {
			t.Errorf("after restart api-a lists %d prefixes, want 2", n)
		}
	})

	t.Run("replacing with a disabled definition ends the listings", func(t *testing.T) {
		f := feed("api-a", fs.URL+"/a.txt")
		f.Enabled = false
		st, err := h.eng.ReplaceFeed(ctx, "api-a", f)
		if err != nil {
			t.Fatal(err)
		}
		if st.Enabled {
			t.Errorf("status after disabling = %+v, want not enabled", st)
		}
		if n := len(h.listings(t, "api-a")); n != 0 {
			t.Errorf("disabled feed still lists %d prefixes", n)
		}
		f.Enabled = true
		if _, err := h.eng.ReplaceFeed(ctx, "api-a", f); err != nil {
			t.Fatal(err)
		}
		if _, err := h.eng.SyncFeed(ctx, "api-a"); err != nil {
			t.Fatal(err)
		}
		if n := len(h.listings(t, "api-a")); n != 2 {
			t.Errorf("re-enabled feed lists %d prefixes, want 2", n)
		}
	})

	t.Run("deleting ends the listings and keeps them in history", func(t *testing.T) {
		if err := h.eng.DeleteFeed(ctx, "api-a"); err != nil {
			t.Fatal(err)
		}
		if n := len(h.listings(t, "api-a")); n != 0 {
			t.Errorf("deleted feed still lists %d prefixes", n)
		}
		if len(h.episodes(t, "api-a")) == 0 {
			t.Error("deleted feed left no history")
		}
		for _, f := range h.eng.Feeds() {
			if f.Name == "api-a" {
				t.Errorf("deleted feed still in Feeds(): %+v", f)
			}
		}
		h3 := newHarness(t, harnessOptions{dbPath: h.path})
		if err := h3.eng.LoadAPIFeeds(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range h3.eng.Feeds() {
			if f.Name == "api-a" {
				t.Errorf("deleted feed came back after a restart: %+v", f)
			}
		}
	})
}

func TestLoadAPIFeedsRefusesAForeignDocument(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, harnessOptions{})
	for _, doc := range []string{`{`, `{"version": 2, "feeds": []}`} {
		if err := h.raw.Put(ctx, APIFeedsKey, doc); err != nil {
			t.Fatal(err)
		}
		if err := h.eng.LoadAPIFeeds(ctx); err == nil {
			t.Errorf("LoadAPIFeeds accepted %q", doc)
		}
	}
}
