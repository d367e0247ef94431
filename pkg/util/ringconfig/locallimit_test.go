package ringconfig

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLocalLimit(t *testing.T) {
	for name, tc := range map[string]struct{ global, rf, n, want int }{
		"single":       {100, 1, 1, 100},
		"rf3 of 3":     {100, 3, 3, 100},
		"rf3 of 6":     {100, 3, 6, 50},
		"rf above n":   {100, 3, 2, 100},
		"rounds up":    {10, 1, 3, 4},
		"no instances": {10, 1, 0, 10},
	} {
		t.Run(name, func(t *testing.T) { require.Equal(t, tc.want, LocalLimit(tc.global, tc.rf, tc.n)) })
	}
}
