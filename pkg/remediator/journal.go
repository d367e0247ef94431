package remediator

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// journal remembers, on disk, every alert notification the remediator
// took on (by Alert.Key), written and synced before anything is done
// about it: a notification delivered again, by Alertmanager's retries, by
// the other half of an HA pair, or after a remediator restart in the
// middle of an action, is never acted on twice. Entries older than
// retention are dropped when the journal is opened.
type journal struct {
	mu   sync.Mutex
	f    *os.File
	keys map[string]time.Time
	// Group commit: claims made while a write is being synced wait for
	// the next write, which syncs them all at once.
	pending  []byte
	waiters  []chan error
	flushing bool
}

type journalEntry struct {
	Key string    `json:"key"`
	At  time.Time `json:"at"`
}

func openJournal(dir string, retention time.Duration, now time.Time) (*journal, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "journal.jsonl")
	j := &journal{keys: map[string]time.Time{}}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e journalEntry
			if json.Unmarshal(sc.Bytes(), &e) != nil {
				continue // a line torn by a crash
			}
			if now.Sub(e.At) <= retention {
				j.keys[e.Key] = e.At
			}
		}
		_ = f.Close()
	}
	// Rewrite what is kept, then append to it.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	for k, at := range j.keys {
		b, _ := json.Marshal(journalEntry{Key: k, At: at})
		_, _ = w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	if j.f, err = os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o640); err != nil {
		return nil, err
	}
	return j, nil
}

// claim records key and reports true, or reports false if it was
// recorded before. The record is on disk when claim returns true. Claims
// made at once share one write and one sync.
func (j *journal) claim(key string, now time.Time) (bool, error) {
	j.mu.Lock()
	if _, ok := j.keys[key]; ok {
		j.mu.Unlock()
		return false, nil
	}
	j.keys[key] = now
	b, _ := json.Marshal(journalEntry{Key: key, At: now})
	j.pending = append(append(j.pending, b...), '\n')
	done := make(chan error, 1)
	j.waiters = append(j.waiters, done)
	if !j.flushing {
		// This claim writes: its own batch, then those that gathered
		// meanwhile.
		j.flushing = true
		for len(j.pending) > 0 {
			batch, waiters := j.pending, j.waiters
			j.pending, j.waiters = nil, nil
			j.mu.Unlock()
			err := j.write(batch)
			for _, w := range waiters {
				w <- err
			}
			j.mu.Lock()
		}
		j.flushing = false
	}
	j.mu.Unlock()
	if err := <-done; err != nil {
		j.mu.Lock()
		delete(j.keys, key)
		j.mu.Unlock()
		return false, err
	}
	return true, nil
}

func (j *journal) write(batch []byte) error {
	if _, err := j.f.Write(batch); err != nil {
		return fmt.Errorf("writing the remediation journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("syncing the remediation journal: %w", err)
	}
	return nil
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
