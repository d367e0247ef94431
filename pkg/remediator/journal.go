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
// recorded before. The record is on disk when claim returns true.
func (j *journal) claim(key string, now time.Time) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.keys[key]; ok {
		return false, nil
	}
	b, _ := json.Marshal(journalEntry{Key: key, At: now})
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return false, fmt.Errorf("writing the remediation journal: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return false, fmt.Errorf("syncing the remediation journal: %w", err)
	}
	j.keys[key] = now
	return true, nil
}

func (j *journal) close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.f.Close()
}
