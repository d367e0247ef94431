package logql

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

// ParseDuration reads a duration as LogQL writes them: Prometheus's form
// (1h30m, 5m, 2d, 1w, 1y, 250ms) or Go's (1.5s, 300us, 10ns).
func ParseDuration(s string) (time.Duration, error) {
	if d, err := model.ParseDuration(s); err == nil {
		return time.Duration(d), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	return d, nil
}

var byteUnits = map[string]float64{
	"b":  1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "eb": 1e18,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50, "eib": 1 << 60,
}

// ParseBytes reads a byte size: a number and a unit, B, kB/KB … EB (powers
// of 1000) or KiB … EiB (powers of 1024), in any case.
func ParseBytes(s string) (uint64, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
		i++
	}
	unit, ok := byteUnits[strings.ToLower(s[i:])]
	if i == 0 || !ok {
		return 0, fmt.Errorf("invalid byte size %q", s)
	}
	f, err := strconv.ParseFloat(s[:i], 64)
	if err != nil || f*unit >= math.MaxUint64 {
		return 0, fmt.Errorf("invalid byte size %q", s)
	}
	return uint64(f * unit), nil
}
