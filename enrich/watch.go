package enrich

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher is the background goroutine that reloads replaced files.
type watcher struct {
	notify *fsnotify.Watcher // nil when change notification is unavailable
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// failure remembers a replacement file that could not be loaded, so that
// it is reported once and not retried until it changes again.
type failure struct {
	stamp os.FileInfo
	err   error
}

// changed reports whether the file now at a path (now) differs from the one
// read before (was): another file renamed over it, or the same file
// rewritten.
func changed(was, now os.FileInfo) bool {
	if was == nil {
		return true
	}
	return !os.SameFile(was, now) || !was.ModTime().Equal(now.ModTime()) || was.Size() != now.Size()
}

// startWatch starts watching the configured files' directories. Watching
// directories rather than files is what sees a rename over a file, the way
// geoipupdate replaces it; the poll is the fallback where inotify is
// unavailable or its events are lost.
func (e *Enricher) startWatch(poll, settle time.Duration) {
	w := &e.watcher
	w.stop = make(chan struct{})
	w.done = make(chan struct{})
	dirs := map[string]bool{}
	for _, p := range e.paths {
		if p != "" {
			dirs[filepath.Dir(p)] = true
		}
	}
	if len(dirs) == 0 {
		close(w.done)
		return
	}
	n, err := fsnotify.NewWatcher()
	if err != nil {
		e.logger.Warn("file change notification unavailable, polling for database updates",
			"error", err, "poll", poll)
	} else {
		for dir := range dirs {
			if err := n.Add(dir); err != nil {
				e.logger.Warn("cannot watch database directory, polling for its updates",
					"dir", dir, "error", err, "poll", poll)
			}
		}
		w.notify = n
	}
	go e.watch(poll, settle)
}

// watch runs until Close, reloading files that changed.
func (e *Enricher) watch(poll, settle time.Duration) {
	w := &e.watcher
	defer close(w.done)
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w.notify != nil {
		events, errs = w.notify.Events, w.notify.Errors
	}
	watched := map[string]bool{}
	for _, p := range e.paths {
		if p != "" {
			watched[filepath.Clean(p)] = true
		}
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	settleTimer := time.NewTimer(settle)
	settleTimer.Stop()
	defer settleTimer.Stop()
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if watched[filepath.Clean(ev.Name)] {
				// Wait for the writer to finish: each event restarts the wait.
				settleTimer.Reset(settle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			e.logger.Warn("file change notification failed; polling continues", "error", err)
		case <-settleTimer.C:
			e.reloadChanged()
		case <-ticker.C:
			e.reloadChanged()
		}
	}
}

// reloadChanged reloads every configured file that changed since it was
// loaded and swaps the new snapshot in. Only the watch goroutine calls it,
// so snapshots are never built concurrently.
func (e *Enricher) reloadChanged() {
	cur := e.snap.Load()
	next := *cur
	swapped := false
	for k, path := range e.paths {
		if path == "" {
			continue
		}
		st, err := os.Stat(path)
		if err != nil {
			e.fail(kind(k), path, nil, err)
			continue
		}
		if d := cur.dbs[k]; d != nil && !changed(d.stamp, st) {
			e.clearFailure(kind(k))
			continue
		}
		if !e.shouldRetry(kind(k), st) {
			continue
		}
		d, err := loadDatabase(kind(k), path, e.now())
		if err == nil && kind(k) == e.source {
			var announced map[uint32]uint64
			if announced, err = announcedSpace(d); err == nil {
				next.announced = announced
			}
		}
		if err != nil {
			e.fail(kind(k), path, st, err)
			continue
		}
		e.clearFailure(kind(k))
		next.dbs[k] = d
		swapped = true
		e.logger.Info("reloaded database", "setting", kind(k).String(), "path", path,
			"type", d.reader.Metadata.DatabaseType,
			"build", time.Unix(int64(d.reader.Metadata.BuildEpoch), 0).UTC())
	}
	if swapped {
		// The old snapshot's databases stay readable by queries still
		// holding it and are freed by the garbage collector afterwards.
		e.snap.Store(&next)
	}
}

// shouldRetry reports whether the file st differs from the last one that
// failed to load under kind k.
func (e *Enricher) shouldRetry(k kind, st os.FileInfo) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.failed[k]
	return f.err == nil || f.stamp == nil || changed(f.stamp, st)
}

// fail records and logs a failed reload once per distinct file; the
// previous database stays in force.
func (e *Enricher) fail(k kind, path string, st os.FileInfo, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := &e.failed[k]
	if f.err != nil && errors.Is(err, os.ErrNotExist) && errors.Is(f.err, os.ErrNotExist) {
		return // still missing; already reported
	}
	f.stamp, f.err = st, fmt.Errorf("reload enrich.geoip.%s: %w", k, err)
	e.logger.Error("database replacement not loaded; keeping the previous one",
		"setting", k.String(), "path", path, "error", err)
}

func (e *Enricher) clearFailure(k kind) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failed[k] = failure{}
}

// Close stops watching the files. Queries after Close get empty answers.
// The databases are not closed explicitly: they are in memory, and a query
// that loaded the snapshot before Close may still be reading one, so they
// are left to the garbage collector.
func (e *Enricher) Close() error {
	w := &e.watcher
	var err error
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		if w.notify != nil {
			err = w.notify.Close()
		}
		e.snap.Store(&snapshot{asnSource: -1})
	})
	return err
}
