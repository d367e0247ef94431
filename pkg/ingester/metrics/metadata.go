package metrics

import (
	"strings"
	"sync"

	"github.com/prometheus/prometheus/model/metadata"
)

// maxMetadataPerMetric bounds how many distinct metadata entries one metric
// family keeps (the same family may be described differently by two agents).
const maxMetadataPerMetric = 10

// metadataStore keeps the metadata each tenant's metric families were
// written with. Safe for concurrent use.
type metadataStore struct {
	mu       sync.RWMutex
	families map[string][]metadata.Metadata
}

func newMetadataStore() *metadataStore {
	return &metadataStore{families: map[string][]metadata.Metadata{}}
}

// familyName strips the suffixes Prometheus adds to a family's series.
func familyName(name string, typ string) string {
	switch typ {
	case "histogram", "gaugehistogram":
		for _, s := range []string{"_bucket", "_sum", "_count", "_created"} {
			if strings.HasSuffix(name, s) {
				return strings.TrimSuffix(name, s)
			}
		}
	case "summary":
		for _, s := range []string{"_sum", "_count", "_created"} {
			if strings.HasSuffix(name, s) {
				return strings.TrimSuffix(name, s)
			}
		}
	case "counter":
		return strings.TrimSuffix(name, "_created")
	}
	return name
}

func (s *metadataStore) add(name string, md metadata.Metadata) {
	if name == "" {
		return
	}
	name = familyName(name, string(md.Type))
	s.mu.RLock()
	for _, m := range s.families[name] {
		if m == md {
			s.mu.RUnlock()
			return
		}
	}
	s.mu.RUnlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.families[name]
	for _, m := range list {
		if m == md {
			return
		}
	}
	if len(list) >= maxMetadataPerMetric {
		list = list[1:]
	}
	// A push's strings may share its request's buffer (see the
	// distributor's decoder): what is kept is copied.
	md.Help, md.Unit = strings.Clone(md.Help), strings.Clone(md.Unit)
	if list == nil {
		name = strings.Clone(name)
	}
	s.families[name] = append(list, md)
}

func (s *metadataStore) get(metric string, limit, limitPerMetric int) map[string][]metadata.Metadata {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := map[string][]metadata.Metadata{}
	for name, list := range s.families {
		if metric != "" && name != metric {
			continue
		}
		if limit > 0 && len(out) >= limit {
			break
		}
		if limitPerMetric > 0 && len(list) > limitPerMetric {
			list = list[:limitPerMetric]
		}
		out[name] = append([]metadata.Metadata(nil), list...)
	}
	return out
}
